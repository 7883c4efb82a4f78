package runtime

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func minimalSpec() *specs.Spec {
	return &specs.Spec{
		Root:    &specs.Root{Path: "rootfs"},
		Process: &specs.Process{Args: []string{"true"}},
		Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{
			{Type: specs.PIDNamespace}, {Type: specs.MountNamespace}, {Type: specs.NetworkNamespace},
		}},
	}
}

func TestPlanRootfsDefaults(t *testing.T) {
	p, err := planRootfs(minimalSpec(), "/b/rootfs", "/b", "")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range p.Steps {
		got = append(got, s.String())
	}
	want := []string{
		"mount /proc", "mount /dev", "mount /dev/pts", "mount /dev/shm", "mount /dev/mqueue", "mount /sys",
		"mknod /dev/null", "mknod /dev/zero", "mknod /dev/full", "mknod /dev/random", "mknod /dev/urandom", "mknod /dev/tty",
		"symlink /dev/fd", "symlink /dev/stdin", "symlink /dev/stdout", "symlink /dev/stderr", "symlink /dev/ptmx",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("steps:\n got %q\nwant %q", got, want)
	}
	if p.Propagation != unix.MS_SLAVE|unix.MS_REC {
		t.Errorf("root propagation = %#x, want rslave", p.Propagation)
	}
	if !reflect.DeepEqual(p.Masked, DefaultMaskedPaths) || !reflect.DeepEqual(p.ReadOnly, DefaultReadonlyPaths) {
		t.Errorf("masked/readonly defaults not applied: %v %v", p.Masked, p.ReadOnly)
	}
	if s := p.Steps[5]; s.FSType != "sysfs" || s.Flags&unix.MS_RDONLY == 0 {
		t.Errorf("/sys step = %+v, want read-only sysfs", s)
	}
}

func TestPlanRootfsConfigMounts(t *testing.T) {
	s := minimalSpec()
	s.Root.Readonly = true
	s.Linux.MaskedPaths = []string{}
	s.Linux.RootfsPropagation = "rprivate"
	s.Mounts = []specs.Mount{
		{Destination: "/dev", Type: "bind", Source: "/dev", Options: []string{"rbind"}},
		{Destination: "/data", Type: "bind", Source: "data", Options: []string{"rbind", "ro", "nosuid", "rprivate"}},
		{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nodev", "size=10m", "mode=1777"}},
	}
	p, err := planRootfs(s, "/b/rootfs", "/b", "/dev/pts/3")
	if err != nil {
		t.Fatal(err)
	}
	if !p.ReadOnlyRoot || len(p.Masked) != 0 || p.Propagation != unix.MS_PRIVATE|unix.MS_REC {
		t.Errorf("plan = %+v", p)
	}
	byTarget := map[string]step{}
	var order []string
	for _, st := range p.Steps {
		byTarget[st.Target] = st
		order = append(order, st.String())
	}
	// /dev given by the config: no tmpfs, no device nodes, no symlinks.
	if _, ok := byTarget["/dev/null"]; ok {
		t.Errorf("device nodes created in a bind-mounted /dev: %q", order)
	}
	data := byTarget["/data"]
	if data.Source != "/b/data" || !data.Remount || data.Flags&unix.MS_RDONLY == 0 || data.Flags&unix.MS_REC == 0 ||
		!reflect.DeepEqual(data.Propagation, []uintptr{unix.MS_PRIVATE | unix.MS_REC}) {
		t.Errorf("/data step = %+v", data)
	}
	if tmp := byTarget["/tmp"]; tmp.Data != "size=10m,mode=1777" || tmp.Flags != unix.MS_NODEV {
		t.Errorf("/tmp step = %+v", tmp)
	}
	if c := p.Steps[len(p.Steps)-1]; c.Target != "/dev/console" || c.Source != "/dev/pts/3" {
		t.Errorf("last step = %+v, want console bind", c)
	}
}

func TestPlanRootfsRejects(t *testing.T) {
	for name, mutate := range map[string]func(*specs.Spec){
		"relative destination": func(s *specs.Spec) { s.Mounts = []specs.Mount{{Destination: "tmp", Type: "tmpfs"}} },
		"bind without source":  func(s *specs.Spec) { s.Mounts = []specs.Mount{{Destination: "/x", Type: "bind"}} },
		"device outside /dev":  func(s *specs.Spec) { s.Linux.Devices = []specs.LinuxDevice{{Path: "/etc/x", Type: "c"}} },
		"device bad type":      func(s *specs.Spec) { s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/x", Type: "q"}} },
		"bad propagation":      func(s *specs.Spec) { s.Linux.RootfsPropagation = "weird" },
		"relative mask":        func(s *specs.Spec) { s.Linux.MaskedPaths = []string{"proc/kcore"} },
	} {
		t.Run(name, func(t *testing.T) {
			s := minimalSpec()
			mutate(s)
			if _, err := planRootfs(s, "/r", "/b", ""); !errors.Is(err, ErrInvalid) {
				t.Errorf("err = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestValidateSpec(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*specs.Spec)
		want   string // substring of the error, "" for valid
	}{
		{"minimal", func(*specs.Spec) {}, ""},
		{"no args", func(s *specs.Spec) { s.Process.Args = nil }, "process.args"},
		{"no mount ns", func(s *specs.Spec) { s.Linux.Namespaces = s.Linux.Namespaces[:1] }, "mount namespace"},
		{"user ns", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		}, "not supported"},
		{"join pid ns", func(s *specs.Spec) { s.Linux.Namespaces[0].Path = "/proc/1/ns/pid" }, "joining"},
		{"bad cap", func(s *specs.Spec) {
			s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: []string{"CAP_FLY"}}
		}, "CAP_FLY"},
		{"host sysctl", func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"vm.swappiness": "1"} }, "not namespaced"},
		{"net sysctl", func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"} }, ""},
		{"net sysctl, host net", func(s *specs.Spec) {
			s.Linux.Namespaces = s.Linux.Namespaces[:2]
			s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
		}, "network namespace"},
		{"bad rlimit", func(s *specs.Spec) { s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_FOO"}} }, "RLIMIT_FOO"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := minimalSpec()
			tc.mutate(s)
			err := validateSpec(s)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrInvalid)):
				t.Errorf("err = %v, want ErrInvalid mentioning %q", err, tc.want)
			}
		})
	}
}

func TestCloneFlags(t *testing.T) {
	s := minimalSpec()
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.CgroupNamespace},
		specs.LinuxNamespace{Type: specs.UTSNamespace, Path: "/run/netns/x"})
	s.Linux.Namespaces[2].Path = "/run/netns/stk"
	p, err := cloneFlags(s)
	if err != nil {
		t.Fatal(err)
	}
	if p.Clone != unix.CLONE_NEWPID|unix.CLONE_NEWNS || !p.Cgroup ||
		!reflect.DeepEqual(p.Join, map[string]string{"network": "/run/netns/stk", "uts": "/run/netns/x"}) {
		t.Errorf("plan = %+v", p)
	}
}

func TestResolveCaps(t *testing.T) {
	def, err := resolveCaps(nil)
	if err != nil {
		t.Fatal(err)
	}
	// Docker's default set, as /proc/self/status shows it in a docker container.
	if def.Effective != 0xa80425fb || def.Bounding != def.Effective || def.Permitted != def.Effective ||
		def.Inheritable != 0 || def.Ambient != 0 {
		t.Errorf("default caps = %+v", def)
	}
	c, err := resolveCaps(&specs.LinuxCapabilities{Bounding: []string{"CAP_NET_ADMIN", "cap_sys_admin"}, Ambient: []string{"CAP_NET_ADMIN"}})
	if err != nil {
		t.Fatal(err)
	}
	if c.Bounding != 1<<12|1<<21 || c.Ambient != 1<<12 || c.Effective != 0 {
		t.Errorf("caps = %+v", c)
	}
}

func TestResources(t *testing.T) {
	limit := int64(32 << 20)
	s := minimalSpec()
	s.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}}
	s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229}}
	r := Resources(s)
	if *r.Memory.Limit != limit || len(r.Devices) != 1 || !r.Devices[0].Allow || *r.Devices[0].Major != 10 ||
		*r.Devices[0].Minor != 229 || r.Devices[0].Access != "rwm" {
		t.Errorf("resources = %+v", r)
	}
	if len(s.Linux.Resources.Devices) != 0 {
		t.Error("Resources modified the config")
	}
}

func TestParseStartTime(t *testing.T) {
	line := "1234 (a (weird) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 10 18446744073709551615\n"
	st, err := parseStartTime([]byte(line))
	if err != nil || st != 98765 {
		t.Errorf("start time = %d, %v; want 98765", st, err)
	}
	if procState([]byte(line)) != "S" {
		t.Errorf("state = %q", procState([]byte(line)))
	}
	if _, err := parseStartTime([]byte("12 (x) S 1")); err == nil {
		t.Error("short line parsed")
	}
}

// TestRecordAliveChecksStartTimeAndBoot: a record names a live process only when the pid,
// its start time and the boot all match; a pid reused by another process (another start time,
// or the same start time in another boot) is dead.
func TestRecordAliveChecksStartTimeAndBoot(t *testing.T) {
	self := os.Getpid()
	start, err := procStartTime(self)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		rec  record
		want bool
	}{
		{"same process, this boot", record{Pid: self, StartTime: start, BootID: bootID()}, true},
		{"older record without boot id", record{Pid: self, StartTime: start}, true},
		{"pid reused: another start time", record{Pid: self, StartTime: start + 1, BootID: bootID()}, false},
		{"pid and start time reused after a reboot", record{Pid: self, StartTime: start, BootID: "00000000-0000-4000-8000-000000000000"}, false},
		{"no pid", record{StartTime: start, BootID: bootID()}, false},
	} {
		if got := tc.rec.alive(); got != tc.want {
			t.Errorf("%s: alive = %v, want %v", tc.name, got, tc.want)
		}
	}
	if bootID() == "" {
		t.Error("no boot id read from /proc/sys/kernel/random/boot_id")
	}
}

func TestResolveUser(t *testing.T) {
	passwd := "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n# comment\nbad:x:notanumber:1::/:/bin/sh\n"
	group := "root:x:0:\napp:x:1000:\nextra:x:2000:app,other\naudio:x:29:other\n"
	for _, tc := range []struct {
		user string
		want specs.User
		err  bool
	}{
		{"", specs.User{UID: 0, GID: 0}, false},
		{"root", specs.User{UID: 0, GID: 0}, false},
		{"app", specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{2000}}, false},
		{"1000", specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{2000}}, false},
		{"app:audio", specs.User{UID: 1000, GID: 29, AdditionalGids: []uint32{2000}}, false},
		{"4242:4343", specs.User{UID: 4242, GID: 4343}, false},
		{"4242", specs.User{UID: 4242, GID: 0}, false},
		{"nosuch", specs.User{}, true},
		{"app:nosuch", specs.User{}, true},
	} {
		got, err := resolveUser(tc.user, strings.NewReader(passwd), strings.NewReader(group))
		if (err != nil) != tc.err || (!tc.err && !reflect.DeepEqual(got, tc.want)) {
			t.Errorf("resolveUser(%q) = %+v, %v; want %+v (err %v)", tc.user, got, err, tc.want, tc.err)
		}
	}
}

func TestCheckID(t *testing.T) {
	for id, ok := range map[string]bool{
		"web-1": true, "a": true, "A.b_c-9": true, "": false, "-x": false, ".x": false,
		"a/b": false, "..": false, "a b": false, strings.Repeat("a", 128): true, strings.Repeat("a", 129): false,
	} {
		if err := checkID(id); (err == nil) != ok {
			t.Errorf("checkID(%q) = %v, want ok=%v", id, err, ok)
		}
	}
}
