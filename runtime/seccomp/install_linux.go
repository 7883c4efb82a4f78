package seccomp

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Install loads prog as a seccomp filter of the calling process, synchronised to all its threads
// (SECCOMP_FILTER_FLAG_TSYNC: the Go runtime's other threads get it too, so nothing can run
// unfiltered in this process afterwards). The caller needs no_new_privs set or CAP_SYS_ADMIN.
func Install(prog Program) error {
	if len(prog) == 0 {
		return fmt.Errorf("install seccomp filter: empty program")
	}
	filter := make([]unix.SockFilter, len(prog))
	for i, ri := range prog {
		filter[i] = unix.SockFilter{Code: ri.Op, Jt: ri.Jt, Jf: ri.Jf, K: ri.K}
	}
	fprog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	r, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER,
		unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&fprog)))
	if errno != 0 {
		return fmt.Errorf("install seccomp filter: %w", os.NewSyscallError("seccomp", errno))
	}
	if r != 0 {
		return fmt.Errorf("install seccomp filter: thread %d could not be synchronised", r)
	}
	return nil
}
