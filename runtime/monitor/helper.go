package monitor

// Out of process: the monitor drives stack's runtime through a short-lived helper, one per
// operation, as it drives runc, so that nothing of the runtime's work stays in the monitor's
// memory for the container's whole life (the decoded OCI config, encoding/json's caches of its
// types, cgroup and seccomp state): measured 400-450 KiB of PSS per monitor (bench/monitor.sh).
//
//	monitor (Helper)                               helper (runtime/builtin.HelperMain,
//	                                                       `stack-shim _builtin`)
//	  pipe req, pipe resp
//	  start /proc/self/exe _builtin  ───────────▶  fds 0-2: the container's (create) or the
//	     fds 3=req(r), 4=resp(w),                  exec'd process's stdio
//	     env _STACK_BUILTIN_FDS=3,4
//	  write request as JSON, close  ────────────▶  decode request; run the operation in process
//	                                               (create: this helper is the init's parent)
//	  read one JSON response  ◀─────────────────   {"pid":..,"code":..,"error":..}; exit
//	  wait for the helper: once it is gone, a created init has been reparented to the
//	  monitor, its child subreaper, which waits for it as for runc's.
//
// Cancelling an operation's context sends the helper SIGTERM, which cancels the operation
// inside (an exec kills its process) before the helper exits; SIGKILL follows after a grace.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// HelperMode is the hidden argv[1] of the runtime helper; cmd/stack and cmd/stack-shim
// dispatch it to runtime/builtin.HelperMain.
const HelperMode = "_builtin"

// EnvHelperFDs names the helper's request and response fds ("3,4").
const EnvHelperFDs = "_STACK_BUILTIN_FDS"

// helperGrace is how long a cancelled helper has to end its operation before SIGKILL.
const helperGrace = 5 * time.Second

// HelperRequest is one operation for the runtime helper.
type HelperRequest struct {
	Op     string      `json:"op"` // create, start, run (create, then start), state, kill, delete, exec
	Root   string      `json:"root"`
	ID     string      `json:"id"`
	Bundle string      `json:"bundle,omitempty"`
	Signal unix.Signal `json:"signal,omitempty"`
	Force  bool        `json:"force,omitempty"`
	Args   []string    `json:"args,omitempty"`
	Env    []string    `json:"env,omitempty"`
	Cwd    string      `json:"cwd,omitempty"`
}

// HelperResponse is the runtime helper's answer.
type HelperResponse struct {
	Pid      int    `json:"pid,omitempty"`
	Step     string `json:"step,omitempty"` // for run: the step that failed (create or start)
	State    *State `json:"state,omitempty"`
	Code     int    `json:"code,omitempty"`
	Error    string `json:"error,omitempty"`
	NotFound bool   `json:"not_found,omitempty"`
}

// Helper is stack's own runtime (Config.Runtime "builtin") as an OCIRuntime: each operation
// runs in a helper process, as runc's do (see the sequence at the top of this file).
type Helper struct {
	// Exe is the binary that dispatches HelperMode to the runtime's helper entry
	// (runtime/builtin.HelperMain): stack or stack-shim.
	Exe string
	// Root is the runtime's state directory.
	Root string
}

// call runs one operation in a helper with stdio as its fds 0-2.
func (h *Helper) call(ctx context.Context, req HelperRequest, stdin *os.File, stdout, stderr io.Writer) (HelperResponse, error) {
	req.Root = h.Root
	var resp HelperResponse
	reqR, reqW, err := os.Pipe()
	if err != nil {
		return resp, err
	}
	respR, respW, err := os.Pipe()
	if err != nil {
		reqR.Close()
		reqW.Close()
		return resp, err
	}
	defer respR.Close()
	cmd := exec.CommandContext(ctx, h.Exe, HelperMode)
	cmd.Args[0] = "stack"
	cmd.Dir = "/"
	cmd.Env = append(os.Environ(), EnvHelperFDs+"=3,4")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	if stdin == nil {
		// os/exec would open /dev/null for us too; a nil *os.File in an io.Reader is not nil.
		cmd.Stdin = nil
	}
	cmd.ExtraFiles = []*os.File{reqR, respW}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = helperGrace
	err = cmd.Start()
	reqR.Close()
	respW.Close()
	if err != nil {
		reqW.Close()
		return resp, fmt.Errorf("%s: start runtime helper: %w", req.Op, err)
	}
	_, err = reqW.Write(append(req.appendJSON(nil), '\n'))
	reqW.Close()
	b, rerr := io.ReadAll(respR)
	werr := cmd.Wait()
	if err == nil && len(b) > 0 {
		resp, err = decodeHelperResponse(b)
	}
	switch {
	case err != nil:
		return resp, fmt.Errorf("%s: runtime helper: %w", req.Op, err)
	case len(b) == 0:
		if ctx.Err() != nil {
			return resp, ctx.Err()
		}
		return resp, fmt.Errorf("%s: runtime helper ended without an answer: %v", req.Op, errors.Join(rerr, werr))
	case resp.NotFound:
		return resp, fmt.Errorf("container %s: %s: %w", req.ID, resp.Error, ErrNotFound)
	case resp.Error != "":
		if ctx.Err() != nil {
			return resp, ctx.Err()
		}
		return resp, errors.New(resp.Error)
	}
	return resp, nil
}

func (h *Helper) Create(ctx context.Context, id, bundle string, stdio ProcessIO) (int, error) {
	var stdout, stderr io.Writer
	if stdio.Stdout != nil {
		stdout = stdio.Stdout
	}
	if stdio.Stderr != nil {
		stderr = stdio.Stderr
	}
	resp, err := h.call(ctx, HelperRequest{Op: "create", ID: id, Bundle: bundle}, stdio.Stdin, stdout, stderr)
	return resp.Pid, err
}

// CreateStart is Create then Start in one helper process (op "run"): a container start costs
// one process instead of two. On failure step says which of the two failed.
func (h *Helper) CreateStart(ctx context.Context, id, bundle string, stdio ProcessIO) (pid int, step string, err error) {
	var stdout, stderr io.Writer
	if stdio.Stdout != nil {
		stdout = stdio.Stdout
	}
	if stdio.Stderr != nil {
		stderr = stdio.Stderr
	}
	resp, err := h.call(ctx, HelperRequest{Op: "run", ID: id, Bundle: bundle}, stdio.Stdin, stdout, stderr)
	step = resp.Step
	if err != nil && step == "" {
		step = "create"
	}
	return resp.Pid, step, err
}

func (h *Helper) Start(ctx context.Context, id string) error {
	_, err := h.call(ctx, HelperRequest{Op: "start", ID: id}, nil, nil, nil)
	return err
}

func (h *Helper) State(ctx context.Context, id string) (State, error) {
	// stack's runtime keeps each container in Root/<id> (runtime.Runtime's layout): without
	// it there is nothing to ask, and a helper process is spared (a monitor asks before every
	// create, whether an old container of the same id is left).
	if _, err := os.Lstat(filepath.Join(h.Root, id)); errors.Is(err, fs.ErrNotExist) {
		return State{}, fmt.Errorf("container %s: %w", id, ErrNotFound)
	}
	resp, err := h.call(ctx, HelperRequest{Op: "state", ID: id}, nil, nil, nil)
	if err != nil || resp.State == nil {
		return State{}, err
	}
	return *resp.State, nil
}

func (h *Helper) Kill(ctx context.Context, id string, sig unix.Signal) error {
	_, err := h.call(ctx, HelperRequest{Op: "kill", ID: id, Signal: sig}, nil, nil, nil)
	return err
}

func (h *Helper) Delete(ctx context.Context, id string, force bool) error {
	_, err := h.call(ctx, HelperRequest{Op: "delete", ID: id, Force: force}, nil, nil, nil)
	return err
}

func (h *Helper) Exec(ctx context.Context, id string, p ExecProcess) (int, error) {
	resp, err := h.call(ctx, HelperRequest{Op: "exec", ID: id, Args: p.Args, Env: p.Env, Cwd: p.Cwd}, nil, p.Stdout, p.Stderr)
	if err != nil {
		return -1, err
	}
	return resp.Code, nil
}
