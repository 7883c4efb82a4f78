package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stackrun/stack/runtime/monitor"
	"github.com/stackrun/stack/state"
)

// execOut runs `stack exec SERVICE CMD...` and returns its output with surrounding space trimmed.
func (e *env) execOut(f []string, service string, cmd ...string) string {
	e.t.Helper()
	return strings.TrimSpace(e.must(append(append(f, "exec", service), cmd...)...))
}

// readData is the content of /data/kept in writer, waiting (with a deadline) for writer to run.
func readData(t *testing.T, e *env, f []string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var out string
	var err error
	for time.Now().Before(deadline) {
		out, err = e.run(append(f, "exec", "writer", "cat", "/data/kept")...)
		if err == nil {
			return strings.TrimSpace(out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("exec writer cat /data/kept: %v\n%s", err, out)
	return ""
}

// monitorPid reads the monitor record of container id under the state root.
func (e *env) monitorPid(id string) int {
	e.t.Helper()
	var st monitor.Status
	if err := state.ReadJSON(filepath.Join(e.root, "containers", id, "monitor", "status.json"), &st); err != nil {
		e.t.Fatalf("monitor record of %s: %v", id, err)
	}
	if st.MonitorPid <= 0 {
		e.t.Fatalf("monitor record of %s has no pid: %+v", id, st)
	}
	return st.MonitorPid
}

// TestNamedVolumeKeepsData is issue 6 acceptance 1: data written to a named volume is there
// after a recreate (config change), restart, down + up, and SIGKILL of the monitor; down -v
// removes it.
func TestNamedVolumeKeepsData(t *testing.T) {
	e := newEnv(t)
	e.exampleImage()
	f := []string{"-f", "e2e/testdata/volumes/stack.yaml", "-p", e.project}
	e.must(append(f, "up", "-d")...)
	e.must(append(f, "exec", "writer", "sh", "-c", "echo kept-data > /data/kept")...)
	id := e.ps(f...).ids()["writer"]

	// Recreate: a changed variable gives writer a new container.
	e.extra = []string{"TAG=b"}
	e.must(append(f, "up", "-d")...)
	if got := e.ps(f...).ids()["writer"]; got == id || got == "" {
		t.Fatalf("TAG=b did not recreate writer: %s -> %s", id, got)
	}
	if got := readData(t, e, f); got != "kept-data" {
		t.Fatalf("after recreate: %q", got)
	}

	e.must(append(f, "restart", "-t", "1")...)
	if got := readData(t, e, f); got != "kept-data" {
		t.Fatalf("after restart: %q", got)
	}

	e.must(append(f, "down", "-t", "1")...)
	e.must(append(f, "up", "-d")...)
	if got := readData(t, e, f); got != "kept-data" {
		t.Fatalf("after down and up: %q", got)
	}

	// SIGKILL of the monitor: the next up converges and the data is still there.
	id = e.ps(f...).ids()["writer"]
	pid := e.monitorPid(id)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill monitor %d: %v", pid, err)
	}
	waitGone(t, pid)
	e.must(append(f, "up", "-d")...)
	if got := readData(t, e, f); got != "kept-data" {
		t.Fatalf("after SIGKILL of the monitor and up: %q", got)
	}

	// down -v: the volume goes; a new up starts empty.
	e.must(append(f, "down", "-v", "-t", "1")...)
	if out := e.must("volume", "ls"); strings.Contains(out, e.project) {
		t.Errorf("volume left after down -v:\n%s", out)
	}
	e.must(append(f, "up", "-d")...)
	out, err := e.run(append(f, "exec", "writer", "ls", "-A", "/data")...)
	if err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("after down -v and up, /data holds %q (err %v)", out, err)
	}
}

// waitGone waits until process pid is dead: gone, or a zombie its parent has yet to reap.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
		if err != nil {
			return
		}
		if i := strings.LastIndexByte(string(b), ')'); i > 0 && strings.HasPrefix(string(b[i:]), ") Z") {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("process %d still there", pid)
}

// TestVolumeCopyUp is issue 6 acceptance 2: an empty named volume mounted over a directory
// with content in the image gets that content with the image's owner and mode; a second
// container mounting the volume later does not copy again.
func TestVolumeCopyUp(t *testing.T) {
	e := newEnv(t)
	e.exampleImage()
	f := []string{"-f", "e2e/testdata/copyup/stack.yaml", "-p", e.project}
	e.must(append(f, "up", "-d", "--build", "first")...)

	stat := e.execOut(f, "first", "busybox", "stat", "-c", "%u:%g %a %s", "/seed/seed.txt")
	if stat != "1234:5678 640 2" {
		t.Errorf("copied-up seed.txt: %q, want 1234:5678 640 2", stat)
	}
	if got := e.execOut(f, "first", "cat", "/seed/seed.txt", "/seed/other.txt"); got != "x\ny" {
		t.Errorf("copied-up content: %q", got)
	}
	// Change the volume from the first container, then start the second one on it.
	e.must(append(f, "exec", "first", "sh", "-c", "echo changed > /seed/seed.txt && busybox rm /seed/other.txt")...)
	e.must(append(f, "up", "-d", "second")...)
	if got := e.execOut(f, "second", "ls", "-A", "/seed"); got != "seed.txt" {
		t.Errorf("second container sees /seed = %q: copied again", got)
	}
	if got := e.execOut(f, "second", "cat", "/seed/seed.txt"); got != "changed" {
		t.Errorf("second container reads seed.txt = %q: copied again", got)
	}
}

// TestVolumeNamesPerStack is issue 6 acceptance 5: two stacks whose files name a volume data
// get two volumes; what one writes the other does not see.
func TestVolumeNamesPerStack(t *testing.T) {
	e := newEnv(t)
	e.exampleImage()
	other := e.project + "-x"
	t.Cleanup(func() {
		if out, err := e.run("-p", other, "down", "-v", "-t", "1"); err != nil {
			t.Errorf("cleanup down %s: %v\n%s", other, err, out)
		}
	})
	f1 := []string{"-f", "e2e/testdata/volumes/stack.yaml", "-p", e.project}
	f2 := []string{"-f", "e2e/testdata/volumes/stack.yaml", "-p", other}
	e.must(append(f1, "up", "-d")...)
	e.must(append(f2, "up", "-d")...)
	e.must(append(f1, "exec", "writer", "sh", "-c", "echo one > /data/kept")...)
	e.must(append(f2, "exec", "writer", "sh", "-c", "echo two > /data/kept")...)
	if got := readData(t, e, f1); got != "one" {
		t.Errorf("stack 1 reads %q", got)
	}
	if got := readData(t, e, f2); got != "two" {
		t.Errorf("stack 2 reads %q", got)
	}
	out := e.must("volume", "ls")
	for _, p := range []string{e.project, other} {
		if !strings.Contains(out, p+"_data") {
			t.Errorf("volume %s_data not listed:\n%s", p, out)
		}
	}
}
