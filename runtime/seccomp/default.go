package seccomp

import (
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Default returns stack's default profile for a container whose bounding capability set is
// bounding (names with the CAP_ prefix).
//
// It is a denylist (default action ALLOW) that reproduces Docker's default profile for the
// syscalls that matter for confinement, rather than Docker's allowlist of some 350 names:
//   - always denied (EPERM): the keyring (add_key, keyctl, request_key: keys are not
//     namespaced), io_uring (Docker denies it since 25.0), userfaultfd, obsolete and
//     host-wide calls (uselib, ustat, sysfs, _sysctl, nfsservctl, create_module,
//     get_kernel_syms, query_module, vm86, vm86old, lookup_dcookie);
//   - denied unless the capability Docker requires for them is in the bounding set, as Docker
//     does: CAP_SYS_ADMIN for mount, umount2, pivot_root, unshare, setns, clone with any
//     namespace flag, clone3 (ENOSYS, so libc falls back to clone), the new mount API, bpf,
//     fanotify_init, quotactl, swapon/swapoff, perf_event_open (or CAP_PERFMON);
//     CAP_SYS_MODULE, CAP_SYS_BOOT, CAP_SYS_TIME, CAP_SYS_RAWIO, CAP_SYS_PACCT, CAP_SYSLOG,
//     CAP_SYS_NICE (NUMA policy), CAP_DAC_READ_SEARCH (open_by_handle_at) for theirs.
//
// What a denylist does not reproduce: Docker also refuses syscalls it does not know (new ones
// appear with each kernel), and restricts personality() to a few arguments. Other ABIs than the
// native one are refused entirely (ENOSYS), where Docker allows 32-bit x86 binaries.
func Default(bounding []string) *specs.LinuxSeccomp {
	has := func(caps ...string) bool {
		for _, c := range caps {
			if slices.Contains(bounding, c) {
				return true
			}
		}
		return false
	}
	deny := func(names ...string) specs.LinuxSyscall {
		return specs.LinuxSyscall{Names: names, Action: specs.ActErrno, ErrnoRet: errnoRet(unix.EPERM)}
	}
	p := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: nil, // the native one; every other ABI is refused
		Syscalls: []specs.LinuxSyscall{
			deny("add_key", "keyctl", "request_key"),
			deny("io_uring_setup", "io_uring_enter", "io_uring_register", "userfaultfd"),
			deny("uselib", "ustat", "sysfs", "_sysctl", "nfsservctl", "create_module",
				"get_kernel_syms", "query_module", "vm86", "vm86old", "lookup_dcookie"),
		},
	}
	byCap := []struct {
		caps  []string
		names []string
	}{
		{[]string{"CAP_SYS_ADMIN"}, []string{"mount", "umount", "umount2", "pivot_root", "unshare", "setns",
			"open_tree", "open_tree_attr", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick",
			"mount_setattr", "bpf", "fanotify_init", "quotactl", "quotactl_fd", "swapon", "swapoff"}},
		{[]string{"CAP_SYS_ADMIN", "CAP_PERFMON"}, []string{"perf_event_open"}},
		{[]string{"CAP_SYS_MODULE"}, []string{"init_module", "finit_module", "delete_module"}},
		{[]string{"CAP_SYS_BOOT"}, []string{"reboot", "kexec_load", "kexec_file_load"}},
		{[]string{"CAP_SYS_TIME"}, []string{"settimeofday", "stime", "clock_settime", "clock_settime64"}},
		{[]string{"CAP_SYS_RAWIO"}, []string{"iopl", "ioperm"}},
		{[]string{"CAP_SYS_PACCT"}, []string{"acct"}},
		{[]string{"CAP_SYSLOG"}, []string{"syslog"}},
		{[]string{"CAP_SYS_NICE"}, []string{"mbind", "set_mempolicy", "set_mempolicy_home_node", "migrate_pages", "move_pages"}},
		{[]string{"CAP_DAC_READ_SEARCH"}, []string{"open_by_handle_at"}},
	}
	for _, b := range byCap {
		if !has(b.caps...) {
			p.Syscalls = append(p.Syscalls, deny(b.names...))
		}
	}
	if !has("CAP_SYS_ADMIN") {
		// clone's flags are its first argument on amd64 and arm64. One rule per flag: the
		// conditions of one rule are ANDed, the rules of one syscall are ORed.
		for _, f := range []uint64{unix.CLONE_NEWNS, unix.CLONE_NEWUTS, unix.CLONE_NEWIPC, unix.CLONE_NEWUSER,
			unix.CLONE_NEWPID, unix.CLONE_NEWNET, unix.CLONE_NEWCGROUP, unix.CLONE_NEWTIME} {
			r := deny("clone")
			r.Args = []specs.LinuxSeccompArg{{Index: 0, Value: f, ValueTwo: f, Op: specs.OpMaskedEqual}}
			p.Syscalls = append(p.Syscalls, r)
		}
		p.Syscalls = append(p.Syscalls, specs.LinuxSyscall{Names: []string{"clone3"},
			Action: specs.ActErrno, ErrnoRet: errnoRet(unix.ENOSYS)})
	}
	return p
}

func errnoRet(e unix.Errno) *uint {
	u := uint(e)
	return &u
}
