package runtime

// Confinement steps that sit around the init and the exec helper rather than in them: the seccomp
// program, the session keyring, the working-directory check, and the sealed copy of the stack
// binary the children run from.

import (
	"errors"
	"fmt"
	"io"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/stackrun/stack/runtime/seccomp"
)

// compileSeccomp returns the filter of s, or nil when s asks for none.
func compileSeccomp(s *specs.Spec) (seccomp.Program, error) {
	if s.Linux == nil || s.Linux.Seccomp == nil {
		return nil, nil
	}
	prog, err := seccomp.Compile(s.Linux.Seccomp, goruntime.GOARCH)
	if err != nil {
		return nil, fmt.Errorf("%w: linux.seccomp: %w", ErrInvalid, err)
	}
	return prog, nil
}

// installSeccomp is finishProcess's seccomp step. Without no_new_privs the kernel wants
// CAP_SYS_ADMIN to install a filter, so then it runs before capabilities are dropped (early);
// with no_new_privs it runs last, so the filter constrains as little of our own setup as
// possible. Either way the syscalls the init makes after it (credentials, capset, chdir,
// close_range, the exec fifo, execve) are ones every profile must allow anyway.
func installSeccomp(prog seccomp.Program, early, noNewPrivs bool) error {
	if len(prog) == 0 || early == noNewPrivs {
		return nil
	}
	if err := seccomp.Install(prog); err != nil {
		return fail("install seccomp filter", err)
	}
	return nil
}

// joinSessionKeyring gives the container a new, anonymous session keyring, so it can neither
// read nor change the keys of the session that started it (keys are not namespaced).
// Kernels built without keys (ENOSYS) have nothing to protect.
func joinSessionKeyring() error {
	// A NULL name asks for an anonymous keyring; x/sys's wrapper always passes a name.
	_, _, errno := unix.Syscall(unix.SYS_KEYCTL, unix.KEYCTL_JOIN_SESSION_KEYRING, 0, 0)
	if errno != 0 && !errors.Is(errno, unix.ENOSYS) {
		return fail("join a new session keyring", os.NewSyscallError("keyctl", errno))
	}
	return nil
}

// chdirInside changes to the process's working directory and checks that it is inside the
// container's root: a path through /proc/self/fd or /proc/self/cwd could name a directory
// outside it that a leaked fd points to. getcwd fails (or reports "(unreachable)") for a
// directory outside the current root.
func chdirInside(cwd string) error {
	if err := unix.Chdir(cwd); err != nil {
		return fail("change to working directory "+cwd, err)
	}
	wd, err := unix.Getwd()
	if err != nil || !strings.HasPrefix(wd, "/") {
		return fail("change to working directory "+cwd,
			fmt.Errorf("%w: the directory is outside the container", ErrInvalid))
	}
	return nil
}

// sealedExe returns a sealed in-memory copy of helper (the running binary when ""), for the
// init and the exec helper to be started from (CVE-2019-5736): a process in the container that
// opens /proc/PID/exe of one of them gets the copy, which the seals make unwritable, never the
// binary on disk. The fd is at least minFD, above the numbers os/exec shuffles inherited files
// through in the child (see StartProcess), so "/proc/self/fd/N" still names it at execve.
func sealedExe(helper string, minFD int) (f *os.File, path string, err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("copy the stack binary to a sealed memfd: %w", err)
		}
	}()
	if helper == "" {
		helper = "/proc/self/exe"
	}
	src, err := os.Open(helper)
	if err != nil {
		return nil, "", err
	}
	defer src.Close()
	fd, err := unix.MemfdCreate("stack", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, "", os.NewSyscallError("memfd_create", err)
	}
	mem := os.NewFile(uintptr(fd), "memfd:stack")
	defer mem.Close()
	if err := copyFile(mem, src); err != nil {
		return nil, "", err
	}
	const seals = unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(mem.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		return nil, "", os.NewSyscallError("fcntl F_ADD_SEALS", err)
	}
	hi, err := unix.FcntlInt(mem.Fd(), unix.F_DUPFD_CLOEXEC, minFD)
	if err != nil {
		return nil, "", os.NewSyscallError("fcntl F_DUPFD_CLOEXEC", err)
	}
	return os.NewFile(uintptr(hi), "memfd:stack"), "/proc/self/fd/" + strconv.Itoa(hi), nil
}

// copyFile copies src to dst inside the kernel (sendfile), falling back to a copy through
// user space: io.Copy reads and writes in 32 KiB pieces here, since copy_file_range does not
// cross from the binary's file system to the memfd's.
func copyFile(dst, src *os.File) error {
	fi, err := src.Stat()
	if err != nil {
		return err
	}
	left := fi.Size()
	for left > 0 {
		n, err := unix.Sendfile(int(dst.Fd()), int(src.Fd()), nil, int(min(left, 1<<30)))
		if err == unix.EINTR {
			continue
		}
		if err != nil || n == 0 {
			if _, err := io.Copy(dst, src); err != nil {
				return err
			}
			return nil
		}
		left -= int64(n)
	}
	return nil
}

// exeMinFD is the lowest fd sealedExe may use for a child started with nFiles files (stdio
// included): os/exec's child moves files to numbers below 2*nFiles before placing them.
func exeMinFD(nFiles int) int { return 2*nFiles + 3 }
