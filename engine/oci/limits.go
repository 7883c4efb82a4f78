package oci

import (
	"fmt"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/stackrun/stack/spec"
)

// DefaultCapabilities is Docker's default bounding/effective set for unprivileged containers.
var DefaultCapabilities = []string{
	"CAP_AUDIT_WRITE", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
	"CAP_MKNOD", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP",
	"CAP_SETUID", "CAP_SYS_CHROOT",
}

// allCapabilities is every capability the kernel headers name, for privileged and cap_add: ALL.
var allCapabilities = []string{
	"CAP_AUDIT_CONTROL", "CAP_AUDIT_READ", "CAP_AUDIT_WRITE", "CAP_BLOCK_SUSPEND", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
	"CAP_FSETID", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_KILL", "CAP_LEASE", "CAP_LINUX_IMMUTABLE",
	"CAP_MAC_ADMIN", "CAP_MAC_OVERRIDE", "CAP_MKNOD", "CAP_NET_ADMIN", "CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST", "CAP_NET_RAW", "CAP_PERFMON", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP",
	"CAP_SETUID", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_CHROOT", "CAP_SYS_MODULE", "CAP_SYS_NICE",
	"CAP_SYS_PACCT", "CAP_SYS_PTRACE", "CAP_SYS_RAWIO", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
	"CAP_SYS_TTY_CONFIG", "CAP_SYSLOG", "CAP_WAKE_ALARM",
}

func capName(c string) string {
	c = strings.ToUpper(strings.TrimSpace(c))
	if c == "ALL" {
		return c
	}
	if !strings.HasPrefix(c, "CAP_") {
		c = "CAP_" + c
	}
	return c
}

// capabilities applies cap_add and cap_drop (in Docker's order: drop, then add) to the default
// set. Inheritable and ambient stay empty, so an exec'd setuid-less binary gains nothing.
func capabilities(s *spec.Service) (*specs.LinuxCapabilities, error) {
	set := slices.Clone(DefaultCapabilities)
	if s.Privileged {
		set = slices.Clone(allCapabilities)
	}
	for _, c := range s.CapDrop {
		n := capName(c)
		if n == "ALL" {
			set = nil
			continue
		}
		if !slices.Contains(allCapabilities, n) {
			return nil, fmt.Errorf("cap_drop: unknown capability %q", c)
		}
		set = slices.DeleteFunc(set, func(x string) bool { return x == n })
	}
	for _, c := range s.CapAdd {
		n := capName(c)
		if n == "ALL" {
			set = slices.Clone(allCapabilities)
			continue
		}
		if !slices.Contains(allCapabilities, n) {
			return nil, fmt.Errorf("cap_add: unknown capability %q", c)
		}
		if !slices.Contains(set, n) {
			set = append(set, n)
		}
	}
	slices.Sort(set)
	return &specs.LinuxCapabilities{Bounding: set, Effective: slices.Clone(set), Permitted: slices.Clone(set)}, nil
}

var rlimitNames = map[string]int{
	"core": unix.RLIMIT_CORE, "cpu": unix.RLIMIT_CPU, "data": unix.RLIMIT_DATA, "fsize": unix.RLIMIT_FSIZE,
	"locks": unix.RLIMIT_LOCKS, "memlock": unix.RLIMIT_MEMLOCK, "msgqueue": unix.RLIMIT_MSGQUEUE,
	"nice": unix.RLIMIT_NICE, "nofile": unix.RLIMIT_NOFILE, "nproc": unix.RLIMIT_NPROC,
	"rss": unix.RLIMIT_RSS, "rtprio": unix.RLIMIT_RTPRIO, "rttime": unix.RLIMIT_RTTIME,
	"sigpending": unix.RLIMIT_SIGPENDING, "stack": unix.RLIMIT_STACK, "as": unix.RLIMIT_AS,
}

// rlimits sets only the ulimits the service asks for; the rest are inherited from stack, which
// keeps them within what this host lets root set (no CAP_SYS_RESOURCE: hard limits cannot rise).
func rlimits(s *spec.Service, hard func(int) (uint64, bool)) ([]specs.POSIXRlimit, error) {
	var out []specs.POSIXRlimit
	names := make([]string, 0, len(s.Ulimits))
	for n := range s.Ulimits {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		u := s.Ulimits[n]
		res, ok := rlimitNames[n]
		if !ok {
			return nil, fmt.Errorf("ulimits.%s: unknown resource (valid: %s)", n, strings.Join(sortedNames(), ", "))
		}
		soft, hardv := uint64(u.Soft), uint64(u.Hard)
		if u.Soft < 0 {
			soft = unix.RLIM_INFINITY
		}
		if u.Hard < 0 {
			hardv = unix.RLIM_INFINITY
		}
		if hardv == 0 {
			hardv = soft
		}
		if soft > hardv {
			return nil, fmt.Errorf("ulimits.%s: soft limit %d is above the hard limit %d", n, soft, hardv)
		}
		if hard != nil {
			if max, ok := hard(res); ok && hardv > max {
				return nil, fmt.Errorf("ulimits.%s: hard limit %d is above what this host lets stack set (%d)", n, hardv, max)
			}
		}
		out = append(out, specs.POSIXRlimit{Type: "RLIMIT_" + strings.ToUpper(n), Soft: soft, Hard: hardv})
	}
	return out, nil
}

func sortedNames() []string {
	var n []string
	for k := range rlimitNames {
		n = append(n, k)
	}
	slices.Sort(n)
	return n
}

// defaultDevices is Docker's device cgroup allowlist: nothing, then mknod of any node (so images
// can ship device files) but read/write only of the harmless character devices.
func defaultDevices() []specs.LinuxDeviceCgroup {
	c := func(major, minor int64, access string) specs.LinuxDeviceCgroup {
		d := specs.LinuxDeviceCgroup{Allow: true, Type: "c", Access: access}
		if major >= 0 {
			d.Major = &major
		}
		if minor >= 0 {
			d.Minor = &minor
		}
		return d
	}
	b := c(-1, -1, "m")
	b.Type = "b"
	return []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		c(-1, -1, "m"), b,
		c(1, 3, "rwm"), c(1, 5, "rwm"), c(1, 7, "rwm"), c(1, 8, "rwm"), c(1, 9, "rwm"), // null zero full random urandom
		c(5, 0, "rwm"), c(5, 1, "rwm"), c(5, 2, "rwm"), // tty console ptmx
		c(136, -1, "rwm"), // pts
		c(10, 200, "rwm"), // tun
	}
}

// cpuPeriod is the CFS period used to express cpus: as a quota (Docker's 100 ms).
const cpuPeriod = 100000

func resources(s *spec.Service) *specs.LinuxResources {
	r := s.Resources
	out := &specs.LinuxResources{Devices: defaultDevices()}
	if s.Privileged {
		out.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
	}
	mem := &specs.LinuxMemory{}
	if r.MemoryLimit > 0 {
		mem.Limit = ptr(r.MemoryLimit)
	}
	if r.MemoryReservation > 0 {
		mem.Reservation = ptr(r.MemoryReservation)
	}
	if r.MemorySwap != 0 {
		mem.Swap = ptr(r.MemorySwap) // memory+swap, as Compose's memswap_limit; -1 unlimited
	}
	if *mem != (specs.LinuxMemory{}) {
		out.Memory = mem
	}
	cpu := &specs.LinuxCPU{}
	if r.CPUShares > 0 {
		cpu.Shares = ptr(uint64(r.CPUShares))
	}
	if r.CPUs > 0 {
		cpu.Period = ptr(uint64(cpuPeriod))
		cpu.Quota = ptr(int64(r.CPUs * cpuPeriod))
	}
	if *cpu != (specs.LinuxCPU{}) {
		out.CPU = cpu
	}
	switch {
	case r.PidsLimit > 0:
		out.Pids = &specs.LinuxPids{Limit: ptr(r.PidsLimit)}
	case r.PidsLimit == 0:
		out.Pids = &specs.LinuxPids{Limit: ptr(int64(DefaultPidsLimit))}
	}
	return out
}

func ptr[T any](v T) *T { return &v }
