package monitor

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	goruntime "runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stackrun/stack/runtime/monitor/logfile"
	"github.com/stackrun/stack/state"
)

// Main is the monitor process: it reads its Config from the inherited pipe, brings the
// container up, reports ready, supervises until the container is finally down, and exits.
// It never returns.
func Main() {
	os.Exit(mainExit())
}

func mainExit() int {
	if v, ok := os.LookupEnv(envResume); ok {
		return resumeExit(v)
	}
	cfgFD, err1 := strconv.Atoi(os.Getenv(envConfigFD))
	readyFD, err2 := strconv.Atoi(os.Getenv(envReadyFD))
	os.Unsetenv(envConfigFD)
	os.Unsetenv(envReadyFD)
	if err1 != nil || err2 != nil {
		fmt.Fprintln(os.Stderr, "stack: the monitor mode is started by stack itself, not by hand")
		return 2
	}
	// Neither pipe may leak into runc or the container.
	unix.CloseOnExec(cfgFD)
	unix.CloseOnExec(readyFD)
	ready := os.NewFile(uintptr(readyFD), "ready")
	report := func(msg readyMsg) {
		ready.Write(append(msg.appendJSON(nil), '\n'))
		ready.Close()
	}
	cfgFile := os.NewFile(uintptr(cfgFD), "config")
	var cfg Config
	b, err := io.ReadAll(cfgFile)
	cfgFile.Close()
	if err == nil {
		cfg, err = decodeConfig(b)
	}
	if err == nil {
		cfg, err = cfg.withDefaults()
	}
	if err != nil {
		report(readyMsg{Step: "read config", Error: err.Error()})
		return 1
	}
	if cfg.Hold, err = inheritHeld(cfg.HoldFDs); err != nil {
		report(readyMsg{Step: "hold", Error: err.Error()})
		return 1
	}
	// A terminal hang-up or ^C in the launching shell is not the monitor's business; SIGTERM
	// (e.g. at shutdown) ends the monitor and leaves the container running, unsupervised.
	signal.Ignore(unix.SIGHUP, unix.SIGINT, unix.SIGPIPE)
	m, step, err := start(cfg)
	if err != nil {
		report(readyMsg{Step: step, Error: err.Error()})
		return 1
	}
	report(readyMsg{OK: true})
	// Supervise in a fresh process (resume_linux.go). Only if that fails, here: it costs
	// memory, nothing else, so the failure is not worth a word.
	_ = m.handOver(b)
	goruntime.UnlockOSThread() // see handOver
	m.supervise()
	m.tuneMemory(true)
	m.loop()
	m.shutdown()
	return 0
}

// inheritHeld takes over the inherited fds the monitor holds for its lifetime (Config.Hold):
// each is marked close-on-exec at once, so neither the runtime nor the container nor a
// health probe inherits it.
func inheritHeld(fds []int) ([]*os.File, error) {
	var out []*os.File
	for _, fd := range fds {
		if fd < 3 {
			closeAll(out)
			return nil, fmt.Errorf("held fd %d: not an inherited fd", fd)
		}
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil {
			closeAll(out)
			return nil, fmt.Errorf("held fd %d: %w", fd, os.NewSyscallError("fcntl", err))
		}
		out = append(out, os.NewFile(uintptr(fd), "held-"+strconv.Itoa(fd)))
	}
	return out, nil
}

// releaseHeld closes the held files. It runs before the final record and the reply to the
// stop that ends the monitor, so whoever reads either finds the ports free.
func (m *monitor) releaseHeld() {
	closeAll(m.cfg.Hold)
	m.cfg.Hold = nil
}

// exitInfo is how one run of the container ended.
type exitInfo struct {
	code   int // -1: unknown
	signal unix.Signal
}

// run is one run of the container (a create+start, or an adoption).
type run struct {
	gen        int
	pid        int
	started    time.Time
	exited     chan exitInfo
	logsDone   chan struct{}
	stopHealth context.CancelFunc
	memCgroup  string // for OOM: the memory cgroup directory, "" when unknown
	// Until watch starts following the run: the monitor's read ends of the FIFOs, and how
	// its exit is seen (our child: waitChild; adopted: the pidfd, -1 when already gone).
	fifos [2]*os.File
	child bool
	pidfd int
}

type pendingReply struct {
	op string
	ch chan reply
}

type monitor struct {
	cfg      Config
	rt       OCIRuntime
	st       Status
	log      *logfile.Writer
	lock     *state.Lock
	ln       *unixListener
	ctl      chan ctlRequest
	healthCh chan healthResult

	cur *run
	gen int
	// removing: the user's stop came from a caller that deletes the container from the
	// runtime next (StopToRemove), so the exit does not delete it here.
	removing  bool
	lastDelay time.Duration
	// stopping: a stop or restart is in progress; restartNow: start again right after exit.
	stopping   bool
	restartNow bool
	grace      *time.Timer
	backoff    *time.Timer
	reap       *time.Ticker // nil while no orphan zombies can appear (see setReapPeriod)
	waiting    []pendingReply
	done       chan struct{} // closed when the loop has ended
	conns      sync.WaitGroup
	// watching: runs are followed (output, exit, probes) as they begin; before supervise,
	// they are only recorded, so that a fresh process can follow them (handOver).
	watching bool
	// code: the mappings of the monitor's binary, dropped once the loop is idle (unmapCode).
	code        [][2]uintptr
	codeDropped bool
	idle        *time.Timer
}

type ctlRequest struct {
	req   request
	reply chan reply
}

func newRuntime(cfg Config) (OCIRuntime, error) {
	if cfg.Runtime == "builtin" {
		if err := os.MkdirAll(cfg.RuntimeRoot, 0o700); err != nil {
			return nil, err
		}
		return &Helper{Exe: cfg.RuntimeHelper, Root: cfg.RuntimeRoot}, nil
	}
	return NewRunc(cfg.Runtime, cfg.RuntimeRoot)
}

// start performs the setup steps in order; on error it undoes what it did and names the step.
func start(cfg Config) (m *monitor, step string, err error) {
	m = &monitor{cfg: cfg, ctl: make(chan ctlRequest), healthCh: make(chan healthResult), done: make(chan struct{})}
	defer func() {
		if err != nil {
			m.shutdown()
		}
	}()
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return m, "subreaper", os.NewSyscallError("prctl(PR_SET_CHILD_SUBREAPER)", err)
	}
	for _, d := range []string{cfg.StateDir, cfg.RunDir} {
		if err := os.MkdirAll(d, state.DirMode); err != nil {
			return m, "prepare", err
		}
	}
	lock, ok, err := state.TryLock(filepath.Join(cfg.RunDir, lockFile))
	if err != nil {
		return m, "lock", err
	}
	if !ok {
		return m, "lock", fmt.Errorf("another monitor supervises %s", cfg.ID)
	}
	m.lock = lock
	if m.rt, err = newRuntime(cfg); err != nil {
		return m, "runtime", err
	}
	for _, name := range []string{stdoutFifo, stderrFifo} {
		p := filepath.Join(cfg.RunDir, name)
		if err := unix.Mkfifo(p, 0o600); err != nil && !errors.Is(err, unix.EEXIST) {
			return m, "prepare", &os.PathError{Op: "mkfifo", Path: p, Err: err}
		}
	}
	if m.log, err = logfile.Open(cfg.LogPath, cfg.LogMaxSize, cfg.LogMaxFiles); err != nil {
		return m, "prepare", err
	}
	sock := filepath.Join(cfg.RunDir, sockFile)
	os.Remove(sock) // stale: we hold the lock, so no monitor listens there
	if m.ln, err = listenUnix(sock); err != nil {
		return m, "listen", err
	}
	_, selfStart, err := procStat(os.Getpid())
	if err != nil {
		return m, "prepare", err
	}
	m.st = Status{ID: cfg.ID, BootID: bootID(), MonitorPid: os.Getpid(), MonitorStartTime: selfStart}
	if cfg.Adopt {
		if err := m.adopt(); err != nil {
			return m, "adopt", err
		}
	} else {
		if err := os.Remove(filepath.Join(cfg.StateDir, intentFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return m, "prepare", err
		}
		if err := m.clearStale(); err != nil {
			return m, "create", err
		}
		if step, err := m.startRun(); err != nil {
			return m, step, err
		}
	}
	// The pid file first: a reader that sees the new record must find the monitor alive.
	if err := state.WriteFile(filepath.Join(cfg.RunDir, pidFile), []byte(strconv.Itoa(os.Getpid())+"\n"), state.FileMode); err != nil {
		return m, "record", err
	}
	if err := m.write(); err != nil {
		return m, "record", err
	}
	return m, "", nil
}

// supervise starts following the current run and answering control requests.
func (m *monitor) supervise() {
	m.watching = true
	if m.cur != nil {
		m.watch(m.cur)
	}
	go m.serve()
}

// clearStale removes a leftover runtime container of the same id that is no longer running
// (its monitor died after it exited); a running one must be adopted instead.
func (m *monitor) clearStale() error {
	ctx := context.Background()
	s, err := m.rt.State(ctx, m.cfg.ID)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if s.Status == "running" || s.Status == "paused" {
		return fmt.Errorf("container %s is already running: adopt it or remove it", m.cfg.ID)
	}
	return m.rt.Delete(ctx, m.cfg.ID, true)
}

// openFifos opens the container's stdio FIFOs: for the container a blocking read-write fd
// each (holding a read side too, so its writes never hit EPIPE while no monitor reads: they
// block once the pipe is full, until a monitor adopts the container), and for the monitor a
// non-blocking read-only fd each, which reads EOF once every container process is gone.
func (m *monitor) openFifos(forContainer bool) (cw [2]*os.File, mr [2]*os.File, err error) {
	for i, name := range []string{stdoutFifo, stderrFifo} {
		p := filepath.Join(m.cfg.RunDir, name)
		if forContainer {
			fd, err := unix.Open(p, unix.O_RDWR|unix.O_CLOEXEC, 0)
			if err != nil {
				closeAll(cw[:], mr[:])
				return cw, mr, &os.PathError{Op: "open", Path: p, Err: err}
			}
			cw[i] = os.NewFile(uintptr(fd), p)
		}
		f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NONBLOCK, 0)
		if err != nil {
			closeAll(cw[:], mr[:])
			return cw, mr, err
		}
		mr[i] = f
	}
	return cw, mr, nil
}

func closeAll(groups ...[]*os.File) {
	for _, g := range groups {
		for _, f := range g {
			if f != nil {
				f.Close()
			}
		}
	}
}

// copyLogs copies both streams into the log until both reach EOF. The last copier to finish
// closes the returned channel (no goroutine waits for them: each costs a stack).
func (m *monitor) copyLogs(mr [2]*os.File) chan struct{} {
	done := make(chan struct{})
	left := new(atomic.Int32)
	left.Store(2)
	for i, stream := range [2]string{"stdout", "stderr"} {
		go func(f *os.File, stream string) {
			_ = logfile.Copy(m.log, stream, f, time.Now)
			f.Close()
			if left.Add(-1) == 0 {
				close(done)
			}
		}(mr[i], stream)
	}
	return done
}

// startRun creates and starts the container; it returns the failed step on error.
func (m *monitor) startRun() (string, error) {
	ctx := context.Background()
	cw, mr, err := m.openFifos(true)
	if err != nil {
		return "prepare", err
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		closeAll(cw[:], mr[:])
		return "prepare", err
	}
	cs, ok := m.rt.(createStarter)
	if !ok {
		cs = twoSteps{m.rt}
	}
	return m.createStart(ctx, cs, ProcessIO{Stdin: devnull, Stdout: cw[0], Stderr: cw[1]}, cw, mr, devnull)
}

// createStarter is a runtime that creates and starts a container in one operation (Helper:
// one helper process instead of two).
type createStarter interface {
	CreateStart(ctx context.Context, id, bundle string, stdio ProcessIO) (pid int, step string, err error)
}

// twoSteps is a createStarter made of a runtime's Create and Start.
type twoSteps struct{ rt OCIRuntime }

func (t twoSteps) CreateStart(ctx context.Context, id, bundle string, stdio ProcessIO) (int, string, error) {
	pid, err := t.rt.Create(ctx, id, bundle, stdio)
	if err != nil {
		return 0, "create", err
	}
	if err := t.rt.Start(ctx, id); err != nil {
		return pid, "start", err
	}
	return pid, "", nil
}

// createStart is startRun's second half through a createStarter. The container may exit before
// its exit is awaited: it is the monitor's child (subreaper) and stays a zombie until then.
func (m *monitor) createStart(ctx context.Context, cs createStarter, stdio ProcessIO, cw, mr [2]*os.File, devnull *os.File) (string, error) {
	pid, step, err := cs.CreateStart(ctx, m.cfg.ID, m.cfg.Bundle, stdio)
	devnull.Close()
	closeAll(cw[:]) // the container holds its own copies now
	if err != nil && pid == 0 {
		closeAll(mr[:])
		_ = m.rt.Delete(ctx, m.cfg.ID, true)
		return step, err
	}
	r := m.newRun(pid)
	r.fifos, r.child = mr, true
	if err != nil {
		m.watch(r)
		_ = m.rt.Delete(ctx, m.cfg.ID, true)
		<-r.exited
		return step, err
	}
	m.beginRun(r)
	return "", nil
}

func (m *monitor) newRun(pid int) *run {
	m.gen++
	r := &run{gen: m.gen, pid: pid, started: time.Now().UTC(), exited: make(chan exitInfo, 1), pidfd: -1}
	r.memCgroup = memoryCgroup(pid)
	return r
}

// beginRun records r as running, and follows it once the monitor supervises.
func (m *monitor) beginRun(r *run) {
	m.cur = r
	_, start, _ := procStat(r.pid)
	m.st.State = StateRunning
	m.st.ContainerPid, m.st.ContainerStartTime = r.pid, start
	m.st.StartedAt = r.started
	m.st.FinishedAt = time.Time{}
	m.st.ExitCode, m.st.Signal, m.st.OOMKilled = 0, 0, false
	m.st.Health = nil
	if argv, _ := m.cfg.Healthcheck.argv(); argv != nil {
		m.st.Health = &HealthState{Status: HealthStarting}
	}
	if m.watching {
		m.watch(r)
	}
}

// watch follows run r: copies its output into the log, waits for its exit and, for the
// current run, starts its health probes.
func (m *monitor) watch(r *run) {
	r.logsDone = m.copyLogs(r.fifos)
	r.fifos = [2]*os.File{}
	switch {
	case r.child:
		go waitChild(r.pid, r.exited)
	case r.pidfd >= 0:
		go waitPidfdExit(r.pidfd, r.exited)
		r.pidfd = -1
	default:
		r.exited <- exitInfo{code: -1}
	}
	if argv, _ := m.cfg.Healthcheck.argv(); argv != nil && r == m.cur && m.st.Health != nil {
		ctx, cancel := context.WithCancel(context.Background())
		r.stopHealth = cancel
		go probeLoop(ctx, m.rt, m.cfg.ID, m.cfg.Healthcheck.withDefaults(), argv, r.gen, r.started, m.healthCh)
		m.setReapPeriod(reapProbing)
	}
}

// How often the loop reaps orphan zombies (reap_linux.go): they come only from probes, so
// only while probes run; often while a stop waits for the container's init, which cannot
// finish exiting before they are gone.
const (
	reapProbing  = time.Second
	reapStopping = 100 * time.Millisecond
)

// setReapPeriod starts, changes (d > 0) or stops (d == 0) the reaping ticker.
func (m *monitor) setReapPeriod(d time.Duration) {
	switch {
	case d == 0 && m.reap != nil:
		m.reap.Stop()
		m.reap = nil
	case d > 0 && m.reap == nil:
		m.reap = time.NewTicker(d)
	case d > 0:
		m.reap.Reset(d)
	}
}

// adopt takes over the container recorded in StateDir, whose monitor died. The container is
// not our child (a subreaper only inherits orphans made after it), so its exit is seen through
// a pidfd and its exit status is lost; its output is read again from the FIFOs it still holds.
func (m *monitor) adopt() error {
	old, err := Inspect(m.cfg.StateDir, m.cfg.RunDir)
	if err != nil {
		return err
	}
	if !old.Unsupervised {
		return fmt.Errorf("container %s is %s and not running unsupervised: nothing to adopt", m.cfg.ID, old.State)
	}
	pidfd, err := unix.PidfdOpen(old.ContainerPid, 0)
	if err != nil {
		return os.NewSyscallError("pidfd_open", err)
	}
	if !processAlive(old.ContainerPid, old.ContainerStartTime) {
		unix.Close(pidfd)
		return fmt.Errorf("container %s exited during adoption", m.cfg.ID)
	}
	_, mr, err := m.openFifos(false)
	if err != nil {
		unix.Close(pidfd)
		return err
	}
	m.st.RestartCount, m.st.Restarts, m.st.StopRequested = old.RestartCount, old.Restarts, old.StopRequested
	m.st.Adopted = true
	r := m.newRun(old.ContainerPid)
	r.fifos, r.pidfd = mr, pidfd
	m.beginRun(r)
	m.st.StartedAt = old.StartedAt
	return nil
}

// waitChild waits for our child pid. If it is not our child (the runtime did not leave it to
// us), the exit status is unknown (-1). Waiting happens on a pidfd in Go's poller, not in a
// blocking wait4: a goroutine blocked in a system call holds an OS thread for the monitor's
// whole life, and threads are most of what an idle Go process costs beyond its heap.
func waitChild(pid int, out chan<- exitInfo) {
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		out <- exitInfo{code: -1}
		return
	}
	waitExited(pidfd)
	for {
		var ws unix.WaitStatus
		wpid, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			out <- exitInfo{code: -1}
		case wpid == 0 || (!ws.Exited() && !ws.Signaled()):
			// Readable pidfd, not yet waitable (or a stop/continue report): rare and brief.
			time.Sleep(10 * time.Millisecond)
			continue
		case ws.Exited():
			out <- exitInfo{code: ws.ExitStatus()}
		default:
			out <- exitInfo{code: 128 + int(ws.Signal()), signal: ws.Signal()}
		}
		return
	}
}

// waitPidfdExit reports the exit of a process that is not our child: its status is lost.
func waitPidfdExit(pidfd int, out chan<- exitInfo) {
	waitExited(pidfd)
	out <- exitInfo{code: -1}
}

// waitExited blocks until the process of pidfd has exited, then closes pidfd. A pidfd polls
// readable once its process has exited, so the wait parks in Go's poller without a thread; when
// the fd cannot join the poller, it falls back to a blocking poll(2).
func waitExited(pidfd int) {
	exited := func(fd uintptr) bool {
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 0)
		return err == nil && n > 0
	}
	if err := unix.SetNonblock(pidfd, true); err == nil {
		f := os.NewFile(uintptr(pidfd), "pidfd")
		defer f.Close()
		if rc, err := f.SyscallConn(); err == nil && rc.Read(exited) == nil {
			return
		}
		pidfd = int(f.Fd()) // blocking again, still ours until f is closed
	} else {
		defer unix.Close(pidfd)
	}
	for {
		_, err := unix.Poll([]unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}, -1)
		if !errors.Is(err, unix.EINTR) {
			return
		}
	}
}

// memoryCgroup finds pid's memory cgroup directory (v1 memory controller, else v2).
func memoryCgroup(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return ""
	}
	v2 := ""
	for _, line := range strings.Split(string(b), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == "memory" {
				return filepath.Join("/sys/fs/cgroup/memory", parts[2])
			}
		}
		if parts[0] == "0" {
			v2 = filepath.Join("/sys/fs/cgroup", parts[2])
		}
	}
	return v2
}

// oomKilled reads the OOM kill counter of a memory cgroup (v1 memory.oom_control, v2
// memory.events).
func oomKilled(dir string) bool {
	if dir == "" {
		return false
	}
	for _, name := range []string{"memory.oom_control", "memory.events"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(strings.NewReader(string(b)))
		for sc.Scan() {
			k, v, _ := strings.Cut(sc.Text(), " ")
			if k == "oom_kill" && v != "0" {
				return true
			}
		}
	}
	return false
}

func (m *monitor) write() error {
	m.journal()
	return writeStatus(filepath.Join(m.cfg.StateDir, statusFile), &m.st)
}

func (m *monitor) note(err error) {
	if err != nil {
		m.st.Error = err.Error()
	}
}

func (m *monitor) userStopped() bool {
	return m.st.StopRequested || state.Exists(filepath.Join(m.cfg.StateDir, intentFile))
}

// loop supervises until the container is finally down.
func (m *monitor) loop() {
	for {
		var exited chan exitInfo
		if m.cur != nil {
			exited = m.cur.exited
		}
		var graceC, backoffC, reapC <-chan time.Time
		if m.grace != nil {
			graceC = m.grace.C
		}
		if m.reap != nil {
			reapC = m.reap.C
		}
		if m.backoff != nil {
			backoffC = m.backoff.C
		}
		var idleC <-chan time.Time
		if !m.codeDropped && len(m.code) > 0 {
			if m.idle == nil {
				m.idle = time.NewTimer(idleUnmap)
			} else {
				m.idle.Reset(idleUnmap)
			}
			idleC = m.idle.C
		}
		select {
		case <-idleC:
			unmapCode(m.code)
			m.codeDropped = true
			continue
		case ex := <-exited:
			if m.handleExit(ex) {
				return
			}
		case <-reapC:
			reapOrphans()
		case <-graceC:
			m.grace = nil
			m.note(m.rt.Kill(context.Background(), m.cfg.ID, unix.SIGKILL))
		case <-backoffC:
			m.backoff = nil
			if m.restart(true) {
				return
			}
		case hr := <-m.healthCh:
			if m.cur != nil && hr.gen == m.cur.gen && m.st.Health != nil {
				hc := m.cfg.Healthcheck.withDefaults()
				h := nextHealth(*m.st.Health, hr.probe, hr.inStartPeriod, hc.Retries)
				m.st.Health = &h
				m.note(m.write())
			}
			// A probe is a helper process, pipes, output and a record write: garbage that
			// would otherwise pile up to the memory limit's headroom (1 MiB) between
			// collections. Collected at once, the monitor keeps its idle size.
			debug.FreeOSMemory()
		case c := <-m.ctl:
			if m.handleControl(c) {
				return
			}
		}
		m.codeDropped = false // the event ran code: drop it again once idle
	}
}

// idleUnmap is how long the loop waits without an event before it drops the mappings of the
// monitor's code again (unmapCode): an idle monitor runs no code at all, and one whose loop
// wakes at least this often (probes) keeps what it uses mapped instead of faulting it back.
const idleUnmap = 2 * time.Second

// handleExit finishes a run and applies the policy; it reports whether the monitor is done.
func (m *monitor) handleExit(ex exitInfo) bool {
	r := m.cur
	m.cur = nil
	if r.stopHealth != nil {
		r.stopHealth()
	}
	reapOrphans()
	m.setReapPeriod(0)
	if m.grace != nil {
		m.grace.Stop()
		m.grace = nil
	}
	// Every process of the container is gone, so the FIFOs reach EOF; wait for the copiers
	// so that the log holds all output before the record says the container ended.
	select {
	case <-r.logsDone:
	case <-time.After(5 * time.Second):
	}
	now := time.Now().UTC()
	m.st.ExitCode, m.st.Signal, m.st.FinishedAt = ex.code, int(ex.signal), now
	m.st.OOMKilled = oomKilled(r.memCgroup)
	m.st.ContainerPid, m.st.ContainerStartTime = 0, 0
	// After a StopToRemove the caller deletes a container of the builtin runtime in its own
	// process (engine/local Remove); another runtime's (runc) record is deleted here as always.
	if _, builtin := m.rt.(*Helper); !(m.removing && builtin) {
		m.note(m.rt.Delete(context.Background(), m.cfg.ID, true))
	}
	wasStopping := m.stopping
	m.stopping = false
	if m.restartNow {
		m.restartNow = false
		return m.restart(false)
	}
	stopped := m.userStopped() || wasStopping
	d := decideRestart(m.cfg.Restart, ex.code, m.st.RestartCount, m.lastDelay, now.Sub(r.started), stopped)
	if !d.restart {
		return m.finish(stopped)
	}
	m.lastDelay = d.delay
	m.st.State = StateRestarting
	m.backoff = time.NewTimer(d.delay)
	m.st.Restarts = append(m.st.Restarts, RestartEvent{At: now.Add(d.delay), Delay: d.delay, ExitCode: ex.code})
	if len(m.st.Restarts) > 10 {
		m.st.Restarts = m.st.Restarts[len(m.st.Restarts)-10:]
	}
	m.note(m.write())
	return false
}

// restart starts a new run; byPolicy counts it as a policy restart. A failed start is handled
// like an exit with an unknown code. It reports whether the monitor is done.
func (m *monitor) restart(byPolicy bool) bool {
	if byPolicy && m.userStopped() {
		return m.finish(true)
	}
	if byPolicy {
		m.st.RestartCount++
	}
	if step, err := m.startRun(); err != nil {
		m.note(fmt.Errorf("%s: %w", step, err))
		stopped := m.userStopped()
		d := decideRestart(m.cfg.Restart, -1, m.st.RestartCount, m.lastDelay, 0, stopped)
		if !d.restart {
			m.st.ExitCode = -1
			return m.finish(stopped)
		}
		m.lastDelay = d.delay
		m.st.State = StateRestarting
		m.backoff = time.NewTimer(d.delay)
		m.note(m.write())
		return false
	}
	m.note(m.write())
	m.answer("restart", nil)
	return false
}

// finish records the final state; the monitor then exits.
func (m *monitor) finish(stopped bool) bool {
	if stopped {
		m.st.State = StateStopped
		m.st.StopRequested = true
	} else {
		m.st.State = StateExited
	}
	if m.st.FinishedAt.IsZero() {
		m.st.FinishedAt = time.Now().UTC()
	}
	// Released before the record says the container is down: whoever reads that and starts
	// it again must find its ports free.
	m.releaseHeld()
	m.note(m.write())
	m.answer("", nil)
	return true
}

// answer replies to the waiting requests of op ("" for all).
func (m *monitor) answer(op string, err error) {
	rep := reply{}
	if err != nil {
		rep.Error = err.Error()
	}
	kept := m.waiting[:0]
	for _, w := range m.waiting {
		if op == "" || w.op == op {
			w.ch <- rep
		} else {
			kept = append(kept, w)
		}
	}
	m.waiting = kept
}

// beginStop signals the running container and arms the grace timer, once.
func (m *monitor) beginStop(sig unix.Signal, timeout time.Duration) {
	if m.stopping || m.cur == nil {
		return
	}
	m.stopping = true
	if sig == 0 {
		sig = m.cfg.StopSignal
	}
	if timeout <= 0 {
		timeout = m.cfg.StopTimeout
	}
	if err := m.rt.Kill(context.Background(), m.cfg.ID, sig); err != nil {
		m.note(err)
		timeout = 0
	}
	m.grace = time.NewTimer(timeout)
	if m.reap != nil {
		m.setReapPeriod(reapStopping)
	}
}

func (m *monitor) handleControl(c ctlRequest) bool {
	switch c.req.Op {
	case "stop":
		m.removing = m.removing || c.req.Removing
		m.st.StopRequested = true
		m.note(state.WriteFile(filepath.Join(m.cfg.StateDir, intentFile), nil, state.FileMode))
		m.restartNow = false
		if m.cur == nil { // waiting to restart
			if m.backoff != nil {
				m.backoff.Stop()
				m.backoff = nil
			}
			m.waiting = append(m.waiting, pendingReply{"stop", c.reply})
			return m.finish(true)
		}
		m.waiting = append(m.waiting, pendingReply{"stop", c.reply})
		m.beginStop(c.req.Signal, c.req.Timeout)
		m.note(m.write())
	case "kill":
		m.st.StopRequested = true
		m.note(state.WriteFile(filepath.Join(m.cfg.StateDir, intentFile), nil, state.FileMode))
		var err error
		if m.cur != nil {
			err = m.rt.Kill(context.Background(), m.cfg.ID, c.req.Signal)
		}
		m.note(m.write())
		c.reply <- errReply(err)
	case "restart":
		m.removing = false
		m.st.StopRequested = false
		m.waiting = append(m.waiting, pendingReply{"restart", c.reply})
		if m.cur == nil {
			if m.backoff != nil {
				m.backoff.Stop()
				m.backoff = nil
			}
			return m.restart(false)
		}
		m.restartNow = true
		m.beginStop(0, c.req.Timeout)
	default:
		c.reply <- reply{Error: "unknown request " + strconv.Quote(c.req.Op)}
	}
	return false
}

func errReply(err error) reply {
	if err != nil {
		return reply{Error: err.Error()}
	}
	return reply{}
}

// serve accepts control connections until the listener is closed.
func (m *monitor) serve() {
	for {
		conn, err := m.ln.Accept()
		if err != nil {
			return
		}
		m.conns.Add(1)
		go func() {
			defer m.conns.Done()
			defer conn.Close()
			req, err := readRequest(conn)
			if err != nil {
				return
			}
			ch := make(chan reply, 1)
			select {
			case m.ctl <- ctlRequest{req: req, reply: ch}:
			case <-m.done:
				ch <- reply{} // the container is down for good: a stop or kill has nothing left to do
			}
			rep := <-ch
			conn.Write(append(rep.appendJSON(nil), '\n'))
		}()
	}
}

// readRequest reads one control request: a JSON line (the client keeps the connection open
// for the reply).
func readRequest(conn *os.File) (request, error) {
	var buf [512]byte
	var b []byte
	for {
		n, err := conn.Read(buf[:])
		b = append(b, buf[:n]...)
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			return decodeRequest(b[:i])
		}
		if err != nil {
			if errors.Is(err, io.EOF) && len(b) > 0 {
				return decodeRequest(b)
			}
			return request{}, err
		}
		if len(b) > 64<<10 {
			return request{}, errors.New("control request too long")
		}
	}
}

// shutdown releases what the monitor holds. Requests that arrive now find no listener and
// act on the container directly (see Stop).
func (m *monitor) shutdown() {
	if m.ln != nil {
		m.ln.Close()
		os.Remove(filepath.Join(m.cfg.RunDir, sockFile))
	}
	m.releaseHeld()
	close(m.done)
	// Let the replies in flight (a stop is answered just before the monitor exits) reach
	// their clients.
	replied := make(chan struct{})
	go func() { m.conns.Wait(); close(replied) }()
	select {
	case <-replied:
	case <-time.After(2 * time.Second):
	}
	if m.log != nil {
		m.log.Close()
	}
	// Only the lock holder may remove the pid file: a monitor that failed to take the lock
	// must not make the live one look dead.
	if m.lock != nil {
		os.Remove(filepath.Join(m.cfg.RunDir, pidFile))
		m.lock.Unlock()
	}
}

// tuneMemory trims the monitor's footprint once setup is done: there are as many monitors as
// containers, each mostly idle, so memory matters more than the CPU the GC spends. GOMAXPROCS
// is set by Launch in the monitor's environment instead: changing it at run time costs more
// memory than it saves. GOGC or GOMEMLIMIT set in the environment win (bench/monitor.sh
// compares).
//
// The collector runs on a memory limit instead of on heap growth: GOGC=off and a limit
// gcHeadroom above what the monitor holds once set up. An idle Go process is otherwise
// collected every 2 minutes (the runtime's forced GC), and the first collections leave GC
// metadata resident for good: about 250 KiB of PSS per idle monitor (bench/monitor.sh). A
// monitor whose container only writes output allocates nothing for it (logfile.Copy) and never
// collects; one that probes or restarts collects each time its garbage reaches the headroom,
// which costs little CPU since its live heap is small. The headroom also covers what the
// monitor legitimately grows by (a few more threads after bursts of probes, health outputs),
// far from the point where collecting would no longer bring it under the limit.
//
// collect: setup ran in this process (handOver failed), so its garbage is collected first.
func (m *monitor) tuneMemory(collect bool) {
	// Return what setup (helpers' output, JSON, package init garbage) left behind, when
	// it was done in this process. The code's mappings are found before the collection
	// (which frees what finding them allocated) and dropped after it (which ran much of
	// the runtime's code).
	m.code = codeMappings()
	if collect {
		debug.FreeOSMemory()
	}
	unmapCode(m.code)
	_, gogc := os.LookupEnv("GOGC")
	_, limit := os.LookupEnv("GOMEMLIMIT")
	if gogc || limit {
		if !gogc {
			debug.SetGCPercent(20)
		}
		return
	}
	debug.SetMemoryLimit(int64(heldMemory()) + gcHeadroom)
	debug.SetGCPercent(-1)
}

// heldMemory is the memory the Go runtime holds (what its memory limit counts): mapped and not
// released. It is read from runtime/metrics, not runtime.ReadMemStats, which stops the world
// and flushes the allocation caches: each size class's cached span then goes to a span set
// whose first block (about 8 KiB, never freed) stays resident, some 250 KiB in all.
func heldMemory() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 || s[1].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64() - s[1].Value.Uint64()
}

// gcHeadroom is how much the monitor may grow (mostly garbage) before it collects.
const gcHeadroom = 1 << 20

// unmapCode drops the monitor's page mappings of its own binary's code and read-only data
// (madvise MADV_DONTNEED on those read-only, file-backed segments, found by codeMappings).
// Setup ran much of that code once; the idle monitor runs little of it. Without this each
// monitor keeps nearly the whole binary mapped (2.3 MB, shared by all monitors: about 230 KiB
// of PSS each at 10 containers). The pages stay in the page cache, shared and clean: the ones
// the monitor uses again are mapped back on first use (a minor fault; the kernel maps the
// whole page-cache folio around it), the others become reclaimable cache that no process
// holds. Read-only private file mappings have no private copies to lose; the writable data
// segment is left alone. It allocates nothing, so it leaves no garbage behind the collection.
func unmapCode(ranges [][2]uintptr) {
	for _, r := range ranges {
		unix.Syscall(unix.SYS_MADVISE, r[0], r[1]-r[0], unix.MADV_DONTNEED)
	}
}

// codeMappings lists the read-only mappings of the monitor's binary (start, end).
func codeMappings() [][2]uintptr {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return nil
	}
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return nil
	}
	var out [][2]uintptr
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		// address perms offset dev inode path
		f := bytes.Fields(line)
		if len(f) < 6 || string(bytes.Join(f[5:], []byte(" "))) != exe {
			continue
		}
		if perms := string(f[1]); perms != "r-xp" && perms != "r--p" {
			continue
		}
		lo, hi, ok := bytes.Cut(f[0], []byte("-"))
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(string(lo), 16, 64)
		end, err2 := strconv.ParseUint(string(hi), 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		out = append(out, [2]uintptr{uintptr(start), uintptr(end)})
	}
	return out
}
