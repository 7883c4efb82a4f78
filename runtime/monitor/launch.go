// Package monitor owns the per-container monitor: the small process that is the parent of
// one container, keeps its output in a log file, records how it runs and ends, probes its
// health, applies its restart policy, and answers stop/kill/restart requests, with no daemon
// above it. It also owns the readers other commands use: Inspect for the record (including
// "unsupervised" when the monitor died under a running container) and ReadLogs for the log.
// It drives containers only through OCIRuntime and knows nothing of services or projects.
//
// Files: StateDir (persistent) holds status.json, the stop intent and, by default, the log;
// RunDir (volatile) holds monitor.pid, monitor.sock, monitor.lock and the container's
// stdout/stderr FIFOs. After a reboot RunDir is empty and Inspect reports every container
// exited (the record's boot id no longer matches).
//
// When a monitor dies (SIGKILL) its container keeps running: Inspect reports it Unsupervised.
// The container writes to FIFOs it holds open read-write, so it never gets EPIPE; its output
// waits in the pipe (64 KiB) and then its writes block until a monitor adopts it (Launch with
// Config.Adopt) and reopens the FIFOs. Lost on the way: the lines the dead monitor had read
// but not yet written, and the exit status of an adopted container (only the parent can
// collect it; an adopted container's exit is seen through a pidfd and recorded as -1). Stop
// and Kill work without a monitor (by pidfd); Restart needs one.
//
// The hand-off between Launch (in `stack up`, or any command) and the monitor process:
//
//	parent (Launch)                                monitor (Main, `stack-monitor _monitor`)
//	  pipe cfg, pipe ready
//	  start Executable _monitor      ───────────▶   setsid, stdio /dev/null, cwd /
//	     (stack-monitor; default /proc/self/exe)
//	     fds 3=cfg(r), 4=ready(w),                  read fds from _STACK_MONITOR_CONFIG_FD,
//	     5...=Config.Hold (held sockets)            _STACK_MONITOR_READY_FD; unset them
//	     env _STACK_MONITOR_CONFIG_FD=3,
//	         _STACK_MONITOR_READY_FD=4
//	  write Config as JSON, close  ─────────────▶   decode Config (until EOF); mark
//	     (HoldFDs names fds 5...)                   HoldFDs close-on-exec, keep them open
//	                                                step "subreaper": PR_SET_CHILD_SUBREAPER
//	                                                step "lock": RunDir/monitor.lock (flock)
//	                                                step "prepare": dirs, FIFOs, log file
//	                                                step "listen": RunDir/monitor.sock
//	                                                step "create"+"start" (or "adopt")
//	                                                write StateDir/status.json, monitor.pid
//	  read one JSON line  ◀─────────────────────    {"ok":true}  or
//	                                                {"step":"create","error":"..."} then exit 1
//	  return Handle (a goroutine reaps the          supervise until the container is
//	  monitor if this process outlives it)          finally exited or stopped, then exit 0
package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Mode is the hidden argv[1] that makes stack (or a test binary's TestMain) run Main.
const Mode = "_monitor"

// Environment variables naming the inherited pipe fds.
const (
	envConfigFD = "_STACK_MONITOR_CONFIG_FD"
	envReadyFD  = "_STACK_MONITOR_READY_FD"
)

// readyMsg is the monitor's one-line answer to Launch.
type readyMsg struct {
	OK    bool   `json:"ok,omitempty"`
	Step  string `json:"step,omitempty"`
	Error string `json:"error,omitempty"`
}

// StepError is a monitor that failed to come up, naming the setup step that failed.
type StepError struct {
	ID   string
	Step string
	Err  error
}

func (e *StepError) Error() string {
	return fmt.Sprintf("monitor for container %s: %s: %v", e.ID, e.Step, e.Err)
}
func (e *StepError) Unwrap() error { return e.Err }

// Handle is a launched monitor.
type Handle struct {
	// Pid is the monitor's pid.
	Pid  int
	done chan struct{}
}

// Done is closed when the monitor exits, if the launching process is still alive to see it.
func (h *Handle) Done() <-chan struct{} { return h.done }

// Launch starts a detached monitor for cfg and returns once the container runs (or, with
// cfg.Adopt, once the monitor supervises the running container). The monitor outlives the
// caller. On failure the error is a *StepError naming the step that failed. If ctx ends
// before the monitor reports, the monitor is killed; a container it had already started keeps
// running unsupervised (Inspect says so) until it is adopted or removed.
func Launch(ctx context.Context, cfg Config) (*Handle, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	cfgR, cfgW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("launch monitor for %s: %w", cfg.ID, err)
	}
	readyR, readyW, err := os.Pipe()
	if err != nil {
		cfgR.Close()
		cfgW.Close()
		return nil, fmt.Errorf("launch monitor for %s: %w", cfg.ID, err)
	}
	defer readyR.Close()
	exe := cfg.Executable
	if exe == "" {
		exe = "/proc/self/exe"
	}
	cmd := exec.Command(exe, Mode)
	cmd.Args[0] = "stack"
	cmd.Dir = "/"
	cmd.ExtraFiles = []*os.File{cfgR, readyW}
	cfg.HoldFDs = nil
	for _, f := range cfg.Hold {
		if f == nil {
			continue
		}
		cfg.HoldFDs = append(cfg.HoldFDs, 3+len(cmd.ExtraFiles))
		cmd.ExtraFiles = append(cmd.ExtraFiles, f)
	}
	cmd.Env = append(envWithout(os.Environ(), envConfigFD, envReadyFD), envConfigFD+"=3", envReadyFD+"=4")
	if _, set := os.LookupEnv("GOMAXPROCS"); !set {
		// One P from the start: one mcache and GC worker instead of one per CPU; measured
		// ~190 KiB less PSS per monitor (bench/monitor.sh). The monitor has nothing to run
		// in parallel.
		cmd.Env = append(cmd.Env, "GOMAXPROCS=1")
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	cfgR.Close()
	readyW.Close()
	if err != nil {
		cfgW.Close()
		return nil, fmt.Errorf("launch monitor for %s: %w", cfg.ID, err)
	}
	h := &Handle{Pid: cmd.Process.Pid, done: make(chan struct{})}
	waitErr := make(chan error, 1)
	go func() {
		waitErr <- cmd.Wait()
		close(h.done)
	}()
	fail := func(step string, err error) (*Handle, error) {
		_ = cmd.Process.Kill() // our child; it exits on its own after reporting an error
		return nil, &StepError{ID: cfg.ID, Step: step, Err: err}
	}
	err = json.NewEncoder(cfgW).Encode(cfg)
	cfgW.Close()
	if err != nil {
		return fail("send config", err)
	}
	stop := context.AfterFunc(ctx, func() { readyR.SetReadDeadline(time.Now()) })
	defer stop()
	b, err := io.ReadAll(readyR)
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return fail("wait for ready", err)
	}
	var msg readyMsg
	if len(b) == 0 {
		select {
		case werr := <-waitErr:
			return nil, &StepError{ID: cfg.ID, Step: "start monitor", Err: fmt.Errorf("exited before ready: %v", werr)}
		case <-time.After(time.Second):
			return fail("wait for ready", errors.New("monitor closed its ready pipe without a word"))
		}
	}
	if err := json.Unmarshal(b, &msg); err != nil {
		return fail("wait for ready", fmt.Errorf("bad reply %q: %w", b, err))
	}
	if !msg.OK {
		return nil, &StepError{ID: cfg.ID, Step: msg.Step, Err: errors.New(msg.Error)}
	}
	return h, nil
}

func envWithout(env []string, names ...string) []string {
	out := env[:0:0]
outer:
	for _, kv := range env {
		for _, n := range names {
			if strings.HasPrefix(kv, n+"=") {
				continue outer
			}
		}
		out = append(out, kv)
	}
	return out
}
