package runtime

// Exec runs one more process inside a running container.
//
//	caller (Exec)                         helper (stack in ExecArg mode)
//	  |  start a sealed copy of               |
//	  |  /proc/self/exe ExecArg ------------> |  C constructor (runtime/nsenter), before Go:
//	  |                                       |  setns(pid ns); wait on the sync pipe
//	  |  add helper to the container cgroup   |
//	  |  one byte on the sync pipe ---------> |  fork: the parent stays outside as a relay
//	  |                                       |  (forwards signals, exits with the child's
//	  |                                       |  status); the child joins ipc, uts, net,
//	  |                                       |  cgroup and mount namespaces, then Go starts
//	  |  execConfig as JSON, shut down -----> |  rlimits, credentials, capabilities, cwd,
//	  |                                       |  no_new_privs, fds close-on-exec, exec
//	  |  <------ EOF (exec happened) or       |
//	  |  <------ {"step":..., "error":...}    |
//	  |  wait for the relay: the exit code    |
//
// Joining a mount namespace needs a single-threaded process, which a Go program never is
// once its runtime runs; hence the constructor.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	goruntime "runtime"
	"strconv"
	"strings"
	"syscall"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/stackrun/stack/runtime/seccomp"
)

// Env vars read by the runtime/nsenter constructor, and the exec helper's socket.
const (
	envNsenterPidNS = "_STACK_NSENTER_PIDNS"
	envNsenterFDs   = "_STACK_NSENTER_FDS"
	envNsenterSync  = "_STACK_NSENTER_SYNC"
	envExecSock     = "_STACK_EXEC_SOCK"
)

// execNamespaces are joined by the helper's child in this order; the pid namespace is joined
// first, separately, by the relay.
var execNamespaces = []string{"ipc", "uts", "net", "cgroup", "mnt"}

type execConfig struct {
	Process  *specs.Process  `json:"process"`
	Caps     capSets         `json:"caps"`
	ExtraFDs int             `json:"extraFDs"`
	Terminal bool            `json:"terminal,omitempty"`
	Seccomp  seccomp.Program `json:"seccomp,omitempty"`
}

// Exec runs p inside every namespace and the cgroup of running container id and returns its
// exit code (128+signal when killed by a signal). With stdio.Terminal, stdio must be a pty
// slave (see OpenPty), which becomes the process's controlling terminal. Cancelling ctx kills
// the process.
func (r *Runtime) Exec(ctx context.Context, id string, p *specs.Process, stdio IO) (code int, err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("exec in container %s: %w", id, err)
		}
	}()
	rec, err := r.load(id)
	if err != nil {
		return -1, err
	}
	if st := r.status(rec); st != specs.StateRunning {
		return -1, fmt.Errorf("%w: container is %s", ErrNotRunning, st)
	}
	if p == nil || len(p.Args) == 0 {
		return -1, fmt.Errorf("%w: no process args", ErrInvalid)
	}
	caps, err := resolveCaps(p.Capabilities)
	if err != nil {
		return -1, err
	}
	for _, rl := range p.Rlimits {
		if _, ok := rlimitNames[rl.Type]; !ok {
			return -1, fmt.Errorf("%w: unknown rlimit %q", ErrInvalid, rl.Type)
		}
	}
	var nsFiles []*os.File
	defer func() {
		for _, f := range nsFiles {
			f.Close()
		}
	}()
	for _, ns := range append([]string{"pid"}, execNamespaces...) {
		path := "/proc/" + strconv.Itoa(rec.Pid) + "/ns/" + ns
		f, err := os.OpenFile(path, os.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return -1, fmt.Errorf("open namespace: %w", err)
		}
		nsFiles = append(nsFiles, f)
	}
	// The namespace files were opened by pid; make sure it still was the container's init.
	if !rec.alive() {
		return -1, fmt.Errorf("%w: container exited", ErrNotRunning)
	}
	drv, err := r.cgroups()
	if err != nil {
		return -1, err
	}
	parentSock, childSock, err := socketPair("exec")
	if err != nil {
		return -1, err
	}
	defer parentSock.Close()
	syncR, syncW, err := os.Pipe()
	if err != nil {
		childSock.Close()
		return -1, err
	}
	defer syncW.Close()

	n := len(stdio.ExtraFiles)
	files := append(append([]*os.File(nil), stdio.ExtraFiles...), nsFiles...)
	files = append(files, syncR, childSock)
	var others []string
	for i := range execNamespaces {
		others = append(others, strconv.Itoa(4+n+i))
	}
	base := 3 + n + len(nsFiles)
	exe, exePath, err := sealedExe(r.helper, exeMinFD(3+len(files)))
	if err != nil {
		childSock.Close()
		syncR.Close()
		return -1, err
	}
	defer exe.Close()
	cmd := &exec.Cmd{
		Path: exePath,
		Args: []string{"stack", ExecArg},
		Env: []string{
			envNsenterPidNS + "=" + strconv.Itoa(3+n),
			envNsenterFDs + "=" + strings.Join(others, ","),
			envNsenterSync + "=" + strconv.Itoa(base),
			envExecSock + "=" + strconv.Itoa(base+1),
		},
		Stdin: stdio.Stdin, Stdout: stdio.Stdout, Stderr: stdio.Stderr,
		ExtraFiles: files,
	}
	err = cmd.Start()
	syncR.Close()
	childSock.Close()
	if err != nil {
		return -1, fmt.Errorf("start exec helper: %w", err)
	}
	kill := func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	if err := drv.AddProc(rec.Cgroup, cmd.Process.Pid); err != nil {
		kill()
		return -1, fmt.Errorf("move exec helper into cgroup %s: %w", rec.Cgroup, err)
	}
	if _, err := syncW.Write([]byte{1}); err != nil {
		kill()
		return -1, fmt.Errorf("release exec helper: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { _ = cmd.Process.Kill() })
	defer stop()
	cfg := execConfig{Process: p, Caps: caps, ExtraFDs: n, Terminal: stdio.Terminal, Seccomp: rec.Seccomp}
	if err := exchange(parentSock, &cfg, false); err != nil {
		kill()
		return -1, err
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return -1, err
	}
	if ctx.Err() != nil {
		return -1, ctx.Err()
	}
	ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		return 128 + int(ws.Signal()), nil
	}
	return ws.ExitStatus(), nil
}

// ExecMain is the exec helper's entry point (argv[1] == ExecArg), reached in the container's
// namespaces after the runtime/nsenter constructor ran. It never returns.
func ExecMain() {
	goruntime.LockOSThread()
	// The constructor closes the pid namespace fd once it has joined every namespace; if the
	// fd is still open it never ran (runtime/nsenter not linked in) and we are on the host.
	// Checked first, before anything here opens an fd that could take its number.
	// The number may be taken again by then: Go's runtime keeps a cgroup cpu file open from
	// its start (container-aware GOMAXPROCS), so look at what the fd is, not only whether.
	n, err := strconv.Atoi(os.Getenv(envNsenterPidNS))
	onHost := err != nil || stillPidNS(n)
	sock, err := fdFromEnv(envExecSock)
	if err != nil {
		fmt.Fprintln(os.Stderr, "stack exec: not started by the runtime")
		os.Exit(126)
	}
	if onHost {
		reply(sock, &StepError{Step: "join namespaces", Msg: "runtime/nsenter is not linked into this binary"})
		os.Exit(126)
	}
	var cfg execConfig
	if err := json.NewDecoder(sock).Decode(&cfg); err != nil {
		os.Exit(126)
	}
	err = runExec(&cfg)
	reply(sock, err)
	os.Exit(126)
}

func runExec(cfg *execConfig) error {
	p := cfg.Process
	for _, rl := range p.Rlimits {
		lim := syscall.Rlimit{Cur: rl.Soft, Max: rl.Hard}
		if err := syscall.Setrlimit(rlimitNames[rl.Type], &lim); err != nil {
			return fail("set "+rl.Type, err)
		}
	}
	if cfg.Terminal {
		if _, err := unix.Setsid(); err != nil {
			return fail("setsid", err)
		}
		if err := unix.IoctlSetInt(0, unix.TIOCSCTTY, 0); err != nil {
			return fail("set controlling terminal", err)
		}
	}
	path, err := lookPath(p.Args[0], p.Env)
	if err != nil {
		return fail("find executable", err)
	}
	if err := finishProcess(p, cfg.Caps, cfg.ExtraFDs, cfg.Seccomp); err != nil {
		return err
	}
	// If the relay is killed (the caller gave up), take the process with it.
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
		return fail("set parent death signal", err)
	}
	err = syscall.Exec(path, p.Args, withHome(p.Env, p.User.UID))
	return fail("exec "+p.Args[0], err)
}

func stillPidNS(fd int) bool {
	l, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	return err == nil && strings.HasPrefix(l, "pid:[")
}
