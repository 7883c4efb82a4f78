package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestUpBuild: a service with build: is built from its Dockerfile by up --build, tagged
// <project>-<service>, and runs; a second up --build with nothing changed recreates nothing;
// a changed file of the context rebuilds and recreates the service.
func TestUpBuild(t *testing.T) {
	e := newEnv(t)
	e.exampleImage()
	dir := t.TempDir()
	for _, f := range []string{"stack.yaml", "ctx/Dockerfile", "ctx/greeting.txt"} {
		b, err := os.ReadFile(filepath.Join("testdata", "build", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f := []string{"-f", filepath.Join(dir, "stack.yaml"), "-p", e.project}
	e.must(append(f, "up", "-d", "--build")...)
	if out := e.must("image", "ls"); !strings.Contains(out, e.project+"-app") {
		t.Errorf("image %s-app not tagged:\n%s", e.project, out)
	}
	waitLogs(t, e, f, "hello from the build context")
	if out := e.must(append(f, "logs")...); !strings.Contains(out, "built by stack") {
		t.Errorf("logs: %s", out)
	}
	id := e.ps(f...).ids()["app"]
	e.must(append(f, "up", "-d", "--build")...)
	if got := e.ps(f...).ids()["app"]; got != id {
		t.Errorf("unchanged build recreated the container: %s -> %s", id, got)
	}
	if err := os.WriteFile(filepath.Join(dir, "ctx", "greeting.txt"), []byte("changed greeting\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.must(append(f, "up", "-d", "--build")...)
	if got := e.ps(f...).ids()["app"]; got == id {
		t.Errorf("a changed build context did not recreate the container")
	}
	waitLogs(t, e, f, "changed greeting")
}

func waitLogs(t *testing.T, e *env, f []string, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var out string
	for time.Now().Before(deadline) {
		out, _ = e.run(append(f, "logs")...)
		if strings.Contains(out, want) {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("logs never showed %q:\n%s", want, out)
}
