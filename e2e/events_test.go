package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stackrun/stack/events"
)

const eventsStack = `
services:
  crash:
    image: stack-example:latest
    command: ["sh", "-c", "exit 3"]
  hog:
    image: stack-example:latest
    command: ["sh", "-c", "v=$$(/bin/busybox head -c 200000000 /dev/zero | /bin/busybox tr '\\0' a); echo survived"]
    mem_limit: 16m
  flaky:
    image: stack-example:latest
    command: ["sh", "-c", "exit 1"]
    restart: on-failure:1
  checked:
    image: stack-example:latest
    command: ["sleep", "3600"]
    healthcheck:
      test: ["CMD", "sh", "-c", "exit 0"]
      interval: 1s
      timeout: 2s
      retries: 3
`

// readEvents reads the project's journal as JSON lines, up to now.
func (e *env) readEvents(f []string, args ...string) []events.Event {
	e.t.Helper()
	out := e.must(append(append(f, "events", "--until", "now", "--format", "json"), args...)...)
	var evs []events.Event
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var ev events.Event
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			e.t.Fatalf("events line %q: %v", line, err)
		}
		evs = append(evs, ev)
	}
	return evs
}

// sequence is the event types of service, with die's exit code and health's status.
func sequence(evs []events.Event, service string) string {
	var s []string
	for _, ev := range evs {
		if ev.Service != service {
			continue
		}
		t := ev.Type
		if ev.ExitCode != nil {
			t += "(" + itoa(*ev.ExitCode) + ")"
		}
		if ev.Health != "" {
			t += "(" + ev.Health + ")"
		}
		s = append(s, t)
	}
	return strings.Join(s, " ")
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// TestEvents: the journal records create and start of each container, die with the exit code,
// oom for a container killed by its memory limit, the restart made by on-failure, the healthy
// verdict of a healthcheck, and destroy at down; --since and service filters narrow it.
func TestEvents(t *testing.T) {
	e := newEnv(t)
	e.exampleImage()
	f := e.stackFile(eventsStack)
	start := time.Now()
	e.must(append(f, "up", "-d")...)

	want := map[string]string{
		"crash":   "create start die(3)",
		"hog":     "create start oom die(137)",
		"flaky":   "create start die(1) restart start die(1)",
		"checked": "create start health_status(healthy)",
	}
	deadline := time.Now().Add(60 * time.Second)
	var evs []events.Event
	for {
		evs = e.readEvents(f)
		done := true
		for svc, w := range want {
			if sequence(evs, svc) != w {
				done = false
			}
		}
		if done || time.Now().After(deadline) {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	for svc, w := range want {
		if got := sequence(evs, svc); got != w {
			t.Errorf("%s: events %q, want %q", svc, got, w)
		}
	}
	for _, ev := range evs {
		if ev.Project != e.project || ev.ID == "" || !strings.HasPrefix(ev.Name, e.project+"-") || ev.Time.Before(start.Add(-time.Second)) {
			t.Errorf("event %+v", ev)
		}
	}

	// Filters: one service; since after everything so far.
	if got := e.readEvents(f, "crash"); sequence(got, "crash") != want["crash"] || len(got) != 3 {
		t.Errorf("events crash: %+v", got)
	}
	mark := time.Now().UTC().Format(time.RFC3339Nano)
	e.must(append(f, "down", "-t", "1")...)
	after := e.readEvents(f, "--since", mark)
	destroyed := map[string]bool{}
	for _, ev := range after {
		if ev.Type == events.Destroy {
			destroyed[ev.Service] = true
		}
	}
	if len(destroyed) != 4 {
		t.Errorf("destroy events after down: %+v", after)
	}
	if got := sequence(after, "checked"); got != "die(143) destroy" && got != "die(137) destroy" {
		t.Errorf("checked after down: %q", got)
	}
	if out := e.must(append(f, "events", "--until", "now")...); !strings.Contains(out, "container die "+e.project+"-crash-1 (exit_code=3") {
		t.Errorf("text events:\n%s", out)
	}
}
