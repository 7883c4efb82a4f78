package runtime

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// TinyInitMain is the tiny init's entry point (argv[1] == TinyInitArg, argv[2] the resolved
// path of the process, argv[3:] its argv). As pid 1 of the container it starts the process,
// forwards every signal it gets to it, reaps every zombie, and exits with the process's
// status (128+signal when it was killed). It never returns.
func TinyInitMain() {
	if len(os.Args) < 4 {
		fmt.Fprintln(os.Stderr, "stack init: usage: init PATH ARGV...")
		os.Exit(127)
	}
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs)
	// Every open fd but ours was meant for the process: pass 0..maxfd through.
	var files []uintptr
	ents, _ := os.ReadDir("/proc/self/fd")
	maxFD := 2
	for _, e := range ents {
		var fd int
		if _, err := fmt.Sscan(e.Name(), &fd); err == nil && fd > maxFD {
			if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil && flags&unix.FD_CLOEXEC == 0 {
				maxFD = fd
			}
		}
	}
	for fd := 0; fd <= maxFD; fd++ {
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err != nil || flags&unix.FD_CLOEXEC != 0 {
			files = append(files, ^uintptr(0)) // closed in the child
			continue
		}
		files = append(files, uintptr(fd))
	}
	pid, err := syscall.ForkExec(os.Args[2], os.Args[3:], &syscall.ProcAttr{
		Env: os.Environ(), Files: files,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "stack init: exec %s: %v\n", os.Args[2], err)
		os.Exit(127)
	}
	for sig := range sigs {
		s := sig.(syscall.Signal)
		switch s {
		case syscall.SIGCHLD:
			for {
				var ws syscall.WaitStatus
				wpid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
				if err != nil || wpid <= 0 {
					break
				}
				if wpid == pid {
					if ws.Signaled() {
						os.Exit(128 + int(ws.Signal()))
					}
					os.Exit(ws.ExitStatus())
				}
			}
		case syscall.SIGURG: // the Go runtime's own preemption signal
		default:
			_ = syscall.Kill(pid, s)
		}
	}
}
