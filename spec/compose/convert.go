package compose

import (
	"maps"

	"github.com/stackrun/stack/spec"

	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"math"
	"net/netip"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
)

// convert turns compose-go's project into stack's model. Values compose-go accepts but stack
// cannot represent (a port above 65535, a tmpfs option stack does not know) are reported to c.
func convert(p *types.Project, c *collector) *spec.Stack {
	st := &spec.Stack{
		Name:       p.Name,
		WorkingDir: p.WorkingDir,
		Files:      slices.Clone(p.ComposeFiles),
		Services:   map[string]*spec.Service{},
		Networks:   map[string]*spec.Network{},
		Volumes:    map[string]*spec.Volume{},
	}
	for _, name := range slices.Sorted(maps.Keys(p.Networks)) {
		st.Networks[name] = convertNetwork(name, p.Networks[name], c)
	}
	for _, name := range slices.Sorted(maps.Keys(p.Volumes)) {
		v := p.Volumes[name]
		st.Volumes[name] = &spec.Volume{
			Key:      name,
			Name:     v.Name,
			Driver:   v.Driver,
			External: bool(v.External),
			Labels:   cloneMap(v.Labels),
		}
	}
	for _, name := range slices.Sorted(maps.Keys(p.Services)) {
		st.Services[name] = convertService(p, p.Services[name], c)
	}
	return st
}

func convertNetwork(key string, n types.NetworkConfig, c *collector) *spec.Network {
	out := &spec.Network{
		Key:      key,
		Name:     n.Name,
		Driver:   n.Driver,
		Internal: n.Internal,
		External: bool(n.External),
		Labels:   cloneMap(n.Labels),
	}
	if len(n.Ipam.Config) > 1 {
		c.errorf("networks."+key+".ipam.config[1]", "only one ipam config per network is supported")
	}
	if len(n.Ipam.Config) > 0 && n.Ipam.Config[0] != nil {
		out.Subnet = n.Ipam.Config[0].Subnet
		out.Gateway = n.Ipam.Config[0].Gateway
	}
	return out
}

func convertService(p *types.Project, s types.ServiceConfig, c *collector) *spec.Service {
	key := "services." + s.Name
	out := &spec.Service{
		Name:          s.Name,
		ContainerName: s.ContainerName,
		Image:         s.Image,
		PullPolicy:    s.PullPolicy,
		Command:       cloneCmd(s.Command),
		Entrypoint:    cloneCmd(s.Entrypoint),
		Environment:   map[string]string{},
		Networks:      map[string]*spec.ServiceNetwork{},
		DependsOn:     map[string]spec.Dependency{},
		Replicas:      s.GetScale(),
		User:          s.User,
		WorkingDir:    s.WorkingDir,
		Hostname:      s.Hostname,
		Domainname:    s.DomainName,
		Labels:        cloneMap(s.Labels),
		StopSignal:    s.StopSignal,
		ReadOnly:      s.ReadOnly,
		Privileged:    s.Privileged,
		CapAdd:        normalizeCaps(s.CapAdd),
		CapDrop:       normalizeCaps(s.CapDrop),
		Sysctls:       cloneMap(s.Sysctls),
		DNS:           slices.Clone([]string(s.DNS)),
		DNSSearch:     slices.Clone([]string(s.DNSSearch)),
		DNSOptions:    slices.Clone(s.DNSOpts),
		ShmSize:       int64(s.ShmSize),
		Tty:           s.Tty,
		StdinOpen:     s.StdinOpen,
		Profiles:      slices.Clone(s.Profiles),
	}
	if s.Init != nil {
		out.Init = *s.Init
	}
	if out.Image == "" && s.Build != nil {
		// The name Compose tags a build-only service's image with.
		out.Image = spec.DefaultImage(p.Name, s.Name)
	}
	if s.Build != nil {
		out.Build = &spec.Build{
			Context:          s.Build.Context,
			Dockerfile:       s.Build.Dockerfile,
			DockerfileInline: s.Build.DockerfileInline,
			Args:             resolvedMap(s.Build.Args),
			Target:           s.Build.Target,
			Labels:           cloneMap(s.Build.Labels),
			Network:          s.Build.Network,
			NoCache:          s.Build.NoCache,
			Pull:             s.Build.Pull,
			Tags:             slices.Clone([]string(s.Build.Tags)),
		}
	}
	out.Environment = resolvedMap(s.Environment)
	for i, ef := range s.EnvFiles {
		e := spec.EnvFile{Path: ef.Path, Required: bool(ef.Required)}
		data, err := readCapped(ef.Path, MaxFileSize)
		switch {
		case err == nil:
			sum := sha256.Sum256(data)
			e.Digest = "sha256:" + hex.EncodeToString(sum[:])
		case errors.Is(err, fs.ErrNotExist) && !e.Required:
		default:
			c.errorf(key+".env_file["+strconv.Itoa(i)+"]", "read env file: %v", err)
		}
		out.EnvFiles = append(out.EnvFiles, e)
	}

	convertPorts(out, s, c)
	convertExpose(out, s, c)
	convertMounts(p, out, s, c)

	switch s.NetworkMode {
	case "none":
		out.NetworkMode = "none"
	}
	if out.NetworkMode == "" {
		for name, n := range s.Networks {
			sn := &spec.ServiceNetwork{}
			if n != nil {
				sn.Aliases = slices.Clone(n.Aliases)
				sn.IPv4Address = n.Ipv4Address
			}
			out.Networks[name] = sn
		}
	}
	for name, d := range s.DependsOn {
		cond := d.Condition
		if cond == "" {
			cond = spec.ConditionStarted
		}
		out.DependsOn[name] = spec.Dependency{Condition: cond, Restart: d.Restart, Required: d.Required}
	}
	if h := s.HealthCheck; h != nil {
		hc := &spec.Healthcheck{Test: slices.Clone([]string(h.Test)), Disable: h.Disable}
		if len(hc.Test) > 0 && hc.Test[0] == "NONE" {
			hc.Disable, hc.Test = true, nil
		}
		hc.Interval = dur(h.Interval)
		hc.Timeout = dur(h.Timeout)
		hc.StartPeriod = dur(h.StartPeriod)
		hc.StartInterval = dur(h.StartInterval)
		if h.Retries != nil {
			hc.Retries = int(min(*h.Retries, math.MaxInt32))
		}
		out.Healthcheck = hc
	}
	out.Restart = convertRestart(s, key, c)
	out.Resources = convertResources(s)
	if s.StopGracePeriod != nil {
		d := time.Duration(*s.StopGracePeriod)
		out.StopGracePeriod = &d
	}
	if len(s.Ulimits) > 0 {
		out.Ulimits = map[string]spec.Ulimit{}
		for name, u := range s.Ulimits {
			if u == nil {
				continue
			}
			if u.Single != 0 {
				out.Ulimits[name] = spec.Ulimit{Soft: int64(u.Single), Hard: int64(u.Single)}
			} else {
				out.Ulimits[name] = spec.Ulimit{Soft: int64(u.Soft), Hard: int64(u.Hard)}
			}
		}
	}
	for _, host := range slices.Sorted(maps.Keys(s.ExtraHosts)) {
		for _, ip := range s.ExtraHosts[host] {
			out.ExtraHosts = append(out.ExtraHosts, spec.ExtraHost{Host: host, IP: ip})
		}
	}
	if s.Logging != nil && (s.Logging.Driver != "" || len(s.Logging.Options) > 0) {
		out.Logging = &spec.Logging{Driver: s.Logging.Driver, Options: cloneMap(s.Logging.Options)}
	}
	return out
}

func convertRestart(s types.ServiceConfig, key string, c *collector) spec.RestartPolicy {
	if s.Restart == "" && s.Deploy != nil && s.Deploy.RestartPolicy != nil {
		rp := s.Deploy.RestartPolicy
		out := spec.RestartPolicy{Name: "always"}
		switch rp.Condition {
		case "none":
			out.Name = "no"
		case "on-failure":
			out.Name = "on-failure"
		}
		if rp.MaxAttempts != nil {
			out.MaxRetries = int(min(*rp.MaxAttempts, math.MaxInt32))
			if out.Name == "always" && out.MaxRetries > 0 {
				out.Name = "on-failure" // bounded restarts: docker compose does the same
			}
		}
		return out
	}
	name, n, hasN := strings.Cut(s.Restart, ":")
	out := spec.RestartPolicy{Name: name}
	switch name {
	case "":
		out.Name = "no"
	case "no", "always", "unless-stopped":
		if hasN {
			c.errorf(key+".restart", "restart %q takes no retry count", name)
		}
	case "on-failure":
		if hasN {
			v, err := strconv.Atoi(n)
			if err != nil || v < 0 {
				c.errorf(key+".restart", "restart on-failure:%s: the retry count must be a number >= 0", n)
			}
			out.MaxRetries = v
		}
	default:
		c.errorf(key+".restart", "restart %q is not one of no, always, on-failure[:N], unless-stopped", s.Restart)
	}
	return out
}

func convertResources(s types.ServiceConfig) spec.Resources {
	r := spec.Resources{
		MemoryLimit:       int64(s.MemLimit),
		MemoryReservation: int64(s.MemReservation),
		MemorySwap:        int64(s.MemSwapLimit),
		CPUs:              cpus(s.CPUS),
		CPUShares:         s.CPUShares,
		PidsLimit:         s.PidsLimit,
	}
	if s.Deploy != nil {
		if l := s.Deploy.Resources.Limits; l != nil {
			if l.MemoryBytes != 0 {
				r.MemoryLimit = int64(l.MemoryBytes)
			}
			if l.NanoCPUs != 0 {
				r.CPUs = cpus(float32(l.NanoCPUs))
			}
			if l.Pids != 0 {
				r.PidsLimit = l.Pids
			}
		}
		if rv := s.Deploy.Resources.Reservations; rv != nil && rv.MemoryBytes != 0 {
			r.MemoryReservation = int64(rv.MemoryBytes)
		}
	}
	return r
}

// cpus widens compose-go's float32 without the binary noise (0.1 stays 0.1).
func cpus(f float32) float64 {
	v, _ := strconv.ParseFloat(strconv.FormatFloat(float64(f), 'g', -1, 32), 64)
	return v
}

func convertPorts(out *spec.Service, s types.ServiceConfig, c *collector) {
	for i, p := range s.Ports {
		k := c.pos.portRef(s.Name, i, len(s.Ports))

		proto := p.Protocol
		if proto == "" {
			proto = "tcp"
		}
		if proto != "tcp" && proto != "udp" {
			c.portErrorf(k, "protocol %q is not supported (tcp, udp)", p.Protocol)
			continue
		}
		if p.Target == 0 || p.Target > 65535 {
			c.portErrorf(k, "container port %d is not in 1-65535", p.Target)
			continue
		}
		port := spec.Port{HostIP: p.HostIP, Target: uint16(p.Target), Protocol: proto}
		if p.HostIP != "" {
			if _, err := netip.ParseAddr(p.HostIP); err != nil {
				c.portErrorf(k, "host IP %q is not an IP address", p.HostIP)
				continue
			}
		}
		if p.Published != "" {
			if strings.Contains(p.Published, "-") {
				c.portErrorf(k, "host port range %s for one container port is not supported: give one host port per container port", p.Published)
				continue
			}
			v, err := strconv.ParseUint(p.Published, 10, 64)
			if err != nil || v == 0 || v > 65535 {
				c.portErrorf(k, "host port %s is not in 1-65535 (leave it out to have one picked)", p.Published)
				continue
			}
			port.Published = uint16(v)
		}
		out.Ports = append(out.Ports, port)
		c.portRefs[s.Name] = append(c.portRefs[s.Name], k)
	}
}

func convertExpose(out *spec.Service, s types.ServiceConfig, c *collector) {
	for i, e := range s.Expose {
		k := "services." + s.Name + ".expose[" + strconv.Itoa(i) + "]"
		portSpec, proto, _ := strings.Cut(e, "/")
		if proto == "" {
			proto = "tcp"
		}
		if proto != "tcp" && proto != "udp" {
			c.errorf(k, "protocol %q is not supported (tcp, udp)", proto)
			continue
		}
		lo, hi, isRange := strings.Cut(portSpec, "-")
		a, err1 := strconv.ParseUint(lo, 10, 64)
		b := a
		var err2 error
		if isRange {
			b, err2 = strconv.ParseUint(hi, 10, 64)
		}
		if err1 != nil || err2 != nil || a == 0 || b > 65535 || b < a {
			c.errorf(k, "exposed port %s is not a port or range in 1-65535", e)
			continue
		}
		for p := a; p <= b; p++ {
			out.Expose = append(out.Expose, spec.Port{Target: uint16(p), Protocol: proto})
		}
	}
}

// tmpfsFlags are the mount flags accepted in tmpfs: short syntax besides size= and mode=.
func tmpfsFlags() []string {
	return []string{"ro", "rw", "noexec", "exec", "nosuid", "suid", "nodev", "dev", "noatime", "atime", "nodiratime", "diratime"}
}

func convertMounts(p *types.Project, out *spec.Service, s types.ServiceConfig, c *collector) {
	key := "services." + s.Name
	targets := map[string]bool{}
	seen := func(k, target string) {
		clean := path.Clean(target)
		if targets[clean] {
			c.errorf(k, "mount target %s is used twice", target)
		}
		targets[clean] = true
	}
	for i, v := range s.Volumes {
		k := key + ".volumes[" + strconv.Itoa(i) + "]"
		m := spec.Mount{Type: spec.MountType(v.Type), Source: v.Source, Target: v.Target, ReadOnly: v.ReadOnly}
		switch m.Type {
		case spec.MountBind:
			if v.Bind != nil {
				m.Propagation = v.Bind.Propagation
				m.CreateHostPath = bool(v.Bind.CreateHostPath)
			}
			checkBindEscape(p.WorkingDir, m, k, c)
		case spec.MountVolume:
			if v.Volume != nil {
				m.NoCopy = v.Volume.NoCopy
			}
			if _, ok := p.Volumes[m.Source]; m.Source != "" && !ok {
				c.errorf(k, "volume %q is not defined in the top-level volumes", m.Source)
			}
		case spec.MountTmpfs:
			if v.Tmpfs != nil {
				m.TmpfsSize = int64(v.Tmpfs.Size)
				m.TmpfsMode = octalDigits(v.Tmpfs.Mode)
			}
		default:
			continue // reported as an unsupported volume type
		}
		if !strings.HasPrefix(m.Target, "/") {
			c.errorf(k, "mount target %q is not an absolute path", m.Target)
			continue
		}
		seen(k, m.Target)
		out.Mounts = append(out.Mounts, m)
	}
	for i, t := range s.Tmpfs {
		k := key + ".tmpfs[" + strconv.Itoa(i) + "]"
		target, opts, _ := strings.Cut(t, ":")
		m := spec.Mount{Type: spec.MountTmpfs, Target: target}
		if !strings.HasPrefix(target, "/") {
			c.errorf(k, "tmpfs target %q is not an absolute path", target)
			continue
		}
		ok := true
		for _, o := range strings.Split(opts, ",") {
			name, val, _ := strings.Cut(o, "=")
			switch {
			case o == "":
			case name == "size":
				b, err := parseBytes(val)
				if err != nil {
					c.errorf(k, "tmpfs size %q: %v", val, err)
					ok = false
				}
				m.TmpfsSize = b
			case name == "mode":
				md, err := strconv.ParseUint(val, 8, 32)
				if err != nil {
					c.errorf(k, "tmpfs mode %q is not an octal mode", val)
					ok = false
				}
				m.TmpfsMode = uint32(md)
			case name == "uid" || name == "gid":
				if _, err := strconv.ParseUint(val, 10, 32); err != nil {
					c.errorf(k, "tmpfs %s %q is not a number", name, val)
					ok = false
				}
				m.Options = append(m.Options, o)
			case slices.Contains(tmpfsFlags(), o):
				if o == "ro" {
					m.ReadOnly = true
				} else {
					m.Options = append(m.Options, o)
				}
			default:
				c.errorf(k, "tmpfs option %q is not supported (size, mode, uid, gid, %s)", o, strings.Join(tmpfsFlags(), ", "))
				ok = false
			}
		}
		if ok {
			seen(k, m.Target)
			out.Mounts = append(out.Mounts, m)
		}
	}
}

// octalDigits reads a mode written as octal digits but decoded as a decimal number (tmpfs.mode:
// 1777 in YAML is the integer 1777, meant as 0o1777). A value with an 8 or 9 in it was not meant
// as octal and is kept.
func octalDigits(m uint32) uint32 {
	if v, err := strconv.ParseUint(strconv.FormatUint(uint64(m), 10), 8, 32); err == nil {
		return uint32(v)
	}
	return m
}

// parseBytes reads a size like 64m, 1g, 1024 (bytes), as Compose does.
func parseBytes(s string) (int64, error) {
	var b types.UnitBytes
	if err := b.UnmarshalJSON([]byte(strconv.Quote(s))); err != nil {
		return 0, err
	}
	return int64(b), nil
}

func dur(d *types.Duration) time.Duration {
	if d == nil {
		return 0
	}
	return time.Duration(*d)
}

// normalizeCaps spells capabilities as Compose users mostly write them and the kernel names
// them without the prefix: net_admin, CAP_NET_ADMIN -> NET_ADMIN; ALL stays ALL.
func normalizeCaps(caps []string) []string {
	if caps == nil {
		return nil
	}
	out := make([]string, len(caps))
	for i, c := range caps {
		out[i] = strings.TrimPrefix(strings.ToUpper(c), "CAP_")
	}
	return out
}

func cloneCmd(c types.ShellCommand) []string {
	if c == nil {
		return nil
	}
	return append([]string{}, c...)
}

func cloneMap[M ~map[string]string](m M) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// resolvedMap keeps the entries that have a value: KEY without = and without a value in the
// environment is left out, as Compose does.
func resolvedMap(m types.MappingWithEquals) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if v != nil {
			out[k] = *v
		}
	}
	return out
}
