package main

import (
	"errors"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stackrun/stack/internal/testutil"
)

func TestParseBuildArgs(t *testing.T) {
	t.Setenv("FROM_ENV", "env")
	got, err := parseBuildArgs([]string{"A=1", "B=", "C=x=y", "FROM_ENV", "UNSET_ARG_XYZ"})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"A": "1", "B": "", "C": "x=y", "FROM_ENV": "env"}; !maps.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if _, err := parseBuildArgs([]string{"=v"}); err == nil {
		t.Error("an arg without a name was accepted")
	}
}

func writeProject(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, c := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestBuildUsage(t *testing.T) {
	dir := writeProject(t, map[string]string{
		"stack.yaml": "services:\n  web:\n    build: ./web\n  db:\n    image: busybox\n",
	})
	f := filepath.Join(dir, "stack.yaml")
	var ue usageError
	for _, args := range [][]string{
		{"build", "nope"},
		{"build", "db"},
		{"build", "--progress", "fancy"},
	} {
		_, err := runStack(t, "", append([]string{"--root", t.TempDir(), "-f", f}, args...)...)
		if !errors.As(err, &ue) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
}

// stack build tags <project>-<service>, prints plain progress, and reports the second run cached.
// The Dockerfile has no RUN (that needs the runtime's re-exec, tested in package build).
func TestBuildCommand(t *testing.T) {
	testutil.RequireRoot(t)
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("needs busybox (apt-get install busybox-static)")
	}
	root := t.TempDir()
	rootfs := filepath.Join(t.TempDir(), "bb")
	os.MkdirAll(filepath.Join(rootfs, "bin"), 0o755)
	if out, err := exec.Command("cp", bb, filepath.Join(rootfs, "bin/busybox")).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	tarball := filepath.Join(t.TempDir(), "bb.tar")
	if out, err := exec.Command("tar", "-C", rootfs, "-cf", tarball, ".").CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if _, err := runStack(t, "", "--root", root, "image", "import", tarball, "busybox:latest"); err != nil {
		t.Fatal(err)
	}
	dir := writeProject(t, map[string]string{
		"stack.yaml":     "name: shop\nservices:\n  web:\n    build:\n      context: ./web\n      args:\n        V: file\n",
		"web/Dockerfile": "FROM busybox\nARG V\nCOPY hello.txt /\nLABEL v=$V\n",
		"web/hello.txt":  "hi\n",
	})
	f := filepath.Join(dir, "stack.yaml")
	run := func() string {
		out, err := runStack(t, "", "--root", root, "--run-root", t.TempDir(), "-f", f, "build", "--progress", "plain", "--build-arg", "V=cli")
		if err != nil {
			t.Fatalf("build: %v\n%s", err, out)
		}
		return out
	}
	out := run()
	for _, want := range []string{
		"[web stage-0 1/4] FROM busybox\n",
		"[web stage-0 3/4] COPY hello.txt /\n  DONE",
		"web\tshop-web:latest\tsha256:",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("first build output lacks %q:\n%s", want, out)
		}
	}
	out = run()
	for _, want := range []string{"[web stage-0 2/4] ARG V CACHED\n", "[web stage-0 3/4] COPY hello.txt / CACHED\n", "[web stage-0 4/4] LABEL v=$V CACHED\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("second build output lacks %q:\n%s", want, out)
		}
	}
	insp, err := runStack(t, "", "--root", root, "image", "inspect", "shop-web")
	if err != nil || !strings.Contains(insp, `"v": "cli"`) {
		t.Errorf("inspect: %v\n%s", err, insp)
	}
}
