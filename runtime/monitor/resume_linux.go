package monitor

// Supervising in a fresh process. Setting a container up (the config, the runtime helper's
// process, records, JSON) leaves a Go process with garbage, and collecting it leaves the
// collector's metadata resident for good: together about 350 KiB of each monitor's memory
// for its whole life (bench/monitor.sh). So once the container runs and Launch has its answer,
// the monitor re-executes its own binary, which keeps the pid (and so stays the container's
// parent and subreaper, with the same pid and start time in the record) and the fds it is
// handed, and supervises from a process that has done nothing else:
//
//	monitor, setup (Main)                          the same pid after execve (resumeExit)
//	  container created and started, status.json
//	  written, {"ok":true} reported to Launch
//	  memfd holding the Config JSON
//	  execve /proc/self/exe _monitor  ───────────▶  env _STACK_MONITOR_CONFIG_FD=<memfd>,
//	     kept open: memfd, monitor.lock (its          _STACK_MONITOR_RESUME=<lock>,<socket>,
//	     flock stays held), monitor.sock's              <child>,<stdout FIFO>,<stderr FIFO>
//	     listening socket (requests queue in          decode Config; take the lock, the socket,
//	     its backlog), the FIFOs' read ends,          the FIFOs and the held sockets back; read
//	     the held port sockets                        status.json; open the log; follow the run
//	                                                  (wait4 on our child, or the adopted
//	                                                  container's pidfd); serve; loop
//
// Nothing is read from the FIFOs or waited for before the exec, so nothing is lost across
// it: the container's output waits in the pipes, a request waits in the socket's backlog, an
// exit waits as a zombie. If the exec fails, the monitor supervises in the process it has.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/stackrun/stack/runtime/monitor/logfile"
	"github.com/stackrun/stack/state"
)

// envResume marks the fresh process and names what it takes over: the lock fd, the socket
// fd, 1 when the current run's container is the monitor's child (0: adopted), and the fds of
// the monitor's read ends of the stdout and stderr FIFOs.
const envResume = "_STACK_MONITOR_RESUME"

// handOver re-executes the monitor binary to supervise the current run in a fresh process
// (see the top of this file). It returns only when that failed, with everything as before.
func (m *monitor) handOver(cfgJSON []byte) error {
	if m.cur == nil || m.lock == nil || m.ln == nil {
		return errors.New("hand over: nothing to supervise")
	}
	// Only the main thread may exec: an execve from another thread makes the kernel retire
	// the main thread first, and for that moment /proc/PID/stat shows a zombie, which
	// Inspect takes for a dead monitor. stack-monitor's main package locks its main
	// goroutine to the main thread (init); a binary that does not, supervises where it is.
	if unix.Gettid() != os.Getpid() {
		return errors.New("hand over: not on the main thread")
	}
	mfd, err := unix.MemfdCreate("stack-monitor-config", unix.MFD_CLOEXEC)
	if err != nil {
		return os.NewSyscallError("memfd_create", err)
	}
	defer unix.Close(mfd)
	for b := cfgJSON; len(b) > 0; {
		n, err := unix.Write(mfd, b)
		if err != nil {
			return os.NewSyscallError("write", err)
		}
		b = b[n:]
	}
	lockFD, lnFD := int(m.lock.File().Fd()), m.ln.fd()
	// The FIFOs' read ends are handed over, not opened again: a container that writes and
	// exits before the fresh process opens them would take its output with it.
	outFD, errFD := fileFD(m.cur.fifos[0]), fileFD(m.cur.fifos[1])
	if outFD < 0 || errFD < 0 {
		return errors.New("hand over: no FIFOs")
	}
	keep := []int{mfd, lockFD, lnFD, outFD, errFD}
	keep = append(keep, m.cfg.HoldFDs...)
	for _, fd := range keep {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0); err != nil {
			closeOnExec(keep)
			return os.NewSyscallError("fcntl", err)
		}
	}
	child := "0"
	if m.cur.child {
		child = "1"
	}
	env := append(envWithout(os.Environ(), envConfigFD, envReadyFD, envResume),
		envConfigFD+"="+strconv.Itoa(mfd),
		envResume+"="+strconv.Itoa(lockFD)+","+strconv.Itoa(lnFD)+","+child+","+strconv.Itoa(outFD)+","+strconv.Itoa(errFD))
	err = syscall.Exec("/proc/self/exe", os.Args, env)
	closeOnExec(keep)
	return fmt.Errorf("hand over: exec: %w", err)
}

// fileFD is f's fd number, without os.File.Fd's switch to blocking mode; -1 for none.
func fileFD(f *os.File) int {
	n := -1
	if f == nil {
		return n
	}
	if rc, err := f.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) { n = int(fd) })
	}
	return n
}

func closeOnExec(fds []int) {
	for _, fd := range fds {
		unix.CloseOnExec(fd)
	}
}

// resumeExit is Main in the fresh process: v is envResume's value.
func resumeExit(v string) int {
	// Locked by the main package for handOver only (see there); not needed any more.
	goruntime.UnlockOSThread()
	os.Unsetenv(envResume)
	cfgFD, err := strconv.Atoi(os.Getenv(envConfigFD))
	os.Unsetenv(envConfigFD)
	f := strings.Split(v, ",")
	var fds [4]int // lock, socket, stdout FIFO, stderr FIFO
	for i, j := range []int{0, 1, 3, 4} {
		if len(f) != 5 || err != nil {
			break
		}
		fds[i], err = strconv.Atoi(f[j])
	}
	if err != nil || len(f) != 5 {
		fmt.Fprintln(os.Stderr, "stack: the monitor mode is started by stack itself, not by hand")
		return 2
	}
	// Nothing may leak into the runtime, the probes or the container.
	unix.CloseOnExec(cfgFD)
	for _, fd := range fds {
		unix.CloseOnExec(fd)
	}
	m, err := resume(cfgFD, fds, f[2] == "1")
	if err != nil {
		// Launch has long returned: say it where a user looks (stack ps shows the container
		// unsupervised, the next up adopts it).
		fmt.Fprintln(os.Stderr, "stack monitor:", err)
		if m != nil {
			m.shutdown()
		}
		return 1
	}
	m.supervise()
	m.tuneMemory(false)
	m.loop()
	m.shutdown()
	return 0
}

// resume rebuilds the monitor around what it was handed and the records on disk.
func resume(cfgFD int, fds [4]int, child bool) (*monitor, error) {
	lockFD, lnFD := fds[0], fds[1]
	cfgFile := os.NewFile(uintptr(cfgFD), "config")
	b, err := io.ReadAll(io.NewSectionReader(cfgFile, 0, 1<<30))
	cfgFile.Close()
	if err != nil {
		return nil, fmt.Errorf("resume: read config: %w", err)
	}
	cfg, err := decodeConfig(b)
	if err == nil {
		cfg, err = cfg.withDefaults()
	}
	if err != nil {
		return nil, fmt.Errorf("resume: read config: %w", err)
	}
	m := &monitor{cfg: cfg, ctl: make(chan ctlRequest), healthCh: make(chan healthResult), done: make(chan struct{})}
	// Opened O_NONBLOCK by the monitor before the exec, so they join the poller again.
	mr := [2]*os.File{
		os.NewFile(uintptr(fds[2]), filepath.Join(cfg.RunDir, stdoutFifo)),
		os.NewFile(uintptr(fds[3]), filepath.Join(cfg.RunDir, stderrFifo)),
	}
	m.lock = state.HeldLock(os.NewFile(uintptr(lockFD), filepath.Join(cfg.RunDir, lockFile)))
	if err := unix.SetNonblock(lnFD, true); err != nil {
		return m, fmt.Errorf("resume: %w", os.NewSyscallError("fcntl", err))
	}
	if m.ln, err = listenerFD(lnFD, filepath.Join(cfg.RunDir, sockFile)); err != nil {
		return m, fmt.Errorf("resume: %w", err)
	}
	if m.cfg.Hold, err = inheritHeld(cfg.HoldFDs); err != nil {
		return m, fmt.Errorf("resume: %w", err)
	}
	signal.Ignore(unix.SIGHUP, unix.SIGINT, unix.SIGPIPE)
	// Kept across execve, set again all the same: without it the container's orphans
	// would go to init.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return m, os.NewSyscallError("prctl(PR_SET_CHILD_SUBREAPER)", err)
	}
	if m.rt, err = newRuntime(cfg); err != nil {
		return m, fmt.Errorf("resume: %w", err)
	}
	if m.log, err = logfile.Open(cfg.LogPath, cfg.LogMaxSize, cfg.LogMaxFiles); err != nil {
		return m, fmt.Errorf("resume: %w", err)
	}
	if m.st, err = readStatus(filepath.Join(cfg.StateDir, statusFile)); err != nil {
		return m, fmt.Errorf("resume: %w", err)
	}
	if m.st.ContainerPid <= 0 {
		return m, fmt.Errorf("resume: container %s: no running container in the record", cfg.ID)
	}
	r := m.newRun(m.st.ContainerPid)
	r.started, r.fifos, r.child = m.st.StartedAt, mr, child
	if !child {
		// Adopted: not our child; its exit is seen through a pidfd (none: already gone).
		if fd, err := unix.PidfdOpen(r.pid, 0); err == nil && processAlive(r.pid, m.st.ContainerStartTime) {
			r.pidfd = fd
		} else if err == nil {
			unix.Close(fd)
		}
	}
	m.cur = r
	return m, nil
}
