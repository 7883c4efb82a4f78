package builtin

// Out of process: the monitor drives stack's runtime through a short-lived helper, one per
// operation, as it drives runc, so that nothing of the runtime's work stays in the monitor's
// memory for the container's whole life (the decoded OCI config, encoding/json's caches of its
// types, cgroup and seccomp state): measured 400-450 KiB of PSS per monitor (bench/monitor.sh).
//
//	monitor (Helper)                               helper (HelperMain, `stack-shim _builtin`)
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
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stackrun/stack/runtime/monitor"
)

// HelperMode is the hidden argv[1] of the helper; cmd/stack and cmd/stack-shim dispatch it to
// HelperMain.
const HelperMode = "_builtin"

const envHelperFDs = "_STACK_BUILTIN_FDS"

// helperGrace is how long a cancelled helper has to end its operation before SIGKILL.
const helperGrace = 5 * time.Second

type helperRequest struct {
	Op     string      `json:"op"` // create, start, state, kill, delete, exec
	Root   string      `json:"root"`
	ID     string      `json:"id"`
	Bundle string      `json:"bundle,omitempty"`
	Signal unix.Signal `json:"signal,omitempty"`
	Force  bool        `json:"force,omitempty"`
	Args   []string    `json:"args,omitempty"`
	Env    []string    `json:"env,omitempty"`
	Cwd    string      `json:"cwd,omitempty"`
}

type helperResponse struct {
	Pid      int            `json:"pid,omitempty"`
	State    *monitor.State `json:"state,omitempty"`
	Code     int            `json:"code,omitempty"`
	Error    string         `json:"error,omitempty"`
	NotFound bool           `json:"not_found,omitempty"`
}

// Helper is stack's runtime as a monitor.OCIRuntime, run in a helper process per operation.
type Helper struct {
	// Exe is the binary that dispatches HelperMode to HelperMain.
	Exe string
	// Root is the runtime's state directory.
	Root string
}

// Spawning returns a monitor.BuiltinRuntime whose runtime runs each operation in exe (a
// binary dispatching HelperMode, normally "/proc/self/exe").
func Spawning(exe string) monitor.BuiltinRuntime {
	return func(root string) (monitor.OCIRuntime, error) {
		if err := os.MkdirAll(root, 0o700); err != nil {
			return nil, err
		}
		return &Helper{Exe: exe, Root: root}, nil
	}
}

// call runs one operation in a helper with stdio as its fds 0-2.
func (h *Helper) call(ctx context.Context, req helperRequest, stdin *os.File, stdout, stderr io.Writer) (helperResponse, error) {
	req.Root = h.Root
	var resp helperResponse
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
	cmd.Env = append(os.Environ(), envHelperFDs+"=3,4")
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
	err = json.NewEncoder(reqW).Encode(req)
	reqW.Close()
	b, rerr := io.ReadAll(respR)
	werr := cmd.Wait()
	if err == nil && len(b) > 0 {
		err = json.Unmarshal(b, &resp)
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
		return resp, fmt.Errorf("container %s: %s: %w", req.ID, resp.Error, monitor.ErrNotFound)
	case resp.Error != "":
		if ctx.Err() != nil {
			return resp, ctx.Err()
		}
		return resp, errors.New(resp.Error)
	}
	return resp, nil
}

func (h *Helper) Create(ctx context.Context, id, bundle string, stdio monitor.ProcessIO) (int, error) {
	var stdout, stderr io.Writer
	if stdio.Stdout != nil {
		stdout = stdio.Stdout
	}
	if stdio.Stderr != nil {
		stderr = stdio.Stderr
	}
	resp, err := h.call(ctx, helperRequest{Op: "create", ID: id, Bundle: bundle}, stdio.Stdin, stdout, stderr)
	return resp.Pid, err
}

func (h *Helper) Start(ctx context.Context, id string) error {
	_, err := h.call(ctx, helperRequest{Op: "start", ID: id}, nil, nil, nil)
	return err
}

func (h *Helper) State(ctx context.Context, id string) (monitor.State, error) {
	resp, err := h.call(ctx, helperRequest{Op: "state", ID: id}, nil, nil, nil)
	if err != nil || resp.State == nil {
		return monitor.State{}, err
	}
	return *resp.State, nil
}

func (h *Helper) Kill(ctx context.Context, id string, sig unix.Signal) error {
	_, err := h.call(ctx, helperRequest{Op: "kill", ID: id, Signal: sig}, nil, nil, nil)
	return err
}

func (h *Helper) Delete(ctx context.Context, id string, force bool) error {
	_, err := h.call(ctx, helperRequest{Op: "delete", ID: id, Force: force}, nil, nil, nil)
	return err
}

func (h *Helper) Exec(ctx context.Context, id string, p monitor.ExecProcess) (int, error) {
	resp, err := h.call(ctx, helperRequest{Op: "exec", ID: id, Args: p.Args, Env: p.Env, Cwd: p.Cwd}, nil, p.Stdout, p.Stderr)
	if err != nil {
		return -1, err
	}
	return resp.Code, nil
}

// HelperMain is the helper process: one operation on stack's runtime, in this process, with
// the request read from the inherited pipe and the answer written to the other. It never
// returns.
func HelperMain() {
	fds := strings.Split(os.Getenv(envHelperFDs), ",")
	os.Unsetenv(envHelperFDs)
	var reqFD, respFD int
	var err1, err2 error
	if len(fds) == 2 {
		reqFD, err1 = strconv.Atoi(fds[0])
		respFD, err2 = strconv.Atoi(fds[1])
	}
	if len(fds) != 2 || err1 != nil || err2 != nil {
		fmt.Fprintln(os.Stderr, "stack: the runtime helper is started by a monitor, not by hand")
		os.Exit(2)
	}
	unix.CloseOnExec(reqFD)
	unix.CloseOnExec(respFD)
	reqFile, respFile := os.NewFile(uintptr(reqFD), "request"), os.NewFile(uintptr(respFD), "response")
	var req helperRequest
	err := json.NewDecoder(reqFile).Decode(&req)
	reqFile.Close()
	var resp helperResponse
	if err == nil {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		resp = serveHelper(ctx, req)
		stop()
	} else {
		resp.Error = "runtime helper: read request: " + err.Error()
	}
	b, _ := json.Marshal(resp)
	respFile.Write(b)
	respFile.Close()
	os.Exit(0)
}

func serveHelper(ctx context.Context, req helperRequest) (resp helperResponse) {
	rt, err := New(req.Root)
	var pid int
	var st monitor.State
	if err == nil {
		switch req.Op {
		case "create":
			pid, err = rt.Create(ctx, req.ID, req.Bundle, monitor.ProcessIO{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr})
			resp.Pid = pid
		case "start":
			err = rt.Start(ctx, req.ID)
		case "state":
			st, err = rt.State(ctx, req.ID)
			if err == nil {
				resp.State = &st
			}
		case "kill":
			err = rt.Kill(ctx, req.ID, req.Signal)
		case "delete":
			err = rt.Delete(ctx, req.ID, req.Force)
		case "exec":
			resp.Code, err = rt.Exec(ctx, req.ID, monitor.ExecProcess{Args: req.Args, Env: req.Env, Cwd: req.Cwd, Stdout: os.Stdout, Stderr: os.Stderr})
		default:
			err = fmt.Errorf("unknown operation %q", req.Op)
		}
	}
	if err != nil {
		resp.Error = err.Error()
		resp.NotFound = errors.Is(err, monitor.ErrNotFound)
	}
	return resp
}
