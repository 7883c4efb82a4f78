package runtimetest

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/stackrun/stack/runtime"
)

// Result is what a container printed and its exit code.
type Result struct {
	Stdout, Stderr string
	Code           int
}

// Runner runs a bundle to completion under one OCI runtime and removes the container.
type Runner interface {
	Name() string
	Run(t testing.TB, id, bundle string) Result
}

// Stack runs bundles with stack's runtime r, in process.
func Stack(r *runtime.Runtime) Runner { return stackRunner{r} }

type stackRunner struct{ r *runtime.Runtime }

func (stackRunner) Name() string { return "stack" }

func (s stackRunner) Run(t testing.TB, id, bundle string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.r.Create(ctx, id, bundle, runtime.IO{Stdout: outW, Stderr: errW})
	outW.Close()
	errW.Close()
	if err != nil {
		t.Fatalf("stack: create %s: %v", id, err)
	}
	defer func() {
		if err := s.r.Delete(context.Background(), id, true); err != nil {
			t.Errorf("stack: delete %s: %v", id, err)
		}
	}()
	var stdout, stderr bytes.Buffer
	done := make(chan struct{}, 2)
	go func() { stdout.ReadFrom(outR); done <- struct{}{} }()
	go func() { stderr.ReadFrom(errR); done <- struct{}{} }()
	if err := s.r.Start(ctx, id); err != nil {
		t.Fatalf("stack: start %s: %v", id, err)
	}
	es, err := c.Wait()
	if err != nil {
		t.Fatalf("stack: wait %s: %v", id, err)
	}
	<-done
	<-done
	return Result{Stdout: stdout.String(), Stderr: stderr.String(), Code: es.Code}
}

// Binary runs bundles with an external OCI runtime (runc, crun) as `NAME --root ROOT run`,
// skipping the test when it is not installed.
func Binary(t testing.TB, name string) Runner {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("needs %s on PATH (apt-get install %s)", name, name)
	}
	return binaryRunner{name: name, path: path, root: t.TempDir()}
}

type binaryRunner struct{ name, path, root string }

func (b binaryRunner) Name() string { return b.name }

func (b binaryRunner) Run(t testing.TB, id, bundle string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.path, "--root", b.root, "run", "--bundle", bundle, id)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("%s run %s: %v", b.name, id, err)
	}
	// `run` deletes the container when it exits; make sure of it even on failure.
	_ = exec.Command(b.path, "--root", b.root, "delete", "--force", id).Run()
	return Result{Stdout: stdout.String(), Stderr: stderr.String(), Code: code}
}
