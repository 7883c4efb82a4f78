package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stackrun/stack/engine/local"
)

const runStack = `
services:
  db:
    image: stack-example:latest
    command: ["sleep", "3600"]
  app:
    image: stack-example:latest
    command: ["sleep", "3600"]
    environment:
      FROM_FILE: file
    ports:
      - "127.0.0.1::80"
    volumes:
      - data:/data
    depends_on:
      - db
volumes:
  data:
`

// TestRunAndRm: run starts the dependencies, runs a one-off with the service's environment and
// volumes plus -e, passes its output and exit code through, and with --rm leaves nothing; a
// detached one-off is listed and inspectable but never an orphan or a replica in plan; rm
// skips running containers unless --stop.
func TestRunAndRm(t *testing.T) {
	e := newEnv(t)
	e.exampleImage()
	f := e.stackFile(runStack)

	out, err := e.run(append(f, "run", "--rm", "-e", "EXTRA=cli", "app", "sh", "-c", "echo $FROM_FILE $EXTRA; echo kept > /data/mark; echo oops >&2; exit 7")...)
	if code := exitCode(err); code != 7 || !strings.Contains(out, "file cli\n") || !strings.Contains(out, "oops") {
		t.Fatalf("run --rm: exit %d\n%s", code, out)
	}
	ps := e.ps(f...)
	if len(ps.Containers) != 1 || ps.Containers[0].Service != "db" || ps.Containers[0].State != "running" {
		t.Fatalf("after run --rm: want only the dependency db running: %+v", ps)
	}
	if ents, _ := os.ReadDir(filepath.Join(e.root, "containers")); len(ents) != 1 {
		t.Errorf("run --rm left %d container directories", len(ents))
	}
	// --entrypoint, --no-deps, and the volume written by the first run.
	out = e.must(append(f, "run", "--rm", "--no-deps", "--entrypoint", "sh -c", "app", "cat /data/mark; pwd")...)
	if out != "kept\n/\n" {
		t.Errorf("run --entrypoint: %q", out)
	}

	e.must(append(f, "up", "-d")...)
	name := strings.TrimSpace(e.must(append(f, "run", "-d", "--name", e.project+"-maint", "app", "sleep", "600")...))
	if name != e.project+"-maint" {
		t.Fatalf("run -d printed %q", name)
	}
	out, err = e.run(append(f, "plan")...)
	if exitCode(err) != 0 || strings.Contains(out, "orphan") || strings.Contains(out, "maint") {
		t.Errorf("plan with a one-off (exit %d):\n%s", exitCode(err), out)
	}
	var ci []local.ContainerInfo
	e.decode(&ci, append(f, "inspect", name)...)
	if len(ci) != 1 || !ci[0].OneOff || !ci[0].State.Running || len(ci[0].Ports) != 0 || ci[0].Config.Command[0] != "sleep" {
		t.Errorf("inspect one-off: %+v", ci)
	}
	if n := len(e.ps(f...).Containers); n != 3 {
		t.Errorf("ps: %d containers, want db, app and the one-off", n)
	}

	// rm without --stop removes nothing that runs; with it, app's replica and the one-off go.
	out = e.must(append(f, "rm", "app")...)
	if !strings.Contains(out, "is running: not removed") || len(e.ps(f...).Containers) != 3 {
		t.Errorf("rm of running containers:\n%s", out)
	}
	out = e.must(append(f, "rm", "-s", "-t", "1", "app")...)
	if strings.Count(out, "removed ") != 2 {
		t.Errorf("rm -s:\n%s", out)
	}
	ps = e.ps(f...)
	if len(ps.Containers) != 1 || ps.Containers[0].Service != "db" {
		t.Errorf("after rm -s: %+v", ps)
	}
	out, err = e.run(append(f, "plan")...)
	if exitCode(err) != 2 || !strings.Contains(out, "create container:app:1") || strings.Contains(out, "orphan") {
		t.Errorf("plan after rm (exit %d):\n%s", exitCode(err), out)
	}
	// A stopped container is removed by rm alone.
	e.must(append(f, "stop", "-t", "1", "db")...)
	if out := e.must(append(f, "rm", "db")...); !strings.Contains(out, "removed "+e.project+"-db-1") {
		t.Errorf("rm stopped db:\n%s", out)
	}

	// down takes a detached one-off with it, with its network.
	e.must(append(f, "run", "-d", "--no-deps", "app", "sleep", "600")...)
	e.must(append(f, "down", "-t", "1")...)
	if n := len(e.ps(f...).Containers); n != 0 {
		t.Errorf("down left %d containers", n)
	}
	if ents, _ := os.ReadDir(filepath.Join(e.root, "containers")); len(ents) != 0 {
		t.Errorf("down left %d container directories", len(ents))
	}
}
