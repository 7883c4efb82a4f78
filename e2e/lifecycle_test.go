package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stackrun/stack/engine/local"
)

// lifeContainer is the part of `stack ps --format json` the lifecycle tests read.
type lifeContainer struct {
	Name         string    `json:"name"`
	ID           string    `json:"id"`
	Service      string    `json:"service"`
	State        string    `json:"state"`
	Status       string    `json:"status"`
	ExitCode     int       `json:"exit_code"`
	Health       string    `json:"health"`
	RestartCount int       `json:"restart_count"`
	StartedAt    time.Time `json:"started_at"`
	FinishedAt   time.Time `json:"finished_at"`
	Pid          int       `json:"pid"`
	MonitorPid   int       `json:"monitor_pid"`
	Restarts     []struct {
		At       time.Time     `json:"at"`
		Delay    time.Duration `json:"delay"`
		ExitCode int           `json:"exit_code"`
	} `json:"restarts"`
}

// lifePs returns the project's containers by service (one replica each in these tests).
func (e *env) lifePs(f []string) map[string]lifeContainer {
	e.t.Helper()
	out := e.must(append(f, "ps", "-a", "--format", "json")...)
	var p struct {
		Containers []lifeContainer `json:"containers"`
	}
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		e.t.Fatalf("ps json: %v\n%s", err, out)
	}
	m := map[string]lifeContainer{}
	for _, c := range p.Containers {
		m[c.Service] = c
	}
	return m
}

// waitPs polls ps until ok holds for service's container, and returns it.
func (e *env) waitPs(f []string, service string, timeout time.Duration, what string, ok func(lifeContainer) bool) lifeContainer {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	var c lifeContainer
	for time.Now().Before(deadline) {
		c = e.lifePs(f)[service]
		if ok(c) {
			return c
		}
		time.Sleep(200 * time.Millisecond)
	}
	e.t.Fatalf("%s never became %s; last ps: %+v", service, what, c)
	return c
}

// lifeFile is the stack file testdata/lifecycle/name with the env's project.
func lifeFile(e *env, name string) []string {
	return []string{"-f", filepath.Join("e2e", "testdata", "lifecycle", name), "-p", e.project}
}

// timedLine is one line of `stack logs -t --no-log-prefix`.
type timedLine struct {
	t    time.Time
	text string
}

func parseTimed(t *testing.T, out string) []timedLine {
	t.Helper()
	var lines []timedLine
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if l == "" {
			continue
		}
		ts, text, ok := strings.Cut(l, " ")
		tm, err := time.Parse(time.RFC3339Nano, ts)
		if !ok || err != nil {
			t.Fatalf("log line without a timestamp: %q (%v)", l, err)
		}
		lines = append(lines, timedLine{tm, text})
	}
	return lines
}

func alive(pid int) bool { return pid > 0 && syscall.Kill(pid, 0) == nil }

// downLeavesNothing runs down -v and checks that nothing of this env stays on the host: the
// bridges and veths its network records named, its nftables table, mounts under its roots,
// cgroups of the project, and none of pids (containers, monitors) still runs. Interfaces and
// tables are matched by name, so other tests running on the host meanwhile do not count.
func (e *env) downLeavesNothing(f []string, pids ...int) {
	e.t.Helper()
	var nets []struct {
		Bridge      string `json:"bridge"`
		Attachments map[string]struct {
			HostVeth string `json:"host_veth"`
		} `json:"attachments"`
	}
	if err := json.Unmarshal([]byte(e.must("network", "ls", "--format", "json")), &nets); err != nil {
		e.t.Fatalf("network ls json: %v", err)
	}
	var links []string
	for _, n := range nets {
		links = append(links, n.Bridge)
		for _, a := range n.Attachments {
			links = append(links, a.HostVeth)
		}
	}
	e.must(append(f, "down", "-v", "-t", "1")...)
	after := snapshot(e.t, e)
	for _, l := range links {
		if slices.Contains(strings.Fields(after.links), l) {
			e.t.Errorf("interface %s left after down -v", l)
		}
	}
	if table := local.TableFor(e.root); strings.Contains(after.nft, "table ip "+table+"\n") {
		e.t.Errorf("nftables table %s left after down -v", table)
	}
	if after.mounts != "" || after.cgroups != "" {
		e.t.Errorf("left after down -v: mounts %q, cgroups %q", after.mounts, after.cgroups)
	}
	for _, pid := range pids {
		deadline := time.Now().Add(10 * time.Second)
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		if alive(pid) {
			e.t.Errorf("process %d still runs after down", pid)
		}
	}
}

// TestLogsEveryLineInOrder: a service printing a line every 10 ms for 5 s: logs -f follows it
// and ends when it stops; logs -t then returns every line, in order, each with its timestamp.
func TestLogsEveryLineInOrder(t *testing.T) {
	e := newEnv(t)
	e.exampleImage()
	f := lifeFile(e, "logs.yaml")
	e.must(append(f, "up", "-d", "ticker")...)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	follow := e.command(ctx, append(f, "logs", "-f", "--no-log-prefix", "ticker")...)
	var fout, ferr bytes.Buffer
	follow.Stdout, follow.Stderr = &fout, &ferr
	if err := follow.Run(); err != nil || ctx.Err() != nil {
		t.Fatalf("logs -f did not end by itself when the container stopped: %v (ctx %v)\n%s", err, ctx.Err(), ferr.String())
	}
	if st := e.lifePs(f)["ticker"]; st.State != "exited" || st.ExitCode != 0 {
		t.Errorf("after logs -f ended, ticker is %s (%d), want exited (0)", st.State, st.ExitCode)
	}
	want := make([]string, 500)
	for i := range want {
		want[i] = fmt.Sprintf("tick-%d", i+1)
	}
	if got := strings.Fields(fout.String()); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("logs -f: %d lines, want tick-1..tick-500 in order; first differences: %s", len(got), firstDiff(got, want))
	}

	lines := parseTimed(t, e.must(append(f, "logs", "-t", "--no-log-prefix", "ticker")...))
	var got []string
	for i, l := range lines {
		got = append(got, l.text)
		if i > 0 && l.t.Before(lines[i-1].t) {
			t.Errorf("line %d (%s at %s) is earlier than the line before it (%s)", i, l.text, l.t, lines[i-1].t)
		}
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("logs -t: %d lines, want tick-1..tick-500 in order; %s", len(got), firstDiff(got, want))
	}
	if len(lines) != 500 {
		return
	}
	if span := lines[499].t.Sub(lines[0].t); span < 4*time.Second {
		t.Errorf("timestamps span %s for 500 lines 10 ms apart: they are not the times the lines were written", span)
	}
	// --since the time of line 300 (RFC 3339) returns the lines stamped from then on.
	since := lines[299].t
	var wantSince []string
	for _, l := range lines {
		if !l.t.Before(since) {
			wantSince = append(wantSince, l.text)
		}
	}
	got = strings.Fields(e.must(append(f, "logs", "--no-log-prefix", "--since", since.Format(time.RFC3339Nano), "ticker")...))
	if strings.Join(got, " ") != strings.Join(wantSince, " ") {
		t.Errorf("--since %s: %d lines, want %d; %s", since.Format(time.RFC3339Nano), len(got), len(wantSince), firstDiff(got, wantSince))
	}
}

func firstDiff(got, want []string) string {
	for i := 0; i < len(got) || i < len(want); i++ {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			return fmt.Sprintf("line %d is %q, want %q", i, g, w)
		}
	}
	return "none"
}

// TestLogRotationKeepsSizeAndTail: with max-size 20k and max-file 3 the log files stay under
// the size, at most 3 of them, and --tail returns the newest lines across rotated files.
func TestLogRotationKeepsSizeAndTail(t *testing.T) {
	e := newEnv(t)
	e.exampleImage()
	f := lifeFile(e, "logs.yaml")
	e.must(append(f, "up", "-d", "chatty")...)
	c := e.waitPs(f, "chatty", 60*time.Second, "exited", func(c lifeContainer) bool { return c.State == "exited" })
	if c.ExitCode != 0 {
		t.Fatalf("chatty exited %d", c.ExitCode)
	}

	// The log files are the container's, under the state root; the user sees them as files.
	var files []string
	filepath.Walk(e.root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && strings.Contains(p, c.ID) && strings.HasPrefix(fi.Name(), "container.log") {
			files = append(files, p)
			if fi.Size() > 20*1024 {
				t.Errorf("%s is %d bytes, over max-size 20k", p, fi.Size())
			}
		}
		return nil
	})
	if len(files) < 2 || len(files) > 3 {
		t.Errorf("log files %v: want 2 or 3 (rotated, max-file 3)", files)
	}

	const n = 150 // more lines than one 20k file holds (each line is over 90 bytes)
	out := e.must(append(f, "logs", "--no-log-prefix", "--tail", strconv.Itoa(n), "chatty")...)
	var got []string
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		num, _, _ := strings.Cut(strings.TrimPrefix(l, "chat-"), "-")
		got = append(got, num)
	}
	var want []string
	for i := 2000 - n + 1; i <= 2000; i++ {
		want = append(want, strconv.Itoa(i))
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("--tail %d: %d lines; %s", n, len(got), firstDiff(got, want))
	}
	// The newest file alone does not hold n lines: the tail crossed a rotation.
	newest, err := os.ReadFile(filepath.Join(filepath.Dir(files[0]), "container.log"))
	if err == nil && bytes.Count(newest, []byte("\n")) >= n {
		t.Errorf("the current log file holds %d lines: --tail %d did not need the rotated ones", bytes.Count(newest, []byte("\n")), n)
	}
}

// TestRestartOnFailure: on-failure:3 on a container that exits 1 restarts it exactly 3 times,
// with growing delays, and then leaves it exited.
func TestRestartOnFailure(t *testing.T) {
	e := newEnv(t)
	e.exampleImage()
	f := lifeFile(e, "restart.yaml")
	e.must(append(f, "up", "-d", "failing")...)
	c := e.waitPs(f, "failing", 60*time.Second, "exited with its monitor gone", func(c lifeContainer) bool {
		return c.State == "exited" && c.MonitorPid == 0
	})
	if c.RestartCount != 3 || c.ExitCode != 1 {
		t.Errorf("restart_count %d, exit code %d; want 3 restarts, exit 1", c.RestartCount, c.ExitCode)
	}
	if len(c.Restarts) != 3 {
		t.Fatalf("restarts recorded: %+v", c.Restarts)
	}
	for i := 1; i < len(c.Restarts); i++ {
		if c.Restarts[i].Delay <= c.Restarts[i-1].Delay {
			t.Errorf("restart delays do not grow: %v then %v", c.Restarts[i-1].Delay, c.Restarts[i].Delay)
		}
	}
	if n := strings.Count(e.must(append(f, "logs", "failing")...), "try"); n != 4 {
		t.Errorf("the container ran %d times, want 4 (first run + 3 restarts)", n)
	}
}

// TestRestartAlwaysSurvivesKillButNotStop: restart: always brings the container back after
// kill -9 of its process; stack stop then stops it for good.
func TestRestartAlwaysSurvivesKillButNotStop(t *testing.T) {
	e := newEnv(t)
	e.exampleImage()
	f := lifeFile(e, "restart.yaml")
	e.must(append(f, "up", "-d", "--wait", "always")...)
	c := e.waitPs(f, "always", 30*time.Second, "running", func(c lifeContainer) bool { return c.State == "running" && c.Pid > 0 })
	if err := syscall.Kill(c.Pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 %d: %v", c.Pid, err)
	}
	again := e.waitPs(f, "always", 30*time.Second, "running again", func(n lifeContainer) bool {
		return n.State == "running" && n.Pid > 0 && n.Pid != c.Pid && n.RestartCount == c.RestartCount+1
	})
	if alive(c.Pid) {
		t.Errorf("the killed process %d still runs", c.Pid)
	}

	e.must(append(f, "stop", "-t", "1", "always")...)
	st := e.waitPs(f, "always", 30*time.Second, "stopped with its monitor gone", func(n lifeContainer) bool {
		return n.State == "exited" && n.MonitorPid == 0
	})
	// The monitor that applies the policy has exited: nothing can restart the container.
	deadline := time.Now().Add(10 * time.Second)
	for alive(again.MonitorPid) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if alive(again.MonitorPid) || alive(again.Pid) {
		t.Errorf("after stop: monitor %d alive %v, container %d alive %v", again.MonitorPid, alive(again.MonitorPid), again.Pid, alive(again.Pid))
	}
	if end := e.lifePs(f)["always"]; end.State != "exited" || end.RestartCount != st.RestartCount || end.RestartCount != again.RestartCount {
		t.Errorf("the policy undid stop: %+v", end)
	}
	e.downLeavesNothing(f, c.Pid, c.MonitorPid, again.Pid, again.MonitorPid)
}

// TestHealthyGatesDependent: app (depends_on db: service_healthy) starts only after db turned
// healthy, about 2 s after db started.
func TestHealthyGatesDependent(t *testing.T) {
	e := newEnv(t)
	e.exampleImage()
	f := lifeFile(e, "healthy.yaml")
	e.must(append(f, "up", "-d")...)
	db := e.waitPs(f, "db", 60*time.Second, "healthy", func(c lifeContainer) bool { return c.Health == "healthy" })
	app := e.waitPs(f, "app", 60*time.Second, "running", func(c lifeContainer) bool { return c.State == "running" })
	ready := parseTimed(t, e.must(append(f, "logs", "-t", "--no-log-prefix", "db")...))
	if len(ready) != 1 || ready[0].text != "ready" {
		t.Fatalf("db logs: %+v", ready)
	}
	if !app.StartedAt.After(ready[0].t) {
		t.Errorf("app started at %s, before db was ready (%s; db started %s)", app.StartedAt, ready[0].t, db.StartedAt)
	}
}

// TestUnhealthyFailsUpWait: up --wait fails on an unhealthy service, naming it and showing its
// last health output.
func TestUnhealthyFailsUpWait(t *testing.T) {
	e := newEnv(t)
	e.exampleImage()
	f := lifeFile(e, "unhealthy.yaml")
	out, err := e.run(append(f, "up", "-d", "--wait", "--wait-timeout", "60s")...)
	if err == nil {
		t.Fatalf("up --wait succeeded with an unhealthy service:\n%s", out)
	}
	if !strings.Contains(out, "sick") || !strings.Contains(out, "unhealthy") || !strings.Contains(out, "sick-probe-output") {
		t.Errorf("up --wait error does not name the service, its health and its last output:\n%s", out)
	}
}

// TestMonitorKilled: kill -9 of a monitor leaves its container running; ps says unsupervised;
// up restores supervision and the logs resume.
func TestMonitorKilled(t *testing.T) {
	e := newEnv(t)
	f, c := tickerWithKilledMonitor(t, e)
	u := e.waitPs(f, "ticker", 30*time.Second, "unsupervised", func(c lifeContainer) bool { return c.State == "unsupervised" })
	if u.Pid != c.Pid || !alive(c.Pid) {
		t.Fatalf("the container did not keep running: pid %d (was %d) alive %v", u.Pid, c.Pid, alive(c.Pid))
	}
	if !strings.Contains(e.must(append(f, "ps")...), "unsupervised") {
		t.Errorf("ps table does not say unsupervised")
	}

	// The plan says what up will do about it, and why.
	planOut, err := e.run(append(f, "plan")...)
	if code := exitCode(err); code != 2 || !strings.Contains(planOut, "container:ticker:1") || !strings.Contains(planOut, "unsupervised") {
		t.Errorf("plan with the monitor gone (exit %d, want 2 and the reason):\n%s", code, planOut)
	}
	upAt := time.Now()
	upOut := e.must(append(f, "up", "-d", "--wait")...)
	r := e.waitPs(f, "ticker", 30*time.Second, "supervised again", func(c lifeContainer) bool {
		return c.State == "running" && c.MonitorPid > 0 && c.MonitorPid != u.MonitorPid
	})
	if !alive(r.MonitorPid) {
		t.Errorf("new monitor %d is not alive", r.MonitorPid)
	}
	if r.Pid != c.Pid {
		// Recreated rather than adopted: the plan up printed must give the reason.
		if !strings.Contains(upOut, "recreate container:ticker:1") || !strings.Contains(upOut, "unsupervised") {
			t.Errorf("up recreated the container (pid %d -> %d) without saying why:\n%s", c.Pid, r.Pid, upOut)
		}
	}
	// Logs resume: lines written after up are in the log.
	deadline := time.Now().Add(20 * time.Second)
	for {
		lines := parseTimed(t, e.must(append(f, "logs", "-t", "--no-log-prefix")...))
		if n := len(lines); n > 0 && lines[n-1].t.After(upAt.Add(time.Second)) && strings.HasPrefix(lines[n-1].text, "tick-") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("logs did not resume after up; last lines: %+v", lines[max(0, len(lines)-3):])
		}
		time.Sleep(300 * time.Millisecond)
	}
	e.downLeavesNothing(f, c.Pid, c.MonitorPid, r.Pid, r.MonitorPid)
}

// tickerWithKilledMonitor brings up the ticker of monitor.yaml, waits until it logs, and
// SIGKILLs its monitor; it returns the stack file flags and the container as it was.
func tickerWithKilledMonitor(t *testing.T, e *env) ([]string, lifeContainer) {
	t.Helper()
	e.exampleImage()
	f := lifeFile(e, "monitor.yaml")
	e.must(append(f, "up", "-d", "--wait")...)
	c := e.waitPs(f, "ticker", 30*time.Second, "supervised and running", func(c lifeContainer) bool {
		return c.State == "running" && c.Pid > 0 && c.MonitorPid > 0
	})
	waitLogs(t, e, f, "tick-3")
	if err := syscall.Kill(c.MonitorPid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 monitor %d: %v", c.MonitorPid, err)
	}
	return f, c
}

// TestExecExitCodeAndTty: exec passes the exit code through; -w, -e and -u apply; exec -t gives the command a tty
// (run under a pty made by script(1)), and without -t it has none.
func TestExecExitCodeAndTty(t *testing.T) {
	e := newEnv(t)
	e.exampleImage()
	f := lifeFile(e, "exec.yaml")
	e.must(append(f, "up", "-d", "--wait")...)
	out, err := e.run(append(f, "exec", "box", "sh", "-c", "exit 7")...)
	if code := exitCode(err); code != 7 {
		t.Errorf("exec sh -c 'exit 7': exit %d, want 7\n%s", code, out)
	}
	if out := e.must(append(f, "exec", "-w", "/tmp", "-e", "GREETING=hi there", "-u", "0:0", "box", "sh", "-c", "echo \"$PWD|$GREETING|$(id -u)\"")...); strings.TrimSpace(out) != "/tmp|hi there|0" {
		t.Errorf("exec -w -e -u: %q", out)
	}
	probe := "if [ -t 0 ] && [ -t 1 ]; then echo is-a-tty; else echo no-tty; fi"
	if out := e.must(append(f, "exec", "box", "sh", "-c", probe)...); strings.TrimSpace(out) != "no-tty" {
		t.Errorf("exec without -t: %q", out)
	}

	if _, err := exec.LookPath("script"); err != nil {
		t.Skip("script(1) from util-linux is not installed: cannot run exec -t under a pty")
	}
	args := append(append([]string{e.bin}, f...), "exec", "-t", "box", "sh", "-c", probe+"; exit 3")
	var quoted []string
	for _, a := range args {
		quoted = append(quoted, "'"+strings.ReplaceAll(a, "'", `'\''`)+"'")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "script", "-q", "-e", "-c", strings.Join(quoted, " "), "/dev/null")
	cmd.Env = append(os.Environ(), "STACK_ROOT="+e.root, "STACK_RUN_ROOT="+e.runRoot)
	cmd.Dir = repoRoot(t)
	b, err := cmd.CombinedOutput()
	if !strings.Contains(string(b), "is-a-tty") {
		t.Errorf("exec -t under a pty: the command has no tty: %v\n%q", err, b)
	}
	if code := exitCode(err); code != 3 {
		t.Errorf("exec -t: exit %d, want 3\n%q", code, b)
	}
}

// TestLogsFollowAcrossRestarts: logs -f keeps following a service through its restarts and
// ends once the policy gives up.
func TestLogsFollowAcrossRestarts(t *testing.T) {
	e := newEnv(t)
	e.exampleImage()
	f := lifeFile(e, "restart.yaml")
	e.must(append(f, "up", "-d", "failing")...)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	follow := e.command(ctx, append(f, "logs", "-f", "--no-log-prefix", "failing")...)
	out, err := follow.CombinedOutput()
	if err != nil || ctx.Err() != nil {
		t.Fatalf("logs -f did not end by itself after the last restart: %v (ctx %v)\n%s", err, ctx.Err(), out)
	}
	if n := strings.Count(string(out), "try"); n != 4 {
		t.Errorf("logs -f showed %d runs, want 4 (first run + 3 restarts):\n%s", n, out)
	}
	if c := e.lifePs(f)["failing"]; c.State != "exited" || c.RestartCount != 3 {
		t.Errorf("after logs -f ended: %+v", c)
	}
}

// TestLogsFollowAcrossRecreate: logs -f started before up --force-recreate goes on with the
// new container's output, and ends when the service is stopped.
func TestLogsFollowAcrossRecreate(t *testing.T) {
	e := newEnv(t)
	e.exampleImage()
	f := lifeFile(e, "monitor.yaml")
	e.must(append(f, "up", "-d", "--wait")...)
	old := e.lifePs(f)["ticker"]
	waitLogs(t, e, f, "tick-2")

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	follow := e.command(ctx, append(f, "logs", "-f", "--no-log-prefix", "ticker")...)
	var out syncBuffer
	follow.Stdout, follow.Stderr = &out, &out
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- follow.Wait() }()

	e.must(append(f, "up", "-d", "--wait", "--force-recreate")...)
	if n := e.lifePs(f)["ticker"]; n.ID == old.ID {
		t.Fatalf("--force-recreate kept container %s", old.ID)
	}
	// The new container counts from 1 again: tick-2 a second time is its output.
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count("\n"+out.String(), "\ntick-2\n") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("logs -f did not go on with the recreated container:\n%s", out.String())
		}
		select {
		case err := <-done:
			t.Fatalf("logs -f ended at the recreate (%v):\n%s", err, out.String())
		case <-time.After(200 * time.Millisecond):
		}
	}
	e.must(append(f, "stop", "-t", "1")...)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("logs -f: %v\n%s", err, out.String())
		}
	case <-ctx.Done():
		t.Errorf("logs -f did not end when the service stopped")
	}
}

// syncBuffer is a bytes.Buffer safe for a process writing while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestUpKilledConverges: SIGKILL of stack up while it waits for a dependency's health loses
// nothing: the next up converges to one running container per service, and down -v leaves
// nothing on the host.
func TestUpKilledConverges(t *testing.T) {
	e := newEnv(t)
	e.exampleImage()
	f := lifeFile(e, "healthy.yaml")
	up := e.command(context.Background(), append(f, "up", "-d")...)
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	// db is running but not yet healthy (it takes about 2 s): up is waiting to start app.
	db := e.waitPs(f, "db", 60*time.Second, "running", func(c lifeContainer) bool { return c.State == "running" })
	up.Process.Kill()
	up.Wait()
	if app := e.lifePs(f)["app"]; app.State == "running" {
		t.Fatalf("app already runs while db is not yet healthy: up was not killed mid-way (%+v)", app)
	}

	e.must(append(f, "up", "-d", "--wait")...)
	ps := e.lifePs(f)
	if len(ps) != 2 || ps["db"].State != "running" || ps["app"].State != "running" || ps["db"].Health != "healthy" {
		t.Fatalf("after up was killed and run again: %+v", ps)
	}
	if ps["db"].ID != db.ID {
		t.Logf("db was recreated (%s -> %s)", db.ID, ps["db"].ID)
	}
	out := e.must(append(f, "ps", "-a", "--format", "json")...)
	if n := strings.Count(out, `"service"`); n != 2 {
		t.Errorf("%d containers, want 2:\n%s", n, out)
	}
	if out := e.must(append(f, "up", "-d")...); !strings.Contains(out, "nothing to do") {
		t.Errorf("up after converging: %s", out)
	}
	e.downLeavesNothing(f, db.Pid, db.MonitorPid, ps["db"].Pid, ps["app"].Pid)
}

// TestStopSignalGraceAndKill: stop sends the service's stop_signal (the container exits 0 on
// its own); -t bounds the grace period of one that ignores SIGTERM (SIGKILL then); kill -s
// delivers the signal named.
func TestStopSignalGraceAndKill(t *testing.T) {
	e := newEnv(t)
	e.exampleImage()
	f := lifeFile(e, "exec.yaml")
	e.must(append(f, "up", "-d", "--wait", "polite", "stubborn")...)
	waitServiceLogs(t, e, f, "polite", "up")
	waitServiceLogs(t, e, f, "stubborn", "up")

	e.must(append(f, "kill", "-s", "USR1", "polite")...)
	waitServiceLogs(t, e, f, "polite", "got-usr1")
	if c := e.lifePs(f)["polite"]; c.State != "running" {
		t.Fatalf("polite after kill -s USR1: %+v", c)
	}

	e.must(append(f, "stop", "polite")...) // grace 30s: it must end on SIGUSR2 itself
	c := e.waitPs(f, "polite", 20*time.Second, "exited", func(c lifeContainer) bool { return c.State == "exited" })
	if c.ExitCode != 0 || !strings.Contains(e.must(append(f, "logs", "polite")...), "got-usr2") {
		t.Errorf("stop did not send stop_signal SIGUSR2: exit %d\n%s", c.ExitCode, e.must(append(f, "logs", "polite")...))
	}

	start := time.Now()
	e.must(append(f, "stop", "-t", "1", "stubborn")...)
	c = e.waitPs(f, "stubborn", 20*time.Second, "exited", func(c lifeContainer) bool { return c.State == "exited" })
	if c.ExitCode != 137 {
		t.Errorf("stubborn stopped with exit code %d, want 137 (SIGKILL after -t 1); status %q", c.ExitCode, c.Status)
	}
	if !strings.Contains(e.must(append(f, "logs", "stubborn")...), "ignoring-term") {
		t.Errorf("stop did not send SIGTERM first")
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("stop -t 1 took %s: the service's 30s grace period was used", d)
	}
}

// waitServiceLogs polls the logs of service until they contain want.
func waitServiceLogs(t *testing.T, e *env, f []string, service, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var out string
	for time.Now().Before(deadline) {
		out, _ = e.run(append(f, "logs", service)...)
		if strings.Contains(out, want) {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("logs of %s never showed %q:\n%s", service, want, out)
}

// TestRebootSimulated: after everything is stopped and the volatile state is gone (the run
// root wiped and every mount of the roots undone, as a reboot would), ps sees the containers
// as exited, up converges, and down -v leaves nothing.
func TestRebootSimulated(t *testing.T) {
	e := newEnv(t)
	e.exampleImage()
	f := lifeFile(e, "monitor.yaml")
	e.must(append(f, "up", "-d", "--wait")...)
	old := e.lifePs(f)["ticker"]
	e.must(append(f, "stop", "-t", "1")...)
	e.waitPs(f, "ticker", 20*time.Second, "exited", func(c lifeContainer) bool { return c.State == "exited" && c.MonitorPid == 0 })

	// The reboot: mounts of the roots go (deepest first), the run root is emptied.
	unmountRoots(t, e)
	if err := os.RemoveAll(e.runRoot); err != nil {
		t.Fatal(err)
	}

	if c := e.lifePs(f)["ticker"]; c.State != "exited" || c.Pid != 0 {
		t.Errorf("after the reboot ps says %+v, want exited", c)
	}
	e.must(append(f, "up", "-d", "--wait")...)
	c := e.waitPs(f, "ticker", 30*time.Second, "running", func(c lifeContainer) bool { return c.State == "running" && c.MonitorPid > 0 })
	if c.Pid == old.Pid {
		t.Errorf("the container runs with the pid of before the reboot: %+v", c)
	}
	waitServiceLogs(t, e, f, "ticker", "tick-3")
	e.downLeavesNothing(f, c.Pid, c.MonitorPid)
}

// TestKillStartRestart: stack kill of a restart: always service is a user's stop (the policy
// does not bring it back); start runs the same container again; restart gives it a new process.
func TestKillStartRestart(t *testing.T) {
	e := newEnv(t)
	e.exampleImage()
	f := lifeFile(e, "restart.yaml")
	e.must(append(f, "up", "-d", "--wait", "always")...)
	c := e.waitPs(f, "always", 30*time.Second, "running", func(c lifeContainer) bool { return c.State == "running" && c.Pid > 0 })

	e.must(append(f, "kill", "always")...)
	k := e.waitPs(f, "always", 30*time.Second, "exited with its monitor gone", func(n lifeContainer) bool {
		return n.State == "exited" && n.MonitorPid == 0
	})
	if k.RestartCount != c.RestartCount || k.ExitCode != 137 {
		t.Errorf("after kill: %+v, want exit 137 and no restart", k)
	}

	e.must(append(f, "start", "always")...)
	s := e.waitPs(f, "always", 30*time.Second, "running again", func(n lifeContainer) bool { return n.State == "running" && n.Pid > 0 })
	if s.ID != c.ID || s.Pid == c.Pid {
		t.Errorf("start: container %s pid %d, want the same container %s with a new process", s.ID, s.Pid, c.ID)
	}

	e.must(append(f, "restart", "-t", "1", "always")...)
	r := e.waitPs(f, "always", 30*time.Second, "running after restart", func(n lifeContainer) bool {
		return n.State == "running" && n.Pid > 0 && n.Pid != s.Pid
	})
	if r.ID != c.ID || alive(s.Pid) {
		t.Errorf("restart: container %s (want %s), old process %d alive %v", r.ID, c.ID, s.Pid, alive(s.Pid))
	}
	e.downLeavesNothing(f, c.Pid, s.Pid, r.Pid, r.MonitorPid)
}
