package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const savedPlanStack = `
services:
  web:
    image: busybox:latest
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    environment:
      GREETING: %s
`

// writeSaved writes the stack file with greeting into path.
func writeSavedStack(t *testing.T, path, greeting string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(strings.Replace(savedPlanStack, "%s", greeting, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// planOut runs plan -out and returns its output; exit 2 (changes pending) is expected.
func (e *env) planOut(f []string, file string) string {
	e.t.Helper()
	out, err := e.run(append(f, "plan", "-out", file)...)
	if code := exitCode(err); code != 0 && code != 2 {
		e.t.Fatalf("plan -out: %v\n%s", err, out)
	}
	if !strings.Contains(out, "Saved the plan to "+file) {
		e.t.Fatalf("plan -out does not say it saved the plan:\n%s", out)
	}
	return out
}

// TestSavedPlan: plan -out then apply does what plan printed and ps shows it; a saved plan
// whose stack file changed afterwards is refused and changes nothing; up FILE applies a fresh
// one.
func TestSavedPlan(t *testing.T) {
	e := newEnv(t)
	e.busyboxImage()
	dir := t.TempDir()
	stackPath := filepath.Join(dir, "stack.yaml")
	writeSavedStack(t, stackPath, "hello")
	f := []string{"-f", stackPath, "-p", e.project}
	plan := filepath.Join(dir, "first.plan")

	printed := e.planOut(f, plan)
	if !strings.Contains(printed, "+ create container:web:1 (new)") {
		t.Fatalf("plan of a new stack:\n%s", printed)
	}
	// apply needs no -f: the saved plan names its stack file and project.
	out := e.must("apply", plan)
	if !strings.Contains(out, strings.TrimSuffix(strings.Split(printed, "Saved the plan")[0], "\n")) {
		t.Errorf("apply printed another plan than plan did:\n--- plan\n%s\n--- apply\n%s", printed, out)
	}
	ps := e.ps(f...)
	if len(ps.Containers) != 1 || ps.Containers[0].Service != "web" || ps.Containers[0].State != "running" {
		t.Fatalf("after apply, ps: %+v", ps.Containers)
	}
	id := ps.Containers[0].ID

	// Applied once, the plan is spent: the host is no longer what it was made from.
	out, err := e.run("apply", plan)
	if exitCode(err) != 1 || !strings.Contains(out, "the host changed since the plan was made") {
		t.Errorf("second apply of the same plan: %v\n%s", err, out)
	}

	// A plan, then a change to the stack file: refused, nothing changed.
	second := filepath.Join(dir, "second.plan")
	writeSavedStack(t, stackPath, "bonjour")
	if p := e.planOut(f, second); !strings.Contains(p, "~ recreate container:web:1 (environment changed (environment.GREETING))") {
		t.Fatalf("plan after changing GREETING:\n%s", p)
	}
	writeSavedStack(t, stackPath, "hola")
	out, err = e.run("apply", second)
	if exitCode(err) != 1 || !strings.Contains(out, "the stack changed since the plan was made (service web changed); plan again") {
		t.Errorf("apply after the stack file changed: %v\n%s", err, out)
	}
	if got := e.ps(f...).ids()["web"]; got != id {
		t.Errorf("a refused apply replaced web: %s -> %s", id, got)
	}

	// A damaged file is refused with the reason.
	bad := filepath.Join(dir, "bad.plan")
	data, err := os.ReadFile(second)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, data[:len(data)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := e.run("apply", bad); exitCode(err) != 1 || !strings.Contains(out, "not a saved plan (not valid JSON") {
		t.Errorf("apply of a truncated plan: %v\n%s", err, out)
	}

	// up FILE: a fresh plan of the change applies.
	third := filepath.Join(dir, "third.plan")
	e.planOut(f, third)
	e.must("up", "-d", third)
	after := e.ps(f...)
	if len(after.Containers) != 1 || after.Containers[0].ID == id || after.Containers[0].State != "running" {
		t.Errorf("after up FILE of a recreate: %+v (old id %s)", after.Containers, id)
	}
	if out := e.must(append(f, "exec", "web", "sh", "-c", "echo $GREETING")...); strings.TrimSpace(out) != "hola" {
		t.Errorf("GREETING in the new container: %q", out)
	}
}

// TestDownRmi: down --rmi all removes the images of the project's services after its
// containers, but keeps one that another project's container runs, with a warning naming it;
// --rmi local removes only the image stack built for a service without image:.
func TestDownRmi(t *testing.T) {
	e := newEnv(t)
	e.busyboxImage()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "app"), 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"app/Dockerfile": "FROM busybox:latest\nCMD [\"sleep\", \"3600\"]\n",
		"stack.yaml": `
services:
  app:
    build: ./app
    stop_grace_period: 1s
  tool:
    image: busybox:latest
    command: ["sleep", "3600"]
    stop_grace_period: 1s
`,
		"other.yaml": `
services:
  front:
    image: busybox:latest
    command: ["sleep", "3600"]
    stop_grace_period: 1s
`,
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f := []string{"-f", filepath.Join(dir, "stack.yaml"), "-p", e.project}
	other := []string{"-f", filepath.Join(dir, "other.yaml"), "-p", e.project + "-o"}
	t.Cleanup(func() { e.run("-p", e.project+"-o", "down", "-t", "1") })
	built := e.project + "-app"
	images := func() string { return e.must("image", "ls") }

	// --rmi local: only the built image goes.
	e.must(append(f, "up", "-d")...)
	if out := images(); !strings.Contains(out, built) {
		t.Fatalf("image %s not built:\n%s", built, out)
	}
	e.must(append(f, "down", "--rmi", "local")...)
	if out := images(); strings.Contains(out, built) || !strings.Contains(out, "busybox") {
		t.Errorf("after down --rmi local, want %s gone and busybox kept:\n%s", built, out)
	}

	// --rmi all while another project runs busybox: the built image goes, busybox stays with a
	// warning.
	e.must(append(f, "up", "-d")...)
	e.must(append(other, "up", "-d")...)
	out, stderr, err := e.runSplit(append(f, "down", "--rmi", "all")...)
	if err != nil {
		t.Fatalf("down --rmi all: %v\n%s%s", err, out, stderr)
	}
	want := "warning: image busybox:latest kept: still used by " + e.project + "-o-front-1 (project " + e.project + "-o)"
	if !strings.Contains(stderr, want) {
		t.Errorf("down --rmi all: stderr lacks %q:\n%s", want, stderr)
	}
	if out := images(); strings.Contains(out, built) || !strings.Contains(out, "busybox") {
		t.Errorf("after down --rmi all with busybox in use elsewhere:\n%s", out)
	}
	if ps := e.ps(other...); len(ps.Containers) != 1 || ps.Containers[0].State != "running" {
		t.Errorf("the other project's container after down --rmi all: %+v", ps.Containers)
	}

	// Once nothing uses it, --rmi all removes busybox too.
	e.must(append(other, "down", "--rmi", "all")...)
	if out := images(); strings.Contains(out, "busybox") {
		t.Errorf("after the last down --rmi all, busybox is still there:\n%s", out)
	}
}
