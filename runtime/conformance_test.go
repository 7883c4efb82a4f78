package runtime_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stackrun/stack/internal/testutil"
	"github.com/stackrun/stack/runtime"
	"github.com/stackrun/stack/runtime/cgroups"
	"github.com/stackrun/stack/runtime/runtimetest"
)

// conformanceBundles returns a bundle maker for the conformance suite: busybox bundles whose
// cgroupsPath lies below a test cgroup removed at the end (both runc and stack read a
// relative cgroupsPath as below their own cgroup).
func conformanceBundles(t *testing.T) func(t *testing.T, id string, args ...string) string {
	parent := testutil.UniqueName()
	drv, err := cgroups.New("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := drv.Remove(parent); err != nil {
			t.Errorf("remove cgroup %s: %v", parent, err)
		}
		if err := runtimetest.RemoveCgroupTree(parent); err != nil {
			t.Errorf("remove cgroup %s: %v", parent, err)
		}
	})
	rootfs := t.TempDir()
	runtimetest.BusyboxRootfs(t, rootfs)
	return func(t *testing.T, id string, args ...string) string {
		b := &runtimetest.Bundle{Dir: t.TempDir(), Spec: runtimetest.Spec(args...)}
		b.Spec.Root.Path = rootfs
		b.Spec.Linux.CgroupsPath = filepath.Join(parent, id)
		return b.Write(t)
	}
}

func TestConformanceStack(t *testing.T) {
	testutil.RequireRoot(t)
	bundles := conformanceBundles(t)
	runtimetest.Conformance(t, runtimetest.InProcess(runtime.New(runtime.Options{Root: t.TempDir()})), bundles)
}

func TestConformanceRunc(t *testing.T) {
	testutil.RequireRoot(t)
	path := testutil.RequireBinary(t, "runc")
	bundles := conformanceBundles(t)
	runtimetest.Conformance(t, runtimetest.CLI(path, t.TempDir()), bundles)
}

// buildStack builds the stack binary from this tree (once per test).
func buildStack(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the stack binary")
	}
	bin := filepath.Join(t.TempDir(), "stack")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/stackrun/stack/cmd/stack").CombinedOutput(); err != nil {
		t.Fatalf("build stack: %v\n%s", err, out)
	}
	return bin
}

// TestConformanceStackCLI drives `stack runtime` built from this tree, as a separate
// process per operation (as users and `--runtime` adapters do).
func TestConformanceStackCLI(t *testing.T) {
	testutil.RequireRoot(t)
	bin := buildStack(t)
	bundles := conformanceBundles(t)
	runtimetest.Conformance(t, runtimetest.CLI(bin, t.TempDir(), "runtime"), bundles)
}

// TestConformanceStackRuntime drives cmd/stack-runtime, the runtime's own lean binary, with
// stack-shim next to it as make build installs them (inits and exec helpers run from it).
func TestConformanceStackRuntime(t *testing.T) {
	testutil.RequireRoot(t)
	if testing.Short() {
		t.Skip("builds the stack-runtime binary")
	}
	dir := t.TempDir()
	for _, b := range []string{"stack-runtime", "stack-shim"} {
		if out, err := exec.Command("go", "build", "-o", filepath.Join(dir, b), "github.com/stackrun/stack/cmd/"+b).CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", b, err, out)
		}
	}
	bundles := conformanceBundles(t)
	runtimetest.Conformance(t, runtimetest.CLI(filepath.Join(dir, "stack-runtime"), t.TempDir()), bundles)
}

// TestStackCLI covers the commands the conformance suite does not: run (exit code), exec
// (output and exit code), list, ps, stats.
func TestStackCLI(t *testing.T) {
	testutil.RequireRoot(t)
	bin := buildStack(t)
	bundles := conformanceBundles(t)
	root := t.TempDir()
	stack := func(args ...string) (string, int) {
		t.Helper()
		// Output goes to a file, not a pipe: `run -d` hands its stdio to the container, and
		// a pipe would stay open as long as the container runs.
		f, err := os.CreateTemp(t.TempDir(), "out")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		cmd := exec.Command(bin, append([]string{"runtime", "--root", root}, args...)...)
		cmd.Stdout = f
		err = cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("stack %v: %v", args, err)
		}
		out, _ := os.ReadFile(f.Name())
		return string(out), cmd.ProcessState.ExitCode()
	}
	t.Cleanup(func() { stack("delete", "--force", "cli-bg") })

	if out, code := stack("run", "--bundle", bundles(t, "cli-run", "sh", "-c", "echo hi; exit 7"), "cli-run"); out != "hi\n" || code != 7 {
		t.Errorf("run: %q, exit %d; want hi, 7", out, code)
	}
	if out, _ := stack("list", "-q"); out != "" {
		t.Errorf("run left a container: %q", out)
	}
	if _, code := stack("run", "-d", "--bundle", bundles(t, "cli-bg", "sleep", "1000"), "cli-bg"); code != 0 {
		t.Fatalf("run -d: exit %d", code)
	}
	if out, code := stack("exec", "cli-bg", "sh", "-c", "hostname; exit 3"); out != "stk-test\n" || code != 3 {
		t.Errorf("exec: %q, exit %d; want stk-test, 3", out, code)
	}
	if out, code := stack("exec", "--user", "1000:1000", "--cwd", "/tmp", "-e", "X=y", "cli-bg", "sh", "-c", "echo $(id -u) $PWD $X"); out != "1000 /tmp y\n" || code != 0 {
		t.Errorf("exec with user/cwd/env: %q, exit %d", out, code)
	}
	if out, _ := stack("list"); !strings.Contains(out, "cli-bg") || !strings.Contains(out, "running") {
		t.Errorf("list: %q", out)
	}
	if out, _ := stack("ps", "--format", "json", "cli-bg"); !strings.HasPrefix(out, "[") || strings.Count(out, ",") != 0 {
		t.Errorf("ps: %q, want the one pid of sleep", out)
	}
	if out, code := stack("stats", "cli-bg"); code != 0 || !strings.Contains(out, `"Pids": 1`) {
		t.Errorf("stats: %q, exit %d", out, code)
	}
	if _, code := stack("delete", "cli-bg"); code == 0 {
		t.Error("delete of a running container without --force succeeded")
	}
	if _, code := stack("delete", "--force", "cli-bg"); code != 0 {
		t.Errorf("delete --force: exit %d", code)
	}
}
