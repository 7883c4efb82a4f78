package seccomp

import (
	"encoding/binary"
	"slices"
	"testing"

	"github.com/elastic/go-seccomp-bpf/arch"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// call is one syscall as the filter sees it.
type call struct {
	arch uint32
	nr   uint32
	args [6]uint64
}

// data lays out struct seccomp_data. golang.org/x/net/bpf's VM loads words big-endian where the
// kernel loads them in native order; every load of the filter is one aligned 32-bit word, so
// writing each word big-endian (and the low word of an argument first, as on little-endian
// machines) gives the VM exactly the values the kernel would see.
func (c call) data() []byte {
	b := make([]byte, 64)
	binary.BigEndian.PutUint32(b[0:], c.nr)
	binary.BigEndian.PutUint32(b[4:], c.arch)
	for i, a := range c.args {
		binary.BigEndian.PutUint32(b[16+8*i:], uint32(a))
		binary.BigEndian.PutUint32(b[20+8*i:], uint32(a>>32))
	}
	return b
}

func run(t *testing.T, prog Program, c call) uint32 {
	t.Helper()
	insts, ok := bpf.Disassemble(prog)
	if !ok {
		t.Fatalf("program does not disassemble")
	}
	vm, err := bpf.NewVM(insts)
	if err != nil {
		t.Fatalf("NewVM: %v", err)
	}
	r, err := vm.Run(c.data())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return uint32(r)
}

func nr(t *testing.T, name string) uint32 {
	t.Helper()
	n, ok := arch.X86_64.SyscallNames[name]
	if !ok {
		t.Fatalf("no syscall %s on x86_64", name)
	}
	return uint32(n)
}

const (
	allow = unix.SECCOMP_RET_ALLOW
	eperm = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
	enosy = unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
	x8664 = uint32(unix.AUDIT_ARCH_X86_64)
)

func u(v uint) *uint { return &v }

func TestCompileOperators(t *testing.T) {
	big := uint64(0x1_0000_0005)
	rule := func(op specs.LinuxSeccompOperator, v, v2 uint64) *specs.LinuxSeccomp {
		return &specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"write"}, Action: specs.ActErrno, ErrnoRet: u(13),
				Args: []specs.LinuxSeccompArg{{Index: 2, Op: op, Value: v, ValueTwo: v2}}}},
		}
	}
	deny := uint32(unix.SECCOMP_RET_ERRNO | 13)
	tests := []struct {
		name string
		op   specs.LinuxSeccompOperator
		v    uint64
		v2   uint64
		arg  uint64
		want uint32
	}{
		{"eq match", specs.OpEqualTo, big, 0, big, deny},
		{"eq low word only", specs.OpEqualTo, big, 0, 5, allow},
		{"ne differs", specs.OpNotEqual, big, 0, 5, deny},
		{"ne same", specs.OpNotEqual, big, 0, big, allow},
		{"gt above in high word", specs.OpGreaterThan, 7, 0, big, deny},
		{"gt equal", specs.OpGreaterThan, big, 0, big, allow},
		{"gt below", specs.OpGreaterThan, big, 0, 9, allow},
		{"ge equal", specs.OpGreaterEqual, big, 0, big, deny},
		{"ge below", specs.OpGreaterEqual, big, 0, big - 1, allow},
		{"lt below", specs.OpLessThan, big, 0, 9, deny},
		{"lt equal", specs.OpLessThan, big, 0, big, allow},
		{"lt above", specs.OpLessThan, 9, 0, big, allow},
		{"le equal", specs.OpLessEqual, big, 0, big, deny},
		{"le above", specs.OpLessEqual, big, 0, big + 1, allow},
		{"masked eq", specs.OpMaskedEqual, 0xf0_0000_00f0, 0x10_0000_0020, 0x1f_0000_0f2f, deny},
		{"masked ne high", specs.OpMaskedEqual, 0xf0_0000_00f0, 0x10_0000_0020, 0x2f_0000_0f2f, allow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prog, err := Compile(rule(tt.op, tt.v, tt.v2), "amd64")
			if err != nil {
				t.Fatal(err)
			}
			c := call{arch: x8664, nr: nr(t, "write")}
			c.args[2] = tt.arg
			if got := run(t, prog, c); got != tt.want {
				t.Errorf("write(.., .., %#x) -> %#x, want %#x", tt.arg, got, tt.want)
			}
			// Another syscall with the same arguments is not affected.
			c.nr = nr(t, "read")
			if got := run(t, prog, c); got != allow {
				t.Errorf("read -> %#x, want allow", got)
			}
		})
	}
}

func TestCompileAllowlistAndArch(t *testing.T) {
	cfg := &specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno, DefaultErrnoRet: u(uint(unix.ENOSYS)),
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read", "no_such_syscall", "write"}, Action: specs.ActAllow},
			{Names: []string{"kill"}, Action: specs.ActKillProcess},
		},
	}
	prog, err := Compile(cfg, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		c    call
		want uint32
	}{
		{call{arch: x8664, nr: nr(t, "read")}, allow},
		{call{arch: x8664, nr: nr(t, "write")}, allow},
		{call{arch: x8664, nr: nr(t, "kill")}, unix.SECCOMP_RET_KILL_PROCESS},
		{call{arch: x8664, nr: nr(t, "getpid")}, enosy},
		// The x32 ABI's read, and i386's read (int 0x80): never through the x86_64 rules.
		{call{arch: x8664, nr: x32Bit | nr(t, "read")}, badArchRet},
		{call{arch: uint32(unix.AUDIT_ARCH_I386), nr: 3}, badArchRet},
	} {
		if got := run(t, prog, tt.c); got != tt.want {
			t.Errorf("%+v -> %#x, want %#x", tt.c, got, tt.want)
		}
	}
}

func TestCompileRefuses(t *testing.T) {
	for name, cfg := range map[string]*specs.LinuxSeccomp{
		"nil":       nil,
		"notify":    {DefaultAction: specs.ActNotify},
		"flags":     {DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog}},
		"arg index": {DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 6, Op: specs.OpEqualTo}}}}},
		"operator":  {DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 0, Op: "SCMP_CMP_SOMETIMES"}}}}},
	} {
		if _, err := Compile(cfg, "amd64"); err == nil {
			t.Errorf("%s: compiled, want an error", name)
		}
	}
	if _, err := Compile(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow}, "mips"); err == nil {
		t.Errorf("mips: compiled, want an error")
	}
}

// TestDefaultProfile checks the promises of Default, for a container with Docker's default
// capabilities and for one that added CAP_SYS_ADMIN.
func TestDefaultProfile(t *testing.T) {
	docker := []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
		"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
		"CAP_KILL", "CAP_AUDIT_WRITE"}
	withAdmin := append(slices.Clone(docker), "CAP_SYS_ADMIN")
	const threadFlags = unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND | unix.CLONE_THREAD | unix.CLONE_SYSVSEM
	tests := []struct {
		name        string
		syscall     string
		arg0        uint64
		dflt, admin uint32
	}{
		{"keyctl", "keyctl", 0, eperm, eperm},
		{"add_key", "add_key", 0, eperm, eperm},
		{"request_key", "request_key", 0, eperm, eperm},
		{"io_uring_setup", "io_uring_setup", 0, eperm, eperm},
		{"unshare user ns", "unshare", unix.CLONE_NEWUSER, eperm, allow},
		{"mount", "mount", 0, eperm, allow},
		{"umount2", "umount2", 0, eperm, allow},
		{"setns", "setns", 0, eperm, allow},
		{"pivot_root", "pivot_root", 0, eperm, allow},
		{"fsopen", "fsopen", 0, eperm, allow},
		{"bpf", "bpf", 0, eperm, allow},
		{"clone thread", "clone", threadFlags, allow, allow},
		{"clone fork", "clone", uint64(unix.SIGCHLD), allow, allow},
		{"clone new user ns", "clone", unix.CLONE_NEWUSER | uint64(unix.SIGCHLD), eperm, allow},
		{"clone new net ns", "clone", unix.CLONE_NEWNET, eperm, allow},
		{"clone new time ns", "clone", unix.CLONE_NEWTIME, eperm, allow},
		{"clone3", "clone3", 0, enosy, allow},
		{"init_module", "init_module", 0, eperm, eperm},
		{"reboot", "reboot", 0, eperm, eperm},
		{"open_by_handle_at", "open_by_handle_at", 0, eperm, eperm},
		{"perf_event_open", "perf_event_open", 0, eperm, allow},
		{"read", "read", 0, allow, allow},
		{"execve", "execve", 0, allow, allow},
		{"capset", "capset", 0, allow, allow},
		{"setresuid", "setresuid", 0, allow, allow},
		{"chdir", "chdir", 0, allow, allow},
		{"close_range", "close_range", 0, allow, allow},
	}
	dprog, err := Compile(Default(docker), "amd64")
	if err != nil {
		t.Fatal(err)
	}
	aprog, err := Compile(Default(withAdmin), "amd64")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		c := call{arch: x8664, nr: nr(t, tt.syscall)}
		c.args[0] = tt.arg0
		if got := run(t, dprog, c); got != tt.dflt {
			t.Errorf("%s, default caps: %#x, want %#x", tt.name, got, tt.dflt)
		}
		if got := run(t, aprog, c); got != tt.admin {
			t.Errorf("%s, with CAP_SYS_ADMIN: %#x, want %#x", tt.name, got, tt.admin)
		}
	}
	// Every name of the profile exists on some supported architecture: a typo would silently
	// allow the syscall it meant to deny.
	for _, r := range Default(nil).Syscalls {
		for _, n := range r.Names {
			found := false
			for _, a := range []*arch.Info{arch.X86_64, arch.AARCH64, arch.I386, arch.ARM} {
				if _, ok := a.SyscallNames[n]; ok {
					found = true
				}
			}
			if !found {
				t.Errorf("syscall %q of the default profile is known on no architecture", n)
			}
		}
	}
	if _, err := Compile(Default(nil), "arm64"); err != nil {
		t.Errorf("arm64: %v", err)
	}
}

// The generated tables (zsyscalls.go) hold exactly go-seccomp-bpf's syscalls; regenerate them
// with go generate when this fails after an upgrade.
func TestTablesMatchGoSeccompBPF(t *testing.T) {
	for _, tc := range []struct {
		goarch string
		info   *arch.Info
	}{{"amd64", arch.X86_64}, {"arm64", arch.AARCH64}, {"386", arch.I386}, {"arm", arch.ARM}} {
		a, err := archInfo(tc.goarch)
		if err != nil {
			t.Fatal(err)
		}
		if a.id != uint32(tc.info.ID) || len(a.calls) != len(tc.info.SyscallNames) {
			t.Errorf("%s: id %#x, %d syscalls; want %#x, %d", tc.goarch, a.id, len(a.calls), uint32(tc.info.ID), len(tc.info.SyscallNames))
		}
		for name, want := range tc.info.SyscallNames {
			if got, ok := a.number(name); !ok || got != want {
				t.Errorf("%s: %s is %d (%v), want %d", tc.goarch, name, got, ok, want)
			}
		}
		if _, ok := a.number("no_such_syscall"); ok {
			t.Errorf("%s: found no_such_syscall", tc.goarch)
		}
	}
}
