package runtimetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/stackrun/stack/runtime"
)

// OCIRuntime is the lifecycle of OCI runtime containers as the conformance suite drives it:
// the operations of `runc create|start|state|kill|delete`.
type OCIRuntime interface {
	Create(ctx context.Context, id, bundle string) error
	Start(ctx context.Context, id string) error
	State(ctx context.Context, id string) (*specs.State, error)
	Kill(ctx context.Context, id string, sig unix.Signal) error
	Delete(ctx context.Context, id string, force bool) error
}

// Conformance checks the lifecycle behaviour of an OCI runtime: the status after each
// operation, signals, errors for wrong transitions, and that delete removes the container.
// newBundle makes a fresh bundle running the given args (with a cgroupsPath the runtime
// under test may use).
func Conformance(t *testing.T, rt OCIRuntime, newBundle func(t *testing.T, id string, args ...string) string) {
	ctx := context.Background()
	status := func(t *testing.T, id string) specs.ContainerState {
		t.Helper()
		s, err := rt.State(ctx, id)
		if err != nil {
			t.Fatalf("state %s: %v", id, err)
		}
		return s.Status
	}
	waitStatus := func(t *testing.T, id string, want specs.ContainerState) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for status(t, id) != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s never became %s (is %s)", id, want, status(t, id))
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	mustDelete := func(t *testing.T, id string) {
		t.Cleanup(func() { _ = rt.Delete(ctx, id, true) })
	}

	t.Run("lifecycle", func(t *testing.T) {
		id := "conf-life"
		mustDelete(t, id)
		if err := rt.Create(ctx, id, newBundle(t, id, "sleep", "1000")); err != nil {
			t.Fatal(err)
		}
		s, err := rt.State(ctx, id)
		if err != nil || s.Status != specs.StateCreated || s.Pid <= 0 || s.ID != id {
			t.Fatalf("after create: %+v, %v; want created with a pid", s, err)
		}
		if err := rt.Start(ctx, id); err != nil {
			t.Fatal(err)
		}
		if got := status(t, id); got != specs.StateRunning {
			t.Errorf("after start: %s, want running", got)
		}
		if err := rt.Start(ctx, id); err == nil {
			t.Error("second start succeeded")
		}
		if err := rt.Delete(ctx, id, false); err == nil {
			t.Error("delete of a running container without force succeeded")
		}
		if err := rt.Kill(ctx, id, unix.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, id, specs.StateStopped)
		if err := rt.Delete(ctx, id, false); err != nil {
			t.Errorf("delete of a stopped container: %v", err)
		}
		if _, err := rt.State(ctx, id); err == nil {
			t.Error("state after delete succeeded")
		}
	})
	t.Run("exit", func(t *testing.T) {
		id := "conf-exit"
		mustDelete(t, id)
		if err := rt.Create(ctx, id, newBundle(t, id, "true")); err != nil {
			t.Fatal(err)
		}
		if err := rt.Start(ctx, id); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, id, specs.StateStopped)
		if err := rt.Kill(ctx, id, unix.SIGTERM); err == nil {
			t.Error("kill of a stopped container succeeded")
		}
	})
	t.Run("delete created", func(t *testing.T) {
		id := "conf-created"
		mustDelete(t, id)
		if err := rt.Create(ctx, id, newBundle(t, id, "sleep", "1000")); err != nil {
			t.Fatal(err)
		}
		if err := rt.Create(ctx, id, newBundle(t, id, "sleep", "1000")); err == nil {
			t.Error("second create with the same id succeeded")
		}
		if err := rt.Delete(ctx, id, true); err != nil {
			t.Fatal(err)
		}
		if _, err := rt.State(ctx, id); err == nil {
			t.Error("state after delete succeeded")
		}
	})
	t.Run("bad bundle", func(t *testing.T) {
		id := "conf-bad"
		mustDelete(t, id)
		if err := rt.Create(ctx, id, t.TempDir()); err == nil {
			t.Error("create from a bundle without config.json succeeded")
		}
		if _, err := rt.State(ctx, id); err == nil {
			t.Error("a failed create left a container")
		}
	})
}

// InProcess adapts stack's runtime to OCIRuntime. Containers it creates are reaped in the
// background, as a monitor would.
func InProcess(r *runtime.Runtime) OCIRuntime { return inProcess{r} }

type inProcess struct{ r *runtime.Runtime }

func (p inProcess) Create(ctx context.Context, id, bundle string) error {
	c, err := p.r.Create(ctx, id, bundle, runtime.IO{})
	if err == nil {
		go func() { _, _ = c.Wait() }()
	}
	return err
}
func (p inProcess) Start(ctx context.Context, id string) error { return p.r.Start(ctx, id) }
func (p inProcess) State(ctx context.Context, id string) (*specs.State, error) {
	s, err := p.r.State(ctx, id)
	if err != nil {
		return nil, err
	}
	return &s.State, nil
}
func (p inProcess) Kill(ctx context.Context, id string, sig unix.Signal) error {
	return p.r.Kill(ctx, id, sig)
}
func (p inProcess) Delete(ctx context.Context, id string, force bool) error {
	return p.r.Delete(ctx, id, force)
}

// CLI adapts an OCI runtime binary with runc's command line (runc, crun, stack runtime) to
// OCIRuntime. args come before the subcommand (e.g. "runtime" for stack); --root is added.
func CLI(path, root string, args ...string) OCIRuntime {
	return cli{path: path, root: root, args: args}
}

type cli struct {
	path, root string
	args       []string
}

func (c cli) run(ctx context.Context, out *bytes.Buffer, args ...string) error {
	full := append(append(append([]string(nil), c.args...), "--root", c.root), args...)
	cmd := exec.CommandContext(ctx, c.path, full...)
	// stderr goes to a file, not a pipe: `create` hands its stdio to the container, and a
	// pipe would keep Run waiting until the container exits.
	errFile, err := os.CreateTemp("", "stk-oci-stderr-*")
	if err != nil {
		return err
	}
	defer os.Remove(errFile.Name())
	defer errFile.Close()
	cmd.Stderr = errFile
	if out != nil {
		cmd.Stdout = out
	}
	if err := cmd.Run(); err != nil {
		msg, _ := os.ReadFile(errFile.Name())
		return fmt.Errorf("%s %v: %w: %s", c.path, full, err, bytes.TrimSpace(msg))
	}
	return nil
}

func (c cli) Create(ctx context.Context, id, bundle string) error {
	// No stdout buffer: the container would inherit the pipe and keep it open.
	return c.run(ctx, nil, "create", "--bundle", bundle, id)
}
func (c cli) Start(ctx context.Context, id string) error { return c.run(ctx, nil, "start", id) }
func (c cli) State(ctx context.Context, id string) (*specs.State, error) {
	var out bytes.Buffer
	if err := c.run(ctx, &out, "state", id); err != nil {
		return nil, err
	}
	var s specs.State
	if err := json.Unmarshal(out.Bytes(), &s); err != nil {
		return nil, errors.Join(errors.New("decode state"), err)
	}
	return &s, nil
}
func (c cli) Kill(ctx context.Context, id string, sig unix.Signal) error {
	return c.run(ctx, nil, "kill", id, fmt.Sprint(int(sig)))
}
func (c cli) Delete(ctx context.Context, id string, force bool) error {
	if force {
		return c.run(ctx, nil, "delete", "--force", id)
	}
	return c.run(ctx, nil, "delete", id)
}
