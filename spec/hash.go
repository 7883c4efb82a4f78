package spec

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
	"time"
)

// hashVersion changes whenever what goes into the hash changes, so that every container is
// recreated once rather than compared against a hash computed differently.
const hashVersion = 1

// Hash returns the canonical config hash of a service: hex sha256 of a canonical JSON document
// built from the model, so it does not depend on key order, map order, short or long syntax, or
// environment given as a list or a map (all of those are gone once the file is converted).
//
// In the hash — everything that changes the container as created:
//   - image, command, entrypoint (nil "image default" differs from an explicit empty list)
//   - environment (resolved) and the sha256 of every env_file's content, in order: editing an
//     env file changes the hash even when no key in the stack file moved
//   - ports and expose (as sets), mounts (sorted by target), networks with aliases (as sets) and
//     ipv4_address, network_mode
//   - healthcheck, restart policy, resources (memory, swap, reservation, cpus, cpu_shares, pids)
//   - user, working_dir, hostname, domainname, container_name, labels
//   - stop_signal, stop_grace_period, init, read_only, privileged, tty, stdin_open
//   - cap_add, cap_drop (as sets, CAP_ prefix and case normalized), ulimits, sysctls,
//     extra_hosts (as a set), dns, dns_search, dns_opt (in order: resolv.conf order matters),
//     shm_size
//
// Left out — they do not change a container: the service name, replicas/scale (more or fewer
// containers, each the same), pull_policy, profiles, depends_on (ordering only), build (the
// image it produces is tracked by digest elsewhere), logging (stack's own log files), x-* keys.
func Hash(s *Service) string {
	c := canonicalService{
		V:             hashVersion,
		Image:         s.Image,
		Command:       s.Command,
		Entrypoint:    s.Entrypoint,
		Environment:   nilIfEmpty(s.Environment),
		Ports:         sortedPorts(s.Ports),
		Expose:        sortedPorts(s.Expose),
		Mounts:        slices.Clone(s.Mounts),
		NetworkMode:   s.NetworkMode,
		Restart:       s.Restart,
		Resources:     s.Resources,
		User:          s.User,
		WorkingDir:    s.WorkingDir,
		Hostname:      s.Hostname,
		Domainname:    s.Domainname,
		ContainerName: s.ContainerName,
		Labels:        nilIfEmpty(s.Labels),
		StopSignal:    strings.ToUpper(strings.TrimPrefix(strings.ToUpper(s.StopSignal), "SIG")),
		Init:          s.Init,
		ReadOnly:      s.ReadOnly,
		Privileged:    s.Privileged,
		CapAdd:        capSet(s.CapAdd),
		CapDrop:       capSet(s.CapDrop),
		Ulimits:       s.Ulimits,
		Sysctls:       nilIfEmpty(s.Sysctls),
		DNS:           s.DNS,
		DNSSearch:     s.DNSSearch,
		DNSOptions:    s.DNSOptions,
		ShmSize:       s.ShmSize,
		Tty:           s.Tty,
		StdinOpen:     s.StdinOpen,
	}
	if c.Command == nil {
		c.CommandDefault = true
	}
	if c.Entrypoint == nil {
		c.EntrypointDefault = true
	}
	for _, e := range s.EnvFiles {
		c.EnvFiles = append(c.EnvFiles, e.Digest)
	}
	slices.SortFunc(c.Mounts, func(a, b Mount) int { return cmp.Compare(a.Target, b.Target) })
	for i := range c.Mounts {
		c.Mounts[i].Options = slices.Sorted(slices.Values(c.Mounts[i].Options))
		// Whether a missing host path is created is decided before the container exists
		// (and differs between short and long syntax); it is not part of the container.
		c.Mounts[i].CreateHostPath = false
	}
	if len(s.Networks) > 0 {
		c.Networks = map[string]ServiceNetwork{}
		for name, n := range s.Networks {
			if n == nil {
				n = &ServiceNetwork{}
			}
			c.Networks[name] = ServiceNetwork{
				Aliases:     slices.Compact(slices.Sorted(slices.Values(n.Aliases))),
				IPv4Address: n.IPv4Address,
			}
		}
	}
	if s.Healthcheck != nil {
		h := *s.Healthcheck
		c.Healthcheck = &h
	}
	if s.StopGracePeriod != nil {
		c.StopGracePeriod = s.StopGracePeriod
	}
	c.ExtraHosts = slices.Clone(s.ExtraHosts)
	slices.SortFunc(c.ExtraHosts, func(a, b ExtraHost) int {
		return cmp.Or(cmp.Compare(a.Host, b.Host), cmp.Compare(a.IP, b.IP))
	})
	c.ExtraHosts = slices.Compact(c.ExtraHosts)
	// Every field is a plain value: Marshal cannot fail, and it sorts map keys.
	data, _ := json.Marshal(c)
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// canonicalService is what Hash serializes; field names are part of the hash, keep them.
type canonicalService struct {
	V                 int
	Image             string
	Command           []string
	CommandDefault    bool `json:",omitempty"`
	Entrypoint        []string
	EntrypointDefault bool `json:",omitempty"`
	Environment       map[string]string
	EnvFiles          []string
	Ports             []Port
	Expose            []Port
	Mounts            []Mount
	Networks          map[string]ServiceNetwork
	NetworkMode       string
	Healthcheck       *Healthcheck
	Restart           RestartPolicy
	Resources         Resources
	User              string
	WorkingDir        string
	Hostname          string
	Domainname        string
	ContainerName     string
	Labels            map[string]string
	StopSignal        string
	StopGracePeriod   *time.Duration
	Init              bool
	ReadOnly          bool
	Privileged        bool
	CapAdd            []string
	CapDrop           []string
	Ulimits           map[string]Ulimit
	Sysctls           map[string]string
	ExtraHosts        []ExtraHost
	DNS               []string
	DNSSearch         []string
	DNSOptions        []string
	ShmSize           int64
	Tty               bool
	StdinOpen         bool
}

func sortedPorts(ps []Port) []Port {
	out := slices.Clone(ps)
	slices.SortFunc(out, func(a, b Port) int {
		return cmp.Or(cmp.Compare(a.Target, b.Target), cmp.Compare(a.Protocol, b.Protocol),
			cmp.Compare(a.Published, b.Published), cmp.Compare(a.HostIP, b.HostIP))
	})
	return slices.Compact(out)
}

// capSet normalizes capability names (net_admin, CAP_NET_ADMIN -> NET_ADMIN) into a sorted set.
func capSet(caps []string) []string {
	if len(caps) == 0 {
		return nil
	}
	out := make([]string, len(caps))
	for i, c := range caps {
		out[i] = strings.TrimPrefix(strings.ToUpper(c), "CAP_")
	}
	slices.Sort(out)
	return slices.Compact(out)
}
