package spec

import (
	"slices"
	"strconv"
	"time"
)

// Diff returns the paths of the fields that differ between two resolved versions of a service,
// in Compose key spelling (`image`, `environment.DB_HOST`, `ports[0].published`, `mem_limit`),
// in a stable order: the order of the fields in Service, map keys sorted, slice elements by index.
// Fields that are not part of the config hash (Name, Replicas, PullPolicy, Profiles, DependsOn,
// Build, Hash) are ignored, so an empty result with differing hashes means the hash covers
// something Diff cannot name. The planner uses it to say why a container is recreated.
func Diff(old, new *Service) []string {
	if old == nil || new == nil {
		if old == new {
			return nil
		}
		return []string{"service"}
	}
	var d differ
	d.value("container_name", old.ContainerName, new.ContainerName)
	d.value("image", old.Image, new.Image)
	d.value("network_mode", old.NetworkMode, new.NetworkMode)
	d.strs("command", old.Command, new.Command)
	d.strs("entrypoint", old.Entrypoint, new.Entrypoint)
	d.strMap("environment", old.Environment, new.Environment)
	d.envFiles(old.EnvFiles, new.EnvFiles)
	d.ports("ports", old.Ports, new.Ports)
	d.ports("expose", old.Expose, new.Expose)
	d.mounts(old.Mounts, new.Mounts)
	d.networks(old.Networks, new.Networks)
	d.healthcheck(old.Healthcheck, new.Healthcheck)
	d.value("restart", old.Restart, new.Restart)
	d.value("mem_limit", old.Resources.MemoryLimit, new.Resources.MemoryLimit)
	d.value("mem_reservation", old.Resources.MemoryReservation, new.Resources.MemoryReservation)
	d.value("memswap_limit", old.Resources.MemorySwap, new.Resources.MemorySwap)
	d.value("cpus", old.Resources.CPUs, new.Resources.CPUs)
	d.value("cpu_shares", old.Resources.CPUShares, new.Resources.CPUShares)
	d.value("pids_limit", old.Resources.PidsLimit, new.Resources.PidsLimit)
	d.value("user", old.User, new.User)
	d.value("working_dir", old.WorkingDir, new.WorkingDir)
	d.value("hostname", old.Hostname, new.Hostname)
	d.value("domainname", old.Domainname, new.Domainname)
	d.strMap("labels", old.Labels, new.Labels)
	d.value("stop_signal", old.StopSignal, new.StopSignal)
	d.value("stop_grace_period", durationOrNil(old.StopGracePeriod), durationOrNil(new.StopGracePeriod))
	d.value("init", old.Init, new.Init)
	d.value("read_only", old.ReadOnly, new.ReadOnly)
	d.value("privileged", old.Privileged, new.Privileged)
	d.strs("cap_add", old.CapAdd, new.CapAdd)
	d.strs("cap_drop", old.CapDrop, new.CapDrop)
	diffMap(&d, "ulimits", old.Ulimits, new.Ulimits)
	d.strMap("sysctls", old.Sysctls, new.Sysctls)
	if !slices.Equal(old.ExtraHosts, new.ExtraHosts) {
		d.add("extra_hosts")
	}
	d.strs("dns", old.DNS, new.DNS)
	d.strs("dns_search", old.DNSSearch, new.DNSSearch)
	d.strs("dns_opt", old.DNSOptions, new.DNSOptions)
	d.value("shm_size", old.ShmSize, new.ShmSize)
	d.value("tty", old.Tty, new.Tty)
	d.value("stdin_open", old.StdinOpen, new.StdinOpen)
	d.logging(old.Logging, new.Logging)
	return d.paths
}

// differ collects changed paths in the order they are found.
type differ struct{ paths []string }

func (d *differ) add(path string) { d.paths = append(d.paths, path) }

func (d *differ) value(path string, a, b any) {
	if a != b {
		d.add(path)
	}
}

// strs compares a list as a whole: nil ("use the default") differs from empty ("explicitly none").
func (d *differ) strs(path string, a, b []string) {
	if (a == nil) != (b == nil) || !slices.Equal(a, b) {
		d.add(path)
	}
}

func (d *differ) strMap(path string, a, b map[string]string) { diffMap(d, path, a, b) }

// diffMap reports path.KEY for every key added, removed or changed, keys sorted.
func diffMap[V comparable](d *differ, path string, a, b map[string]V) {
	for _, k := range unionKeys(a, b) {
		va, oka := a[k]
		vb, okb := b[k]
		if oka != okb || va != vb {
			d.add(path + "." + k)
		}
	}
}

func unionKeys[V any](a, b map[string]V) []string {
	keys := sortedKeys(a)
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

func (d *differ) envFiles(a, b []EnvFile) {
	for i := range max(len(a), len(b)) {
		if i >= len(a) || i >= len(b) || a[i] != b[i] {
			d.add(index("env_file", i))
		}
	}
}

func (d *differ) ports(path string, a, b []Port) {
	for i := range max(len(a), len(b)) {
		p := index(path, i)
		if i >= len(a) || i >= len(b) {
			d.add(p)
			continue
		}
		d.value(p+".host_ip", a[i].HostIP, b[i].HostIP)
		d.value(p+".published", a[i].Published, b[i].Published)
		d.value(p+".target", a[i].Target, b[i].Target)
		d.value(p+".protocol", a[i].Protocol, b[i].Protocol)
	}
}

func (d *differ) mounts(a, b []Mount) {
	for i := range max(len(a), len(b)) {
		p := index("volumes", i)
		if i >= len(a) || i >= len(b) {
			d.add(p)
			continue
		}
		x, y := a[i], b[i]
		d.value(p+".type", x.Type, y.Type)
		d.value(p+".source", x.Source, y.Source)
		d.value(p+".target", x.Target, y.Target)
		d.value(p+".read_only", x.ReadOnly, y.ReadOnly)
		d.value(p+".bind.propagation", x.Propagation, y.Propagation)
		d.value(p+".bind.create_host_path", x.CreateHostPath, y.CreateHostPath)
		d.value(p+".volume.nocopy", x.NoCopy, y.NoCopy)
		d.value(p+".tmpfs.size", x.TmpfsSize, y.TmpfsSize)
		d.value(p+".tmpfs.mode", x.TmpfsMode, y.TmpfsMode)
	}
}

func (d *differ) networks(a, b map[string]*ServiceNetwork) {
	for _, k := range unionKeys(a, b) {
		p := "networks." + k
		x, oka := a[k]
		y, okb := b[k]
		if oka != okb {
			d.add(p)
			continue
		}
		if x == nil {
			x = &ServiceNetwork{}
		}
		if y == nil {
			y = &ServiceNetwork{}
		}
		d.strs(p+".aliases", nilIfEmpty(x.Aliases), nilIfEmpty(y.Aliases))
		d.value(p+".ipv4_address", x.IPv4Address, y.IPv4Address)
	}
}

func (d *differ) healthcheck(a, b *Healthcheck) {
	if a == nil || b == nil {
		if a != b {
			d.add("healthcheck")
		}
		return
	}
	d.strs("healthcheck.test", a.Test, b.Test)
	d.value("healthcheck.interval", a.Interval, b.Interval)
	d.value("healthcheck.timeout", a.Timeout, b.Timeout)
	d.value("healthcheck.start_period", a.StartPeriod, b.StartPeriod)
	d.value("healthcheck.start_interval", a.StartInterval, b.StartInterval)
	d.value("healthcheck.retries", a.Retries, b.Retries)
	d.value("healthcheck.disable", a.Disable, b.Disable)
}

func (d *differ) logging(a, b *Logging) {
	if a == nil || b == nil {
		if a != b {
			d.add("logging")
		}
		return
	}
	d.value("logging.driver", a.Driver, b.Driver)
	d.strMap("logging.options", a.Options, b.Options)
}

// durationOrNil makes an optional duration comparable with ==: unset stays nil.
func durationOrNil(p *time.Duration) any {
	if p == nil {
		return nil
	}
	return *p
}
