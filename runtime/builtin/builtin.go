// Package builtin owns one adapter: stack's own runtime (package runtime) behind the monitor's
// OCIRuntime interface (New), and the runtime helper process a monitor runs each operation in
// (HelperMain, reached through monitor.HelperMode): the helper, not the monitor, is the parent
// that creates a container's init, which is then reparented to the monitor, its subreaper. The
// monitor cannot import the runtime itself, and keeps none of its memory this way.
package builtin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/stackrun/stack/runtime"
	"github.com/stackrun/stack/runtime/monitor"
)

// Runtime is stack's runtime as a monitor.OCIRuntime.
type Runtime struct {
	rt *runtime.Runtime
}

// New returns the adapter keeping the runtime's records under root.
func New(root string) (monitor.OCIRuntime, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, err
	}
	return &Runtime{rt: runtime.New(runtime.Options{Root: root})}, nil
}

// Create creates the container in this process, which becomes its init's parent; the monitor
// reaps it (wait4 on the pid), so the runtime's own Wait is never called here.
func (r *Runtime) Create(ctx context.Context, id, bundle string, stdio monitor.ProcessIO) (int, error) {
	c, err := r.rt.Create(ctx, id, bundle, runtime.IO{Stdin: stdio.Stdin, Stdout: stdio.Stdout, Stderr: stdio.Stderr})
	if err != nil {
		return 0, err
	}
	return c.Pid, nil
}

func (r *Runtime) Start(ctx context.Context, id string) error { return r.rt.Start(ctx, id) }

func (r *Runtime) State(ctx context.Context, id string) (monitor.State, error) {
	st, err := r.rt.State(ctx, id)
	if errors.Is(err, runtime.ErrNotFound) {
		return monitor.State{}, fmt.Errorf("container %s: %w", id, monitor.ErrNotFound)
	}
	if err != nil {
		return monitor.State{}, err
	}
	return monitor.State{ID: st.ID, Status: string(st.Status), Pid: st.Pid, Bundle: st.Bundle}, nil
}

func (r *Runtime) Kill(ctx context.Context, id string, sig unix.Signal) error {
	return r.rt.Kill(ctx, id, sig)
}

func (r *Runtime) Delete(ctx context.Context, id string, force bool) error {
	err := r.rt.Delete(ctx, id, force)
	if errors.Is(err, runtime.ErrNotFound) {
		return nil
	}
	return err
}

// Exec runs p with the container's own user, capabilities and environment (p.Env added), as
// a healthcheck or `stack exec` expects.
func (r *Runtime) Exec(ctx context.Context, id string, p monitor.ExecProcess) (int, error) {
	st, err := r.rt.State(ctx, id)
	if err != nil {
		return -1, err
	}
	base, err := readProcess(st.Bundle)
	if err != nil {
		return -1, fmt.Errorf("exec in container %s: %w", id, err)
	}
	proc := *base
	proc.Terminal = false
	proc.Args = p.Args
	proc.Env = append(append([]string(nil), base.Env...), p.Env...)
	if p.Cwd != "" {
		proc.Cwd = p.Cwd
	}
	var stdio runtime.IO
	var wg sync.WaitGroup
	var closers []*os.File
	for _, o := range []struct {
		w   io.Writer
		dst **os.File
	}{{p.Stdout, &stdio.Stdout}, {p.Stderr, &stdio.Stderr}} {
		if o.w == nil {
			continue
		}
		pr, pw, err := os.Pipe()
		if err != nil {
			return -1, err
		}
		*o.dst = pw
		closers = append(closers, pw)
		wg.Add(1)
		go func(w io.Writer) {
			defer wg.Done()
			defer pr.Close()
			io.Copy(w, pr)
		}(o.w)
	}
	code, err := r.rt.Exec(ctx, id, &proc, stdio)
	for _, f := range closers {
		f.Close()
	}
	wg.Wait()
	return code, err
}

func readProcess(bundle string) (*specs.Process, error) {
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return nil, err
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("decode %s/config.json: %w", bundle, err)
	}
	if s.Process == nil {
		return nil, fmt.Errorf("%s/config.json has no process", bundle)
	}
	return s.Process, nil
}
