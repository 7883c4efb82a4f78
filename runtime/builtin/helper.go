package builtin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/stackrun/stack/runtime/monitor"
)

// HelperMain is the runtime helper a monitor starts (monitor.Helper, see the sequence in
// runtime/monitor/helper.go): one operation on stack's runtime, in this process, with
// the request read from the inherited pipe and the answer written to the other. It never
// returns.
func HelperMain() {
	fds := strings.Split(os.Getenv(monitor.EnvHelperFDs), ",")
	os.Unsetenv(monitor.EnvHelperFDs)
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
	var req monitor.HelperRequest
	err := json.NewDecoder(reqFile).Decode(&req)
	reqFile.Close()
	var resp monitor.HelperResponse
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

func serveHelper(ctx context.Context, req monitor.HelperRequest) (resp monitor.HelperResponse) {
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
		case "run":
			resp.Step = "create"
			pid, err = rt.Create(ctx, req.ID, req.Bundle, monitor.ProcessIO{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr})
			resp.Pid = pid
			if err == nil {
				resp.Step = "start"
				err = rt.Start(ctx, req.ID)
			}
			if err == nil {
				resp.Step = ""
			}
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
