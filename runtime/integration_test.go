package runtime_test

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/stackrun/stack/internal/testutil"
	"github.com/stackrun/stack/runtime"
	"github.com/stackrun/stack/runtime/cgroups"
	"github.com/stackrun/stack/runtime/runtimetest"
)

// result is what a container printed and how it ended.
type result struct {
	Stdout, Stderr string
	Exit           runtime.ExitStatus
}

// newRuntime returns a runtime with a temporary state root whose containers are all deleted
// when the test ends.
func newRuntimeB(b *testing.B) *runtime.Runtime { return newRuntimeAt(b, b.TempDir()) }

func runtimeIO() runtime.IO { return runtime.IO{} }

func newRuntime(t *testing.T) *runtime.Runtime {
	t.Helper()
	return newRuntimeAt(t, t.TempDir())
}

// newRuntimeAt is newRuntime with a given state root. Container cgroups go below a parent
// cgroup named for the test, removed at the end.
func newRuntimeAt(t testing.TB, root string) *runtime.Runtime {
	t.Helper()
	return newRuntimeWith(t, runtime.Options{Root: root})
}

// newRuntimeWith is newRuntimeAt with more options; CgroupParent is set here.
func newRuntimeWith(t testing.TB, o runtime.Options) *runtime.Runtime {
	t.Helper()
	parent := testutil.UniqueName()
	drv, err := cgroups.New("")
	if err != nil {
		t.Fatal(err)
	}
	if err := drv.Apply(parent, nil); err != nil {
		t.Fatalf("create parent cgroup: %v", err)
	}
	t.Logf("cgroup parent %s", parent)
	o.CgroupParent = parent
	r := runtime.New(o)
	t.Cleanup(func() {
		if err := drv.Remove(parent); err != nil {
			t.Errorf("cleanup: remove cgroup %s: %v", parent, err)
		}
	})
	t.Cleanup(func() {
		list, err := r.List(context.Background())
		if err != nil {
			t.Errorf("list containers: %v", err)
		}
		for _, s := range list {
			if err := r.Delete(context.Background(), s.ID, true); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	return r
}

// run creates, starts and waits for the bundle's container, returning its output.
func run(t *testing.T, r *runtime.Runtime, id, bundle string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	outR, outW, _ := os.Pipe()
	errR, errW, _ := os.Pipe()
	c, err := r.Create(ctx, id, bundle, runtime.IO{Stdout: outW, Stderr: errW})
	outW.Close()
	errW.Close()
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	var stdout, stderr bytes.Buffer
	done := make(chan struct{}, 2)
	go func() { stdout.ReadFrom(outR); done <- struct{}{} }()
	go func() { stderr.ReadFrom(errR); done <- struct{}{} }()
	if err := r.Start(ctx, id); err != nil {
		t.Fatalf("start: %v", err)
	}
	es, err := c.Wait()
	if err != nil {
		t.Fatalf("wait: %v", err)
	}
	<-done
	<-done
	return result{Stdout: stdout.String(), Stderr: stderr.String(), Exit: es}
}

func TestRunHello(t *testing.T) {
	testutil.RequireRoot(t)
	r := newRuntime(t)
	b := runtimetest.NewBundle(t, "sh", "-c", "echo hello; hostname; echo $$; exit 3")
	res := run(t, r, "hello", b.Write(t))
	if res.Exit.Code != 3 {
		t.Errorf("exit = %v, want 3; stderr: %s", res.Exit, res.Stderr)
	}
	if want := "hello\nstk-test\n1\n"; res.Stdout != want {
		t.Errorf("stdout = %q, want %q (stderr %q)", res.Stdout, want, res.Stderr)
	}
	s, err := r.State(context.Background(), "hello")
	if err != nil {
		t.Fatal(err)
	}
	if s.Status != specs.StateStopped || s.Exit == nil || s.Exit.Code != 3 {
		t.Errorf("state = %+v", s)
	}
	_ = strings.TrimSpace
}
