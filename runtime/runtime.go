package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/stackrun/stack/runtime/cgroups"
	"github.com/stackrun/stack/state"
)

// Options configure a Runtime.
type Options struct {
	// Root is the state root: one directory per container, holding its record and exec fifo.
	Root string
	// CgroupParent is where container cgroups go, relative to the calling process's own
	// cgroup ("" = directly below it). Delete must run from a process in the same cgroup as
	// Create, which holds for the monitor and for CLI invocations from one shell.
	CgroupParent string
	// Helper is the executable the container init and the exec helper start from (always as
	// a sealed copy): one that dispatches InitArg and ExecArg, such as cmd/stack-shim, which
	// starts in a fraction of the whole CLI's time. "" means the running binary.
	Helper string
}

// Runtime creates and manages containers recorded under one state root.
type Runtime struct {
	root         string
	cgroupParent string
	helper       string
}

// New returns a Runtime keeping its records under o.Root.
func New(o Options) *Runtime {
	return &Runtime{root: o.Root, cgroupParent: o.CgroupParent, helper: o.Helper}
}

// IO is what a container's (or exec'd) process gets as stdio.
type IO struct {
	Stdin, Stdout, Stderr *os.File // nil means /dev/null
	// Terminal allocates a pty: its slave becomes the process's stdio and controlling
	// terminal, its master is returned as Container.Console (or passed to Exec's caller).
	Terminal bool
	// ExtraFiles become fds 3, 4, ... inside; no other fd of the caller is inherited.
	ExtraFiles []*os.File
}

// State is the OCI state of a container plus what the runtime knows about how it ended.
type State struct {
	specs.State
	Created time.Time `json:"created"`
	Rootfs  string    `json:"rootfs"`
	Cgroup  string    `json:"cgroup"` // relative to the runtime's cgroup parent
	// CgroupPaths maps each controller to the cgroup's directory ("" for cgroup v2).
	CgroupPaths map[string]string `json:"cgroupPaths,omitempty"`
	Exit        *ExitStatus       `json:"exit,omitempty"` // recorded by Container.Wait
	OOMKilled   bool              `json:"oomKilled"`      // the OOM killer struck in the container's cgroup
}

// Container is the handle Create returns. The caller is the parent of the container's init,
// so Wait can reap it and record how it ended.
type Container struct {
	ID  string
	Pid int // on the host
	// Console is the pty master when IO.Terminal was set.
	Console *os.File
	r       *Runtime
	cmd     *exec.Cmd
	cgroup  string
}

// CgroupParent returns the cgroup parent containers are created under.
func (r *Runtime) CgroupParent() string { return r.cgroupParent }

func (r *Runtime) dir(id string) string     { return filepath.Join(r.root, id) }
func (r *Runtime) recPath(id string) string { return filepath.Join(r.root, id, "state.json") }
func (r *Runtime) fifo(id string) string    { return filepath.Join(r.root, id, "exec.fifo") }

func (r *Runtime) lock(id string) (*state.Lock, error) {
	return state.WaitLock(filepath.Join(r.dir(id), "lock"))
}

func (r *Runtime) load(id string) (*record, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	var rec record
	if err := state.ReadJSON(r.recPath(id), &rec); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("container %s: %w", id, ErrNotFound)
		}
		return nil, fmt.Errorf("read record of container %s: %w", id, err)
	}
	return &rec, nil
}

// save writes the record atomically (temp file, rename) but without fsync: it holds volatile
// facts (pids, start times) that mean nothing after a reboot, and three fsyncs per create
// were a measurable part of its latency on a disk-backed root.
func (r *Runtime) save(rec *record) (err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("write record of container %s: %w", rec.ID, err)
		}
	}()
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	path := r.recPath(rec.ID)
	f, err := os.CreateTemp(filepath.Dir(path), ".state.json.tmp-*")
	if err != nil {
		return err
	}
	_, err = f.Write(append(b, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

func (r *Runtime) cgroups() (cgroups.Driver, error) {
	d, err := cgroups.New(r.cgroupParent)
	if err != nil {
		return nil, fmt.Errorf("open cgroups below %q: %w", r.cgroupParent, err)
	}
	return d, nil
}

// cgroupPath is the container's cgroup relative to the runtime's parent: the config's
// cgroupsPath taken as relative, or the id.
func cgroupPath(s *specs.Spec, id string) string {
	if p := strings.TrimLeft(s.Linux.CgroupsPath, "/"); p != "" {
		return filepath.Clean(p)
	}
	return id
}

// Create sets up container id from bundle (config.json + rootfs) and leaves its init waiting,
// with everything prepared, for Start. The caller becomes the init's parent.
func (r *Runtime) Create(ctx context.Context, id, bundle string, stdio IO) (_ *Container, err error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	if bundle, err = filepath.Abs(bundle); err != nil {
		return nil, err
	}
	spec, rootfs, err := LoadBundle(bundle)
	if err != nil {
		return nil, fmt.Errorf("create container %s: %w", id, err)
	}
	ns, _ := cloneFlags(spec) // validated by LoadBundle
	caps, _ := resolveCaps(spec.Process.Capabilities)
	if err := os.MkdirAll(r.root, state.DirMode); err != nil {
		return nil, fmt.Errorf("create state root: %w", err)
	}
	if err := os.Mkdir(r.dir(id), state.DirMode); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("create container %s: %w", id, ErrExists)
		}
		return nil, fmt.Errorf("create container %s: %w", id, err)
	}
	lock, err := r.lock(id)
	if err != nil {
		return nil, fmt.Errorf("create container %s: %w", id, err)
	}
	defer lock.Unlock()

	rec := &record{ID: id, Bundle: bundle, Rootfs: rootfs, Created: time.Now().UTC(),
		Cgroup: cgroupPath(spec, id), Annotations: spec.Annotations}
	c := &Container{ID: id, r: r, cgroup: rec.Cgroup}
	var drv cgroups.Driver
	defer func() {
		if err == nil {
			return
		}
		err = fmt.Errorf("create container %s: %w", id, err)
		if c.cmd != nil && c.cmd.Process != nil {
			_ = c.cmd.Process.Kill()
			_ = c.cmd.Wait()
		}
		if c.Console != nil {
			c.Console.Close()
		}
		if drv != nil {
			err = errors.Join(err, drv.Remove(rec.Cgroup))
		}
		err = errors.Join(err, os.RemoveAll(r.dir(id)))
	}()
	if drv, err = r.cgroups(); err != nil {
		return nil, err
	}
	rec.CgroupPaths = drv.Paths(rec.Cgroup)
	// Recorded before anything exists on the host, so a delete after a SIGKILL of this process
	// finds the cgroup.
	if err := r.save(rec); err != nil {
		return nil, err
	}
	if err := drv.Apply(rec.Cgroup, Resources(spec)); err != nil {
		return nil, fmt.Errorf("create cgroup %s: %w", rec.Cgroup, err)
	}

	terminal := stdio.Terminal || spec.Process.Terminal
	var slave *os.File
	if terminal {
		if c.Console, slave, err = OpenPty(spec.Process.ConsoleSize); err != nil {
			return nil, err
		}
		defer slave.Close()
		stdio.Stdin, stdio.Stdout, stdio.Stderr = slave, slave, slave
	}
	console := ""
	if slave != nil {
		console = slave.Name()
	}
	plan, err := planRootfs(spec, rootfs, bundle, console)
	if err != nil {
		return nil, err
	}
	sysctl, _ := checkSysctls(spec)
	if rec.Seccomp, err = compileSeccomp(spec); err != nil {
		return nil, err
	}
	cfg := initConfig{
		Process: spec.Process, Hostname: spec.Hostname, Domainname: spec.Domainname,
		Plan: plan, Join: ns.Join, CgroupNS: ns.Cgroup, Sysctl: sysctl, Caps: caps,
		ExtraFDs: len(stdio.ExtraFiles), TinyInit: wantsTinyInit(spec), Terminal: terminal,
		Seccomp: rec.Seccomp,
	}

	fifoPath := r.fifo(id)
	if err := unix.Mkfifo(fifoPath, 0o622); err != nil {
		return nil, &os.PathError{Op: "mkfifo", Path: fifoPath, Err: err}
	}
	// mkfifo honours the umask; the init may write it after dropping to another uid.
	if err := os.Chmod(fifoPath, 0o622); err != nil {
		return nil, err
	}
	fifoFD, err := unix.Open(fifoPath, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: fifoPath, Err: err}
	}
	fifo := os.NewFile(uintptr(fifoFD), fifoPath)
	defer fifo.Close()
	parentSock, childSock, err := socketPair("init")
	if err != nil {
		return nil, err
	}
	defer parentSock.Close()

	n := len(stdio.ExtraFiles)
	exe, exePath, err := sealedExe(r.helper, exeMinFD(5+n))
	if err != nil {
		return nil, err
	}
	defer exe.Close()
	cmd := &exec.Cmd{
		Path:       exePath,
		Args:       []string{"stack", InitArg},
		Env:        []string{envInitSock + "=" + strconv.Itoa(3+n), envInitFifo + "=" + strconv.Itoa(4+n)},
		Stdin:      stdio.Stdin,
		Stdout:     stdio.Stdout,
		Stderr:     stdio.Stderr,
		ExtraFiles: append(append([]*os.File(nil), stdio.ExtraFiles...), childSock, fifo),
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: ns.Clone,
		},
	}
	c.cmd = cmd
	err = cmd.Start()
	childSock.Close()
	if err != nil {
		c.cmd = nil
		return nil, fmt.Errorf("start init: %w", err)
	}
	c.Pid = cmd.Process.Pid
	if rec.StartTime, err = procStartTime(c.Pid); err != nil {
		return nil, fmt.Errorf("read start time of init %d: %w", c.Pid, err)
	}
	rec.BootID = bootID()
	if err := drv.AddProc(rec.Cgroup, c.Pid); err != nil {
		return nil, fmt.Errorf("move init %d into cgroup %s: %w", c.Pid, rec.Cgroup, err)
	}
	// The pid is recorded with the ready state below. Until then a delete finds the init
	// through the cgroup, and the init exits by itself if we die before sending its config.
	rec.Pid = c.Pid
	stop := context.AfterFunc(ctx, func() { _ = cmd.Process.Kill() })
	defer stop()
	if err := exchange(parentSock, &cfg, true); err != nil {
		return nil, err
	}
	rec.Ready = true
	if err := r.save(rec); err != nil {
		return nil, err
	}
	return c, nil
}

// exchange sends cfg to a child over sock and reads its one reply. wantReady: the child
// reports success explicitly (the init); otherwise EOF means success (exec closed the socket).
func exchange(sock *os.File, cfg any, wantReady bool) error {
	if err := json.NewEncoder(sock).Encode(cfg); err != nil {
		return fmt.Errorf("send config to child: %w", err)
	}
	if err := unix.Shutdown(int(sock.Fd()), unix.SHUT_WR); err != nil {
		return fmt.Errorf("send config to child: %w", err)
	}
	var rep childReply
	err := json.NewDecoder(sock).Decode(&rep)
	switch {
	case errors.Is(err, io.EOF) && !wantReady:
		return nil
	case errors.Is(err, io.EOF):
		return errors.New("init exited before reporting ready")
	case err != nil:
		return fmt.Errorf("read reply from child: %w", err)
	case rep.StepError != nil:
		return rep.StepError
	case !rep.Ready:
		return errors.New("child sent an empty reply")
	}
	return nil
}

func socketPair(name string) (parent, child *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, os.NewSyscallError("socketpair", err)
	}
	return os.NewFile(uintptr(fds[0]), name+"-parent"), os.NewFile(uintptr(fds[1]), name+"-child"), nil
}

// AnnotationInit, set to "true", runs stack's tiny init as pid 1 (Compose's init: true): it
// forwards signals to the process and reaps zombies.
const AnnotationInit = "run.stack.init"

func wantsTinyInit(s *specs.Spec) bool { return s.Annotations[AnnotationInit] == "true" }

// alive reports whether the recorded process still runs (a zombie does not count): the pid
// names a process of this boot that started when the recorded one did. A root kept across a
// reboot (on disk, not tmpfs) names pids that other processes may now hold, with start times
// that may even match: the boot id tells them apart.
func (rec *record) alive() bool {
	if rec.Pid <= 0 || rec.BootID != "" && rec.BootID != bootID() {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(rec.Pid) + "/stat")
	if err != nil {
		return false
	}
	st, err := parseStartTime(b)
	return err == nil && st == rec.StartTime && procState(b) != "Z"
}

// pidfd opens the recorded process as a pidfd, checking that the pid still names the same
// process; signals sent through the pidfd can never reach a process that reused the pid.
func (rec *record) pidfd() (int, error) {
	if rec.Pid <= 0 {
		return -1, ErrNotRunning
	}
	fd, err := unix.PidfdOpen(rec.Pid, 0)
	if err != nil {
		return -1, ErrNotRunning
	}
	if !rec.alive() {
		unix.Close(fd)
		return -1, ErrNotRunning
	}
	return fd, nil
}

// Start lets a created container's init exec the configured process.
func (r *Runtime) Start(ctx context.Context, id string) error {
	rec, err := r.load(id)
	if err != nil {
		return fmt.Errorf("start container %s: %w", id, err)
	}
	lock, err := r.lock(id)
	if err != nil {
		return fmt.Errorf("start container %s: %w", id, err)
	}
	defer lock.Unlock()
	if !rec.Ready || !rec.alive() {
		return fmt.Errorf("start container %s: %w (status %s)", id, ErrNotRunning, r.status(rec))
	}
	fd, err := unix.Open(r.fifo(id), unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("start container %s: %w: already started", id, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("start container %s: open exec fifo: %w", id, err)
	}
	defer unix.Close(fd)
	// First the init's byte (it is released), then EOF: the init holds the fifo open until
	// its exec closes it, so returning after EOF means the user's process runs.
	var b [1]byte
	for gotByte := false; ; {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if _, err := unix.Poll(pfd, 50); err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("start container %s: wait on exec fifo: %w", id, err)
		}
		n, err := unix.Read(fd, b[:])
		if n == 1 {
			gotByte = true
			continue
		}
		if n == 0 && err == nil && gotByte {
			break // EOF after the byte: exec'd (or the init died, which State reports)
		}
		if err != nil && !errors.Is(err, unix.EAGAIN) {
			return fmt.Errorf("start container %s: read exec fifo: %w", id, err)
		}
		if !rec.alive() {
			if gotByte {
				break // released, then ended: an exec failure or a quick exit, seen by Wait
			}
			return fmt.Errorf("start container %s: init exited before start", id)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("start container %s: %w", id, ctx.Err())
		}
	}
	if err := os.Remove(r.fifo(id)); err != nil {
		return fmt.Errorf("start container %s: %w", id, err)
	}
	return nil
}

func (r *Runtime) status(rec *record) specs.ContainerState {
	if !rec.Ready {
		// Create holds the container's lock until the init is ready or gone.
		if l, ok, err := state.TryLock(filepath.Join(r.dir(rec.ID), "lock")); err == nil && !ok {
			return specs.StateCreating
		} else if ok {
			l.Unlock()
		}
		return specs.StateStopped
	}
	switch {
	case !rec.alive():
		return specs.StateStopped
	case state.Exists(r.fifo(rec.ID)):
		return specs.StateCreated
	}
	return specs.StateRunning
}

// State reports the container's OCI state, derived from its record and the live process.
func (r *Runtime) State(ctx context.Context, id string) (*State, error) {
	rec, err := r.load(id)
	if err != nil {
		return nil, fmt.Errorf("state of container %s: %w", id, err)
	}
	s := &State{
		State: specs.State{Version: specs.Version, ID: id, Status: r.status(rec), Bundle: rec.Bundle,
			Annotations: rec.Annotations},
		Created: rec.Created, Rootfs: rec.Rootfs, Cgroup: rec.Cgroup, Exit: rec.Exit,
	}
	if s.Status != specs.StateStopped {
		s.Pid = rec.Pid
	}
	s.CgroupPaths = rec.CgroupPaths
	if s.Exit != nil {
		s.OOMKilled = s.Exit.OOMKilled
	} else if drv, err := r.cgroups(); err == nil {
		s.OOMKilled, _ = cgroups.OOMKilled(drv, rec.Cgroup)
	}
	return s, nil
}

// List returns the state of every container under the root, sorted by id.
func (r *Runtime) List(ctx context.Context) ([]*State, error) {
	ents, err := os.ReadDir(r.root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	var out []*State
	for _, e := range ents {
		if !e.IsDir() || checkID(e.Name()) != nil {
			continue
		}
		s, err := r.State(ctx, e.Name())
		if errors.Is(err, ErrNotFound) {
			continue // half-created or being deleted
		}
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Kill sends sig to the container's init.
func (r *Runtime) Kill(ctx context.Context, id string, sig unix.Signal) error {
	rec, err := r.load(id)
	if err != nil {
		return fmt.Errorf("kill container %s: %w", id, err)
	}
	fd, err := rec.pidfd()
	if err != nil {
		return fmt.Errorf("kill container %s: %w", id, err)
	}
	defer unix.Close(fd)
	if err := unix.PidfdSendSignal(fd, sig, nil, 0); err != nil {
		return fmt.Errorf("kill container %s with %s: %w", id, unix.SignalName(sig), err)
	}
	return nil
}

// Stop sends sig (SIGTERM when 0) to the container's init, waits up to grace for it to exit,
// then kills it with SIGKILL. It returns once the init has exited; stopping a container that
// is not running is not an error.
func (r *Runtime) Stop(ctx context.Context, id string, sig unix.Signal, grace time.Duration) error {
	rec, err := r.load(id)
	if err != nil {
		return fmt.Errorf("stop container %s: %w", id, err)
	}
	fd, err := rec.pidfd()
	if err != nil {
		return nil // not running
	}
	defer unix.Close(fd)
	if sig == 0 {
		sig = unix.SIGTERM
	}
	if err := unix.PidfdSendSignal(fd, sig, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("stop container %s: send %s: %w", id, unix.SignalName(sig), err)
	}
	graceCtx, cancel := context.WithTimeout(ctx, grace)
	defer cancel()
	if waitPidfd(graceCtx, fd) == nil {
		return nil
	}
	if err := unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("stop container %s: send SIGKILL: %w", id, err)
	}
	if err := waitPidfd(ctx, fd); err != nil {
		return fmt.Errorf("stop container %s: %w", id, err)
	}
	return nil
}

// Pids lists the host pids of every process in the container's cgroup.
func (r *Runtime) Pids(ctx context.Context, id string) ([]int, error) {
	rec, err := r.load(id)
	if err != nil {
		return nil, fmt.Errorf("list processes of container %s: %w", id, err)
	}
	drv, err := r.cgroups()
	if err != nil {
		return nil, err
	}
	pids, err := drv.Pids(rec.Cgroup)
	if err != nil {
		return nil, fmt.Errorf("list processes of container %s: %w", id, err)
	}
	return pids, nil
}

// Stats reads the container's cgroup counters.
func (r *Runtime) Stats(ctx context.Context, id string) (*cgroups.Stats, error) {
	rec, err := r.load(id)
	if err != nil {
		return nil, fmt.Errorf("stats of container %s: %w", id, err)
	}
	drv, err := r.cgroups()
	if err != nil {
		return nil, err
	}
	return drv.Stats(rec.Cgroup)
}

// Delete removes a container: its processes (only if created or stopped, unless force), its
// cgroup and its record. Mounts live in the container's mount namespace and go with its last
// process. Deleting a container that does not exist is not an error.
func (r *Runtime) Delete(ctx context.Context, id string, force bool) error {
	rec, err := r.load(id)
	if errors.Is(err, ErrNotFound) {
		if checkID(id) == nil {
			// A create killed before writing its first record leaves at most an empty dir.
			_ = os.RemoveAll(r.dir(id))
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete container %s: %w", id, err)
	}
	lock, err := r.lock(id)
	if err != nil {
		return fmt.Errorf("delete container %s: %w", id, err)
	}
	defer lock.Unlock()
	if st := r.status(rec); st == specs.StateRunning && !force {
		return fmt.Errorf("delete container %s: %w: it is running (stop it or force)", id, ErrConflict)
	}
	if fd, err := rec.pidfd(); err == nil {
		err = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
		if err == nil {
			err = waitPidfd(ctx, fd)
		}
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("delete container %s: kill init %d: %w", id, rec.Pid, err)
		}
	}
	drv, err := r.cgroups()
	if err != nil {
		return fmt.Errorf("delete container %s: %w", id, err)
	}
	if rec.CgroupPaths != nil && !maps.Equal(rec.CgroupPaths, drv.Paths(rec.Cgroup)) {
		return fmt.Errorf("delete container %s: %w: its cgroup was made from another cgroup than ours (%v)",
			id, ErrConflict, rec.CgroupPaths)
	}
	if err := emptyCgroup(ctx, drv, rec.Cgroup); err != nil {
		return fmt.Errorf("delete container %s: %w", id, err)
	}
	// A Wait of this container blocked on the lock may make the lock file again while the
	// directory goes (it then removes it itself): try again briefly on ENOTEMPTY.
	var rmErr error
	for range 20 {
		if rmErr = os.RemoveAll(r.dir(id)); !errors.Is(rmErr, unix.ENOTEMPTY) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if rmErr != nil {
		return fmt.Errorf("delete container %s: remove state: %w", id, rmErr)
	}
	return nil
}

// waitPidfd waits until the process behind fd has exited (it may stay a zombie until its
// parent reaps it).
func waitPidfd(ctx context.Context, fd int) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(pfd, 100)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return err
		}
		if n > 0 {
			return nil
		}
	}
	return errors.New("process did not exit")
}

// emptyCgroup kills what is left in the container's cgroup (exec helpers, which live outside
// its pid namespace) and removes the cgroup.
func emptyCgroup(ctx context.Context, drv cgroups.Driver, path string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids, err := drv.Pids(path)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("list processes of cgroup %s: %w", path, err)
		}
		for _, pid := range pids {
			_ = unix.Kill(pid, unix.SIGKILL) // members of our container's cgroup only
		}
		err = drv.Remove(path)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("remove cgroup %s: %w", path, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Wait reaps the container's init and records how it ended (exit code or signal, and whether
// the OOM killer struck in its cgroup).
func (c *Container) Wait() (ExitStatus, error) {
	err := c.cmd.Wait()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return ExitStatus{}, fmt.Errorf("wait for container %s: %w", c.ID, err)
	}
	es := exitStatus(c.cmd.ProcessState.Sys().(syscall.WaitStatus))
	if drv, err := c.r.cgroups(); err == nil {
		es.OOMKilled, _ = cgroups.OOMKilled(drv, c.cgroup)
	}
	if c.Console != nil {
		c.Console.Close()
	}
	if !state.Exists(c.r.recPath(c.ID)) {
		return es, nil // deleted meanwhile: nothing to record
	}
	lock, err := c.r.lock(c.ID)
	if err != nil {
		return es, nil
	}
	defer lock.Unlock()
	rec, err := c.r.load(c.ID)
	if err != nil {
		// Deleted while we waited for the lock: taking it may have made the lock file (and
		// directory) again under a Delete that was removing them; leave nothing behind.
		_ = os.Remove(filepath.Join(c.r.dir(c.ID), "lock"))
		_ = os.Remove(c.r.dir(c.ID))
		return es, nil
	}
	rec.Exit = &es
	return es, c.r.save(rec)
}

func exitStatus(ws syscall.WaitStatus) ExitStatus {
	es := ExitStatus{Code: ws.ExitStatus(), At: time.Now().UTC()}
	if ws.Signaled() {
		es.Signal = unix.SignalName(ws.Signal())
		es.Code = 128 + int(ws.Signal())
	}
	return es
}
