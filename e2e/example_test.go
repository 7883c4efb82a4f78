package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
)

type psOut struct {
	Containers []struct {
		ID        string   `json:"id"`
		Service   string   `json:"service"`
		State     string   `json:"state"`
		Ports     []string `json:"ports"`
		Addresses []string `json:"addresses"`
	} `json:"containers"`
}

func (e *env) ps(args ...string) psOut {
	e.t.Helper()
	var p psOut
	out := e.must(append(args, "ps", "-a", "--format", "json")...)
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		e.t.Fatalf("ps json: %v\n%s", err, out)
	}
	return p
}

func (p psOut) ids() map[string]string {
	m := map[string]string{}
	for _, c := range p.Containers {
		m[c.Service] = c.ID
	}
	return m
}

// TestExampleStack is the quick start as a user lives it: up, the page counts visits through
// web -> api -> store, a second up changes nothing, one changed variable recreates one
// service, the count survives down and up, and down -v leaves nothing on the host.
func TestExampleStack(t *testing.T) {
	e := newEnv(t)
	e.exampleImage()
	port := freePort(t)
	e.extra = []string{fmt.Sprintf("WEB_PORT=%d", port)}
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	f := []string{"-f", "examples/stack.yaml", "-p", e.project}
	own := ownLinks{} // the interfaces this env's records name, sampled after every up

	e.must(append(f, "up", "-d", "--wait")...)
	own.sample(t, e)
	if page := get(t, url); !strings.Contains(page, "visits: 1") || !strings.Contains(page, "Hello from stack") {
		t.Fatalf("first visit: %s", page)
	}
	if page := get(t, url); !strings.Contains(page, "visits: 2") {
		t.Fatalf("second visit: %s", page)
	}
	ps := e.ps(f...)
	if len(ps.Containers) != 3 {
		t.Fatalf("ps: %+v", ps)
	}
	for _, c := range ps.Containers {
		if c.State != "running" || len(c.Addresses) != 1 {
			t.Errorf("ps: %s is %s with addresses %v", c.Service, c.State, c.Addresses)
		}
		if c.Service == "web" && (len(c.Ports) != 1 || !strings.Contains(c.Ports[0], fmt.Sprintf("127.0.0.1:%d->80/tcp", port))) {
			t.Errorf("ps: web ports %v", c.Ports)
		}
	}
	ids := ps.ids()

	// A second up with nothing changed does nothing; plan agrees (exit 0).
	if out := e.must(append(f, "up", "-d")...); !strings.Contains(out, "nothing to do") {
		t.Errorf("second up: %s", out)
	}
	if got := e.ps(f...).ids(); fmt.Sprint(got) != fmt.Sprint(ids) {
		t.Errorf("second up changed containers: %v -> %v", ids, got)
	}
	e.must(append(f, "plan")...)

	// One changed variable: plan says web is recreated (exit 2), up recreates only web.
	e.extra = append(e.extra, "EXAMPLE_TITLE=Changed title")
	out, err := e.run(append(f, "plan")...)
	if code := exitCode(err); code != 2 || !strings.Contains(out, "~ recreate container:web:1") || strings.Contains(out, "recreate container:api") {
		t.Fatalf("plan after change (exit %d):\n%s", code, out)
	}
	e.must(append(f, "up", "-d", "--wait")...)
	own.sample(t, e)
	after := e.ps(f...).ids()
	if after["web"] == ids["web"] || after["api"] != ids["api"] || after["store"] != ids["store"] {
		t.Errorf("recreated the wrong containers: %v -> %v", ids, after)
	}
	if page := get(t, url); !strings.Contains(page, "Changed title") || !strings.Contains(page, "visits: 3") {
		t.Fatalf("after recreate: %s", page)
	}

	// down keeps the volume: the count goes on after up.
	e.must(append(f, "down")...)
	e.must(append(f, "up", "-d", "--wait")...)
	own.sample(t, e)
	if page := get(t, url); !strings.Contains(page, "visits: 4") {
		t.Fatalf("after down and up: %s", page)
	}

	// down -v: nothing of the project is left.
	e.must(append(f, "down", "-v")...)
	if n := len(e.ps(f...).Containers); n != 0 {
		t.Errorf("%d containers after down", n)
	}
	if out := e.must("volume", "ls"); strings.Contains(out, e.project) {
		t.Errorf("volume left after down -v:\n%s", out)
	}
	if d := leaks(t, e, own); d != "" {
		t.Errorf("left on the host after down -v:\n%s", d)
	}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

// TestPortConflictStopsUpBeforeAnything: a process already listening on the published port
// makes up fail, naming the process, before any container, network or volume is made.
func TestPortConflictStopsUpBeforeAnything(t *testing.T) {
	e := newEnv(t)
	e.exampleImage()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	e.extra = []string{fmt.Sprintf("WEB_PORT=%d", port)}
	f := []string{"-f", "examples/stack.yaml", "-p", e.project}
	out, err := e.run(append(f, "up", "-d")...)
	want := fmt.Sprintf("port 127.0.0.1:%d is in use by pid %d (e2e.test)", port, os.Getpid())
	if err == nil || !strings.Contains(out, want) {
		t.Fatalf("up with the port taken: err %v, want %q in:\n%s", err, want, out)
	}
	if n := len(e.ps(f...).Containers); n != 0 {
		t.Errorf("%d containers made before the conflict was found", n)
	}
	if out := e.must("volume", "ls"); strings.Contains(out, e.project) {
		t.Errorf("volume made before the conflict was found:\n%s", out)
	}
	if d := leaks(t, e, ownLinks{}); d != "" {
		t.Errorf("left on the host:\n%s", d)
	}
}
