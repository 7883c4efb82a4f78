package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// planJSON is the part of `stack plan --format json` these tests read.
type planJSON struct {
	Version int    `json:"version"`
	Project string `json:"project"`
	Actions []struct {
		ID       string `json:"id"`
		Kind     string `json:"kind"`
		Resource string `json:"resource"`
		Reason   string `json:"reason"`
	} `json:"actions"`
}

// progressEvent is one line of `stack up --progress json`.
type progressEvent struct {
	Action   string `json:"action"`
	Kind     string `json:"kind"`
	Resource string `json:"resource"`
	Phase    string `json:"phase"`
	Message  string `json:"message"`
}

func (e *env) plan(f []string) planJSON {
	e.t.Helper()
	out, stderr, err := e.runSplit(append(f, "plan", "--format", "json")...)
	if code := exitCode(err); code != 0 && code != 2 {
		e.t.Fatalf("plan: %v\n%s%s", err, out, stderr)
	}
	var p planJSON
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		e.t.Fatalf("plan json: %v\n%s", err, out)
	}
	return p
}

// upEvents runs up --progress json and returns its events (lines that are not JSON fail the test).
func (e *env) upEvents(f []string, args ...string) []progressEvent {
	e.t.Helper()
	out, stderr, err := e.runSplit(append(append(f, "up", "-d", "--progress", "json"), args...)...)
	if err != nil {
		e.t.Fatalf("up: %v\n%s%s", err, out, stderr)
	}
	var evs []progressEvent
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var ev progressEvent
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			e.t.Fatalf("up progress line %q is not JSON: %v\n%s", l, err, out)
		}
		evs = append(evs, ev)
	}
	return evs
}

// planMatchesUp: every action the plan printed ran to completion in up (done, or "not needed"
// when its condition did not hold), in the same kind on the same resource, and up ran no
// action the plan did not print.
func planMatchesUp(t *testing.T, p planJSON, evs []progressEvent) {
	t.Helper()
	planned := map[string]string{}
	for _, a := range p.Actions {
		planned[a.ID] = a.Kind + " " + a.Resource
	}
	finished := map[string]string{}
	for _, ev := range evs {
		if ev.Action == "" {
			continue // project-level lines (lock, messages)
		}
		if _, ok := planned[ev.Action]; !ok {
			t.Errorf("up ran %s (%s %s), which plan did not print", ev.Action, ev.Kind, ev.Resource)
			continue
		}
		if got := ev.Kind + " " + ev.Resource; got != planned[ev.Action] {
			t.Errorf("up's %s is %q, plan said %q", ev.Action, got, planned[ev.Action])
		}
		switch ev.Phase {
		case "done", "not needed":
			finished[ev.Action] = ev.Phase
		case "failed", "skipped":
			t.Errorf("up: %s %s: %s", ev.Action, ev.Phase, ev.Message)
		}
	}
	var missing []string
	for id := range planned {
		if _, ok := finished[id]; !ok {
			missing = append(missing, id+" ("+planned[id]+")")
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("planned but not done by up: %s", strings.Join(missing, ", "))
	}
}

// TestPlanThenUp is issue 8 acceptance 4: what up does equals what plan printed just before,
// for a new stack, for a changed service, and for nothing changed.
func TestPlanThenUp(t *testing.T) {
	e := newEnv(t)
	e.exampleImage()
	f := []string{"-f", "e2e/testdata/reconcile/stack.yaml", "-p", e.project}

	p := e.plan(f)
	if len(p.Actions) == 0 {
		t.Fatalf("plan of a new stack is empty: %+v", p)
	}
	planMatchesUp(t, p, e.upEvents(f))
	ids := e.ps(f...).ids()
	if len(ids) != 3 {
		t.Fatalf("after up: %v", ids)
	}

	// One changed variable: plan names b (and maybe its dependents); up does just that.
	e.extra = []string{"TAG=b"}
	p = e.plan(f)
	var recreates []string
	for _, a := range p.Actions {
		recreates = append(recreates, a.Kind+" "+a.Resource)
	}
	if !strings.Contains(strings.Join(recreates, ","), "container:b:1") {
		t.Fatalf("plan after changing b does not touch b: %v", recreates)
	}
	planMatchesUp(t, p, e.upEvents(f))
	after := e.ps(f...).ids()
	if after["b"] == ids["b"] || after["a"] != ids["a"] {
		t.Errorf("changed b: containers %v -> %v", ids, after)
	}

	// Nothing changed: the plan is empty, and so is what up does.
	p = e.plan(f)
	if len(p.Actions) != 0 {
		t.Errorf("plan after up is not empty: %+v", p.Actions)
	}
	planMatchesUp(t, p, e.upEvents(f))
}

// TestConcurrentUp is issue 8 acceptance 5: two up of the same project at once. One holds the
// project lock (a takes seconds to become healthy), the other says it waits, then finds
// nothing to do; the project ends with exactly one running container per service.
func TestConcurrentUp(t *testing.T) {
	e := newEnv(t)
	e.exampleImage()
	f := []string{"-f", "e2e/testdata/reconcile/stack.yaml", "-p", e.project}

	outs := make([]string, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], errs[i] = e.run(append(f, "up", "-d")...)
		}()
	}
	wg.Wait()
	for i := range outs {
		if errs[i] != nil {
			t.Fatalf("up %d: %v\n%s", i, errs[i], outs[i])
		}
	}
	const waitMsg = "waiting for another stack command working on project " // engine's lock message
	waited := -1
	for i, out := range outs {
		if strings.Contains(out, waitMsg) {
			if waited >= 0 {
				t.Fatalf("both ups say they waited:\n%s\n---\n%s", outs[0], outs[1])
			}
			waited = i
		}
	}
	if waited < 0 {
		t.Fatalf("neither up waited for the other:\n%s\n---\n%s", outs[0], outs[1])
	}
	if !strings.Contains(outs[waited], "nothing to do") {
		t.Errorf("the up that waited did more than nothing:\n%s", outs[waited])
	}
	ps := e.ps(f...)
	count := map[string]int{}
	for _, c := range ps.Containers {
		count[c.Service]++
		if c.State != "running" {
			t.Errorf("%s (%s) is %s", c.Service, c.ID, c.State)
		}
	}
	if fmt.Sprint(count) != "map[a:1 b:1 c:1]" {
		t.Errorf("containers per service after two concurrent ups: %v\n%+v", count, ps)
	}
	// The state on disk agrees with the host: a third up has nothing to do.
	if out := e.must(append(f, "up", "-d")...); !strings.Contains(out, "nothing to do") {
		t.Errorf("third up: %s", out)
	}
}

// runSplit runs stack like run, and returns its stdout and stderr apart.
func (e *env) runSplit(args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := e.command(ctx, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// start starts stack in the background with stdout piped; the caller reads and waits.
func (e *env) start(ctx context.Context, args ...string) (*exec.Cmd, *bytes.Buffer, *lineReader) {
	e.t.Helper()
	cmd := e.command(ctx, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	r, err := cmd.StdoutPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	lr := newLineReader(r)
	return cmd, &stderr, lr
}

// lineReader delivers the lines of a pipe on a channel, closed at EOF.
type lineReader struct {
	lines chan string
}

func newLineReader(r interface{ Read([]byte) (int, error) }) *lineReader {
	lr := &lineReader{lines: make(chan string, 1024)}
	go func() {
		defer close(lr.lines)
		var buf []byte
		chunk := make([]byte, 4096)
		for {
			n, err := r.Read(chunk)
			buf = append(buf, chunk[:n]...)
			for {
				i := bytes.IndexByte(buf, '\n')
				if i < 0 {
					break
				}
				lr.lines <- string(buf[:i])
				buf = buf[i+1:]
			}
			if err != nil {
				if len(buf) > 0 {
					lr.lines <- string(buf)
				}
				return
			}
		}
	}()
	return lr
}

// next returns the next line, or false at EOF or after d.
func (lr *lineReader) next(d time.Duration) (string, bool) {
	select {
	case l, ok := <-lr.lines:
		return l, ok
	case <-time.After(d):
		return "", false
	}
}
