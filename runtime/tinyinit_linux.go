package runtime

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// runTinyInit keeps the container init as pid 1 (Compose's init: true) instead of exec'ing
// the process: it starts the process, forwards every signal it gets to it, reaps every
// zombie in the container, and exits with the process's status (128+signal when it was
// killed). It never returns.
//
// It runs in the init itself rather than as a separate binary because stack links C code
// (runtime/nsenter) and is therefore dynamically linked: a copy of it would need the host's
// loader inside the container's rootfs. The init is made non-dumpable first, so no process
// of the container can open /proc/1/exe (the host binary) or its memory.
func runTinyInit(path string, argv, env []string, extraFDs int) {
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "stack init: set non-dumpable:", err)
		os.Exit(127)
	}
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs)
	files := make([]uintptr, 3+extraFDs)
	for i := range files {
		files[i] = uintptr(i)
	}
	// The fork happens on this (locked) thread, so the process gets its credentials,
	// capabilities and no_new_privs.
	pid, err := syscall.ForkExec(path, argv, &syscall.ProcAttr{Env: env, Files: files})
	if err != nil {
		fmt.Fprintf(os.Stderr, "stack init: exec %s: %v\n", argv[0], err)
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
