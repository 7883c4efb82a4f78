package oci

import (
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/stackrun/stack/spec"
)

func input(s *spec.Service) Input {
	return Input{Service: s, Process: Process{Args: []string{"/app"}}, Rootfs: "/r", NetnsPath: "/run/stack/netns/x", CgroupsPath: "stack/p/x", Hostname: "abc123"}
}

func TestDefaultsOfAnUnprivilegedContainer(t *testing.T) {
	cfg, err := Build(input(&spec.Service{Name: "web"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Hostname != "abc123" || cfg.Process.Cwd != "/" || !cfg.Process.NoNewPrivileges {
		t.Errorf("hostname %q cwd %q nnp %v", cfg.Hostname, cfg.Process.Cwd, cfg.Process.NoNewPrivileges)
	}
	caps := cfg.Process.Capabilities
	if len(caps.Inheritable) != 0 || len(caps.Ambient) != 0 {
		t.Errorf("inheritable/ambient must be empty: %+v", caps)
	}
	if len(caps.Bounding) != len(DefaultCapabilities) || slices.Contains(caps.Bounding, "CAP_SYS_ADMIN") {
		t.Errorf("bounding %v", caps.Bounding)
	}
	if !slices.Contains(cfg.Linux.MaskedPaths, "/proc/kcore") || !slices.Contains(cfg.Linux.ReadonlyPaths, "/proc/sys") {
		t.Errorf("masked %v readonly %v", cfg.Linux.MaskedPaths, cfg.Linux.ReadonlyPaths)
	}
	if got := *cfg.Linux.Resources.Pids.Limit; got != DefaultPidsLimit {
		t.Errorf("default pids limit %d", got)
	}
	if d := cfg.Linux.Resources.Devices[0]; d.Allow || d.Access != "rwm" || d.Type != "" {
		t.Errorf("device rules must start by denying everything: %+v", d)
	}
	var types []string
	for _, ns := range cfg.Linux.Namespaces {
		types = append(types, string(ns.Type))
		if ns.Type == specs.NetworkNamespace && ns.Path != "/run/stack/netns/x" {
			t.Errorf("net namespace path %q", ns.Path)
		}
	}
	if strings.Join(types, ",") != "pid,mount,uts,ipc,network,cgroup" {
		t.Errorf("namespaces %v", types)
	}
	for _, m := range cfg.Mounts {
		if m.Destination == "/sys" && !slices.Contains(m.Options, "ro") {
			t.Errorf("/sys must be read-only: %v", m.Options)
		}
		if m.Destination == "/dev/shm" && !slices.Contains(m.Options, "size=67108864") {
			t.Errorf("/dev/shm default size: %v", m.Options)
		}
	}
}

func TestServiceKeysReachTheConfig(t *testing.T) {
	s := &spec.Service{
		Name: "db", Hostname: "db1", Domainname: "example.test", ReadOnly: true, Tty: true,
		CapAdd: []string{"net_admin"}, CapDrop: []string{"MKNOD", "CAP_NET_RAW"},
		Resources: spec.Resources{MemoryLimit: 64 << 20, MemoryReservation: 32 << 20, MemorySwap: 128 << 20, CPUs: 1.5, CPUShares: 512, PidsLimit: 20},
		Sysctls:   map[string]string{"net.core.somaxconn": "1024"},
		Ulimits:   map[string]spec.Ulimit{"nofile": {Soft: 1024, Hard: 2048}},
		ShmSize:   1 << 20,
	}
	in := input(s)
	in.Etc = EtcFiles{Hosts: "/s/hosts", Resolv: "/s/resolv.conf"}
	in.Mounts = []specs.Mount{{Destination: "/data", Type: "bind", Source: "/vol/_data", Options: []string{"rbind"}}}
	cfg, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Hostname != "db1" || cfg.Domainname != "example.test" || !cfg.Root.Readonly || !cfg.Process.Terminal {
		t.Errorf("hostname/domain/readonly/tty: %+v %+v", cfg.Root, cfg.Process)
	}
	b := cfg.Process.Capabilities.Bounding
	if !slices.Contains(b, "CAP_NET_ADMIN") || slices.Contains(b, "CAP_MKNOD") || slices.Contains(b, "CAP_NET_RAW") {
		t.Errorf("caps %v", b)
	}
	r := cfg.Linux.Resources
	if *r.Memory.Limit != 64<<20 || *r.Memory.Reservation != 32<<20 || *r.Memory.Swap != 128<<20 {
		t.Errorf("memory %+v", r.Memory)
	}
	if *r.CPU.Shares != 512 || *r.CPU.Quota != 150000 || *r.CPU.Period != 100000 {
		t.Errorf("cpu %+v", r.CPU)
	}
	if *r.Pids.Limit != 20 {
		t.Errorf("pids %d", *r.Pids.Limit)
	}
	if cfg.Linux.Sysctl["net.core.somaxconn"] != "1024" {
		t.Errorf("sysctl %v", cfg.Linux.Sysctl)
	}
	if rl := cfg.Process.Rlimits; len(rl) != 1 || rl[0].Type != "RLIMIT_NOFILE" || rl[0].Soft != 1024 || rl[0].Hard != 2048 {
		t.Errorf("rlimits %+v", rl)
	}
	var dests []string
	for _, m := range cfg.Mounts {
		dests = append(dests, m.Destination)
		if m.Destination == "/dev/shm" && !slices.Contains(m.Options, "size=1048576") {
			t.Errorf("shm_size: %v", m.Options)
		}
	}
	// volumes come last so they can sit over anything the defaults mount
	if got := strings.Join(dests[len(dests)-3:], ","); got != "/etc/hosts,/etc/resolv.conf,/data" {
		t.Errorf("mount order tail %s", got)
	}
}

func TestPrivilegedAndLiftedPidsLimit(t *testing.T) {
	cfg, err := Build(input(&spec.Service{Name: "p", Privileged: true, Resources: spec.Resources{PidsLimit: -1}}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Process.NoNewPrivileges || len(cfg.Linux.MaskedPaths) != 0 || !slices.Contains(cfg.Process.Capabilities.Bounding, "CAP_SYS_ADMIN") {
		t.Errorf("privileged: %+v", cfg.Process)
	}
	if cfg.Linux.Resources.Pids != nil {
		t.Errorf("pids_limit -1 must lift the default: %+v", cfg.Linux.Resources.Pids)
	}
	if d := cfg.Linux.Resources.Devices; len(d) != 1 || !d[0].Allow {
		t.Errorf("privileged devices %+v", d)
	}
}

func TestErrorsNameTheServiceAndKey(t *testing.T) {
	for _, tc := range []struct {
		s    *spec.Service
		args []string
		want string
	}{
		{&spec.Service{Name: "a", CapAdd: []string{"CAP_FLY"}}, []string{"x"}, `service a: cap_add: unknown capability "CAP_FLY"`},
		{&spec.Service{Name: "b", Ulimits: map[string]spec.Ulimit{"nofile": {Soft: 100, Hard: 50}}}, []string{"x"}, "service b: ulimits.nofile: soft limit 100 is above the hard limit 50"},
		{&spec.Service{Name: "c", Ulimits: map[string]spec.Ulimit{"nofile": {Soft: 65536, Hard: 65536}}}, []string{"x"}, "service c: ulimits.nofile: hard limit 65536 is above what this host lets stack set (20000)"},
		{&spec.Service{Name: "d", Ulimits: map[string]spec.Ulimit{"files": {Soft: 1}}}, []string{"x"}, "service d: ulimits.files: unknown resource"},
		{&spec.Service{Name: "e"}, nil, "service e: no command: neither the service nor its image sets one"},
	} {
		in := input(tc.s)
		in.Process.Args = tc.args
		in.RlimitHard = func(res int) (uint64, bool) { return 20000, res == unix.RLIMIT_NOFILE }
		_, err := Build(in)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("got %v, want prefix %q", err, tc.want)
		}
	}
}
