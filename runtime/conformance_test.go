package runtime_test

import (
	"os/exec"
	"path/filepath"
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

// TestConformanceStackCLI drives `stack runtime` built from this tree, as a separate
// process per operation (as users and `--runtime` adapters do).
func TestConformanceStackCLI(t *testing.T) {
	testutil.RequireRoot(t)
	if testing.Short() {
		t.Skip("builds the stack binary")
	}
	bin := filepath.Join(t.TempDir(), "stack")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/stackrun/stack/cmd/stack").CombinedOutput(); err != nil {
		t.Fatalf("build stack: %v\n%s", err, out)
	}
	bundles := conformanceBundles(t)
	runtimetest.Conformance(t, runtimetest.CLI(bin, t.TempDir(), "runtime"), bundles)
}
