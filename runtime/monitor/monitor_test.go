package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stackrun/stack/internal/testutil"
	"github.com/stackrun/stack/runtime/monitor/logfile"
	"github.com/stackrun/stack/state"
)

// A monitor re-executes itself from its main thread (see handOver), as cmd/stack-monitor's
// does.
func init() {
	if len(os.Args) > 1 && os.Args[1] == Mode {
		goruntime.LockOSThread()
	}
}

// TestMain hands off to the monitor when Launch re-executes the test binary, as cmd/stack's
// main does for the stack binary.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == Mode {
		Main()
	}
	if len(os.Args) > 1 && os.Args[1] == launcherMode {
		launcherMain()
	}
	os.Exit(m.Run())
}

// fixture is one container under test: its bundle and directories.
type fixture struct {
	t      testing.TB
	cfg    Config
	runc   string
	mu     sync.Mutex
	pids   []*Handle
	bundle string
}

// newFixture builds a busybox bundle running `sh -c script` and a Config for it with temporary
// state, run and runtime roots. Cleanup kills the monitors it launched and deletes the
// container from runc (which kills it and removes its cgroup).
func newFixture(t testing.TB, script string) *fixture {
	t.Helper()
	testutil.RequireRoot(t)
	runc := testutil.RequireBinary(t, "runc")
	busybox := testutil.RequireBinary(t, "busybox")
	dir := t.TempDir()
	bundle := filepath.Join(dir, "bundle")
	rootfs := filepath.Join(bundle, "rootfs")
	for _, d := range []string{"bin", "tmp", "proc", "dev", "sys"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bb, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "bin/busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, applet := range []string{"sh", "echo", "usleep", "test", "touch", "sleep", "cat", "true"} {
		if err := os.Symlink("busybox", filepath.Join(rootfs, "bin", applet)); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command(runc, "spec", "--bundle", bundle).CombinedOutput(); err != nil {
		t.Fatalf("runc spec: %v: %s", err, out)
	}
	var spec map[string]any
	if err := state.ReadJSON(filepath.Join(bundle, "config.json"), &spec); err != nil {
		t.Fatal(err)
	}
	proc := spec["process"].(map[string]any)
	proc["terminal"] = false
	proc["args"] = []string{"/bin/sh", "-c", script}
	spec["root"].(map[string]any)["readonly"] = false
	id := testutil.UniqueName()
	// Relative: runc puts it below the cgroup of the process that runs it.
	spec["linux"].(map[string]any)["cgroupsPath"] = id
	b, _ := json.Marshal(spec)
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, runc: runc, bundle: bundle, cfg: Config{
		ID:          id,
		Bundle:      bundle,
		StateDir:    filepath.Join(dir, "state"),
		RunDir:      filepath.Join(dir, "run"),
		RuntimeRoot: filepath.Join(dir, "runc"),
		Runtime:     runc,
		StopTimeout: 2 * time.Second,
	}}
	t.Cleanup(f.cleanup)
	return f
}

func (f *fixture) launch(cfg Config) *Handle {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h, err := Launch(ctx, cfg)
	if err != nil {
		f.t.Fatalf("launch: %v", err)
	}
	f.mu.Lock()
	f.pids = append(f.pids, h)
	f.mu.Unlock()
	return h
}

func (f *fixture) cleanup() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, h := range f.pids {
		select {
		case <-h.Done():
		default:
			syscall.Kill(h.Pid, syscall.SIGKILL) // our child, not yet reaped
			<-h.Done()
		}
	}
	out, err := exec.Command(f.runc, "--root", f.cfg.RuntimeRoot, "delete", "--force", f.cfg.ID).CombinedOutput()
	if err != nil && !strings.Contains(string(out), "does not exist") {
		f.t.Errorf("runc delete: %v: %s", err, out)
	}
	for _, c := range []string{"memory", "pids", "cpu", "devices", "freezer", "blkio"} {
		own := ownCgroup(c)
		if own == "" {
			continue
		}
		if p := filepath.Join("/sys/fs/cgroup", c, own, f.cfg.ID); state.Exists(p) {
			f.t.Errorf("cgroup left behind: %s", p)
		}
	}
}

func ownCgroup(controller string) string {
	b, _ := os.ReadFile("/proc/self/cgroup")
	for _, line := range strings.Split(string(b), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) == 3 && strings.Contains(","+parts[1]+",", ","+controller+",") {
			return parts[2]
		}
	}
	return ""
}

// waitFor polls Inspect until cond holds or the deadline passes.
func (f *fixture) waitFor(what string, timeout time.Duration, cond func(*Status) bool) *Status {
	f.t.Helper()
	deadline := time.Now().Add(timeout)
	var last *Status
	var err error
	for time.Now().Before(deadline) {
		last, err = Inspect(f.cfg.StateDir, f.cfg.RunDir)
		if err == nil && cond(last) {
			return last
		}
		time.Sleep(20 * time.Millisecond)
	}
	f.t.Fatalf("timed out waiting for %s; last status %+v, err %v", what, last, err)
	return nil
}

func (f *fixture) logs(opts LogOptions) []logfile.Entry {
	f.t.Helper()
	var out []logfile.Entry
	opts.StateDir, opts.RunDir = f.cfg.StateDir, f.cfg.RunDir
	if err := ReadLogs(context.Background(), filepath.Join(f.cfg.StateDir, "container.log"), opts, func(e logfile.Entry) error {
		out = append(out, e)
		return nil
	}); err != nil {
		f.t.Fatal(err)
	}
	return out
}

// follow starts ReadLogs with Follow and returns a channel with everything it read.
func (f *fixture) follow(ctx context.Context) <-chan []logfile.Entry {
	ch := make(chan []logfile.Entry, 1)
	go func() {
		var out []logfile.Entry
		err := ReadLogs(ctx, filepath.Join(f.cfg.StateDir, "container.log"),
			LogOptions{Follow: true, StateDir: f.cfg.StateDir, RunDir: f.cfg.RunDir},
			func(e logfile.Entry) error { out = append(out, e); return nil })
		if err != nil {
			f.t.Errorf("follow: %v", err)
		}
		ch <- out
	}()
	return ch
}

func checkSequence(t *testing.T, what string, entries []logfile.Entry, n int) {
	t.Helper()
	var got []string
	for _, e := range entries {
		if e.Stream == "stdout" {
			got = append(got, e.Log)
		}
	}
	if len(got) != n {
		t.Fatalf("%s: %d stdout lines, want %d", what, len(got), n)
	}
	for i, l := range got {
		if want := fmt.Sprintf("line %d", i); l != want {
			t.Fatalf("%s: line %d is %q, want %q", what, i, l, want)
		}
	}
	for i := 1; i < len(entries); i++ {
		if entries[i].Time.Before(entries[i-1].Time) || entries[i].Time.IsZero() {
			t.Fatalf("%s: time stamps out of order at %d", what, i)
		}
	}
}

const printer = `i=0; while [ $i -lt 500 ]; do echo "line $i"; if [ $((i % 100)) = 0 ]; then echo "err $i" >&2; fi; i=$((i+1)); usleep 10000; done`

// Acceptance 1: every line in order with time stamps, follow ends when the container stops,
// rotation keeps each file under the limit and tail spans rotated files.
func TestLogsAcceptance(t *testing.T) {
	full := newFixture(t, printer)
	small := newFixture(t, printer)
	const maxSize = 8 << 10
	small.cfg.LogMaxSize, small.cfg.LogMaxFiles = maxSize, 3
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	hf := full.launch(full.cfg)
	hs := small.launch(small.cfg)
	followFull, followSmall := full.follow(ctx), small.follow(ctx)

	gotFull := <-followFull
	if ctx.Err() != nil {
		t.Fatal("follow did not end when the container stopped")
	}
	checkSequence(t, "follow", gotFull, 500)
	var errs int
	for _, e := range gotFull {
		if e.Stream == "stderr" {
			errs++
		}
	}
	if errs != 5 {
		t.Errorf("follow: %d stderr lines, want 5", errs)
	}
	st := full.waitFor("exited", 10*time.Second, func(s *Status) bool { return s.State == StateExited })
	if st.ExitCode != 0 || st.RestartCount != 0 {
		t.Errorf("status %+v", st)
	}
	<-hf.Done()
	checkSequence(t, "read", full.logs(LogOptions{}), 500)

	checkSequence(t, "follow across rotation", <-followSmall, 500)
	<-hs.Done()
	files, err := logfile.Files(filepath.Join(small.cfg.StateDir, "container.log"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 3 {
		t.Errorf("log files %v, want 3", files)
	}
	for _, name := range files {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > maxSize {
			t.Errorf("%s: %d bytes, over max-size %d", name, fi.Size(), maxSize)
		}
	}
	cur, _ := os.ReadFile(files[len(files)-1])
	tailN := strings.Count(string(cur), "\n") + 10 // more than the current file holds
	tail := small.logs(LogOptions{Tail: tailN})
	if len(tail) != tailN || tail[len(tail)-1].Log != "line 499" {
		t.Fatalf("tail %d: got %d entries ending %+v", tailN, len(tail), tail[len(tail)-1])
	}
	var first int
	fmt.Sscanf(tail[0].Log, "line %d", &first)
	for i, e := range tail {
		if want := fmt.Sprintf("line %d", first+i); e.Log != want {
			t.Fatalf("tail entry %d is %q, want %q", i, e.Log, want)
		}
	}
}

// Acceptance 2a: on-failure:3 on exit 1 gives exactly three restarts with growing delays.
func TestRestartOnFailure(t *testing.T) {
	f := newFixture(t, `echo boom; exit 1`)
	f.cfg.Restart = RestartPolicy{Name: RestartOnFailure, MaxRetries: 3}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h := f.launch(f.cfg)
	followed := f.follow(ctx) // across the restarts, until the policy gives up
	st := f.waitFor("final state", 30*time.Second, func(s *Status) bool { return s.State.Final() })
	<-h.Done()
	var followedBooms int
	for _, e := range <-followed {
		if e.Log == "boom" {
			followedBooms++
		}
	}
	if ctx.Err() != nil || followedBooms != 4 {
		t.Errorf("follow saw %d runs' output (ctx %v), want 4", followedBooms, ctx.Err())
	}
	if st.State != StateExited || st.ExitCode != 1 || st.RestartCount != 3 {
		t.Fatalf("status: state %s exit %d restarts %d, want exited/1/3", st.State, st.ExitCode, st.RestartCount)
	}
	if len(st.Restarts) != 3 {
		t.Fatalf("restart events %+v", st.Restarts)
	}
	for i := 1; i < len(st.Restarts); i++ {
		if st.Restarts[i].Delay <= st.Restarts[i-1].Delay {
			t.Errorf("delays do not grow: %+v", st.Restarts)
		}
		// The next restart cannot happen before the previous one plus the new delay.
		if st.Restarts[i].At.Sub(st.Restarts[i-1].At) < st.Restarts[i].Delay {
			t.Errorf("restart %d came sooner than its delay: %+v", i, st.Restarts)
		}
	}
	var booms int
	for _, e := range f.logs(LogOptions{}) {
		if e.Log == "boom" {
			booms++
		}
	}
	if booms != 4 {
		t.Errorf("log has %d runs' output, want 4", booms)
	}
}

// Acceptance 2b: always survives kill -9 of the container; a user stop is not undone.
func TestRestartAlwaysAndStopWins(t *testing.T) {
	f := newFixture(t, `trap 'exit 0' TERM; while true; do usleep 20000; done`)
	f.cfg.Restart = RestartPolicy{Name: RestartAlways}
	h := f.launch(f.cfg)
	st := f.waitFor("running", 10*time.Second, func(s *Status) bool { return s.State == StateRunning })
	old := st.ContainerPid
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil { // the container our monitor started
		t.Fatal(err)
	}
	st = f.waitFor("restarted", 10*time.Second, func(s *Status) bool {
		return s.State == StateRunning && s.RestartCount == 1 && s.ContainerPid != old
	})
	if st.Restarts[0].ExitCode != 137 {
		t.Errorf("recorded exit of the killed run: %+v", st.Restarts[0])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := Stop(ctx, f.cfg.StateDir, f.cfg.RunDir, 0, 0); err != nil {
		t.Fatal(err)
	}
	<-h.Done() // the monitor is gone: nobody is left to restart the container
	st, err := Inspect(f.cfg.StateDir, f.cfg.RunDir)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != StateStopped || st.ExitCode != 0 || st.RestartCount != 1 {
		t.Fatalf("after stop: state %s exit %d restarts %d", st.State, st.ExitCode, st.RestartCount)
	}
	if processAlive(st.ContainerPid, st.ContainerStartTime) {
		t.Fatal("container still runs after stop")
	}
}

// Acceptance 3: a healthcheck that passes after 2 s turns healthy; a failing one unhealthy
// with its last output kept.
func TestHealthcheck(t *testing.T) {
	t.Run("healthy", func(t *testing.T) {
		f := newFixture(t, `usleep 2000000; touch /tmp/ready; while true; do usleep 50000; done`)
		f.cfg.StopTimeout = 100 * time.Millisecond
		f.cfg.Healthcheck = &Healthcheck{
			Test:     []string{"CMD-SHELL", "test -f /tmp/ready || { echo not ready; exit 1; }"},
			Interval: 300 * time.Millisecond, Timeout: 5 * time.Second, Retries: 2,
			StartPeriod: 10 * time.Second, StartInterval: 200 * time.Millisecond,
		}
		f.launch(f.cfg)
		st, err := Inspect(f.cfg.StateDir, f.cfg.RunDir)
		if err != nil {
			t.Fatal(err)
		}
		if st.Health == nil || st.Health.Status != HealthStarting {
			t.Fatalf("health right after start: %+v", st.Health)
		}
		st = f.waitFor("healthy", 20*time.Second, func(s *Status) bool { return s.Health != nil && s.Health.Status == HealthHealthy })
		var sawFailure bool
		for _, p := range st.Health.Log {
			sawFailure = sawFailure || (p.ExitCode == 1 && p.Output == "not ready\n")
		}
		if !sawFailure || st.Health.FailingStreak != 0 {
			t.Errorf("expected failing probes before the healthy one: %+v", st.Health.Log)
		}
	})
	t.Run("unhealthy", func(t *testing.T) {
		f := newFixture(t, `while true; do usleep 50000; done`)
		f.cfg.StopTimeout = 100 * time.Millisecond
		f.cfg.Healthcheck = &Healthcheck{
			Test:     []string{"CMD", "sh", "-c", "echo not ok; exit 1"},
			Interval: 200 * time.Millisecond, Timeout: 5 * time.Second, Retries: 2,
		}
		f.launch(f.cfg)
		st := f.waitFor("unhealthy", 20*time.Second, func(s *Status) bool { return s.Health != nil && s.Health.Status == HealthUnhealthy })
		last := st.Health.Log[len(st.Health.Log)-1]
		if last.ExitCode != 1 || last.Output != "not ok\n" || st.Health.FailingStreak < 2 {
			t.Fatalf("health %+v", st.Health)
		}
	})
}

// Acceptance 4: the container survives kill -9 of its monitor, is reported unsupervised, and a
// monitor in adopt mode restores supervision and logging.
func TestAdoptAfterMonitorKill(t *testing.T) {
	f := newFixture(t, `i=0; while true; do echo "tick $i"; i=$((i+1)); usleep 20000; done`)
	f.cfg.StopTimeout = 100 * time.Millisecond
	h := f.launch(f.cfg)
	st := f.waitFor("running", 10*time.Second, func(s *Status) bool { return s.State == StateRunning })
	if err := syscall.Kill(h.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-h.Done()
	un := f.waitFor("unsupervised", 10*time.Second, func(s *Status) bool { return s.Unsupervised })
	if un.State != StateRunning || un.ContainerPid != st.ContainerPid || !processAlive(st.ContainerPid, st.ContainerStartTime) {
		t.Fatalf("after monitor kill: %+v", un)
	}
	before := len(f.logs(LogOptions{}))

	adopt := f.cfg
	adopt.Adopt = true
	f.launch(adopt)
	st = f.waitFor("supervised again", 10*time.Second, func(s *Status) bool { return !s.Unsupervised && s.Adopted && s.State == StateRunning })
	if st.ContainerPid != un.ContainerPid {
		t.Fatalf("adopted pid %d, container pid %d", st.ContainerPid, un.ContainerPid)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(f.logs(LogOptions{})) < before+20 {
		if time.Now().After(deadline) {
			t.Fatal("logs did not resume after adoption")
		}
		time.Sleep(50 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := Stop(ctx, f.cfg.StateDir, f.cfg.RunDir, 0, 0); err != nil {
		t.Fatal(err)
	}
	st, err := Inspect(f.cfg.StateDir, f.cfg.RunDir)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != StateStopped || st.ExitCode != -1 {
		t.Fatalf("adopted container after stop: state %s exit %d (its exit status is not ours to collect)", st.State, st.ExitCode)
	}
}

// Stop without a monitor stops the container directly and records it.
func TestStopUnsupervised(t *testing.T) {
	f := newFixture(t, `while true; do usleep 20000; done`)
	f.cfg.Restart = RestartPolicy{Name: RestartAlways}
	h := f.launch(f.cfg)
	st := f.waitFor("running", 10*time.Second, func(s *Status) bool { return s.State == StateRunning })
	syscall.Kill(h.Pid, syscall.SIGKILL)
	<-h.Done()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := Stop(ctx, f.cfg.StateDir, f.cfg.RunDir, 0, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if processAlive(st.ContainerPid, st.ContainerStartTime) {
		t.Fatal("container still runs")
	}
	got, err := Inspect(f.cfg.StateDir, f.cfg.RunDir)
	if err != nil || got.State != StateStopped || got.Unsupervised {
		t.Fatalf("after stop: %+v, %v", got, err)
	}
	if err := Restart(ctx, f.cfg.StateDir, f.cfg.RunDir, 0); !errors.Is(err, ErrNotSupervised) {
		t.Fatalf("restart without monitor: %v", err)
	}
}

// Acceptance 5: an exec's exit code comes back through OCIRuntime.
func TestExecExitCode(t *testing.T) {
	f := newFixture(t, `while true; do usleep 50000; done`)
	f.cfg.StopTimeout = 100 * time.Millisecond
	f.launch(f.cfg)
	f.waitFor("running", 10*time.Second, func(s *Status) bool { return s.State == StateRunning })
	var rt OCIRuntime
	rt, err := NewRunc(f.runc, f.cfg.RuntimeRoot)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out strings.Builder
	code, err := rt.Exec(ctx, f.cfg.ID, ExecProcess{Args: []string{"sh", "-c", "echo hi; exit 7"}, Stdout: &out})
	if err != nil || code != 7 || out.String() != "hi\n" {
		t.Fatalf("exec: code %d, err %v, output %q", code, err, out.String())
	}
	if code, err := rt.Exec(ctx, "stk-t-nosuchcontainer", ExecProcess{Args: []string{"true"}}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("exec in a missing container: code %d, err %v", code, err)
	}
	s, err := rt.State(ctx, f.cfg.ID)
	if err != nil || s.Status != "running" {
		t.Fatalf("state: %+v, %v", s, err)
	}

	// A second monitor for the same container is refused and leaves the first in charge.
	_, err = Launch(ctx, f.cfg)
	var se *StepError
	if !errors.As(err, &se) || se.Step != "lock" {
		t.Fatalf("second launch: %v", err)
	}
	if st, err := Inspect(f.cfg.StateDir, f.cfg.RunDir); err != nil || st.Unsupervised || st.State != StateRunning {
		t.Fatalf("after a refused second monitor: %+v, %v", st, err)
	}
}

// A failing setup step is reported by name.
func TestLaunchReportsFailedStep(t *testing.T) {
	f := newFixture(t, `true`)
	os.Remove(filepath.Join(f.bundle, "config.json"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := Launch(ctx, f.cfg)
	var se *StepError
	if !errors.As(err, &se) || se.Step != "create" {
		t.Fatalf("launch with a broken bundle: %v", err)
	}
}

// Restart replaces the run outside the policy; Kill counts as the user's stop.
func TestRestartAndKill(t *testing.T) {
	f := newFixture(t, `trap 'exit 0' TERM; while true; do usleep 20000; done`)
	f.cfg.Restart = RestartPolicy{Name: RestartUnlessStopped}
	h := f.launch(f.cfg)
	st := f.waitFor("running", 10*time.Second, func(s *Status) bool { return s.State == StateRunning })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := Restart(ctx, f.cfg.StateDir, f.cfg.RunDir, 0); err != nil {
		t.Fatal(err)
	}
	after, err := Inspect(f.cfg.StateDir, f.cfg.RunDir)
	if err != nil {
		t.Fatal(err)
	}
	if after.State != StateRunning || after.ContainerPid == st.ContainerPid || after.RestartCount != 0 {
		t.Fatalf("after restart: state %s pid %d (was %d) restarts %d", after.State, after.ContainerPid, st.ContainerPid, after.RestartCount)
	}
	if err := Kill(ctx, f.cfg.StateDir, f.cfg.RunDir, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-h.Done()
	final, err := Inspect(f.cfg.StateDir, f.cfg.RunDir)
	if err != nil {
		t.Fatal(err)
	}
	if final.State != StateStopped || final.ExitCode != 137 || final.Signal != int(syscall.SIGKILL) {
		t.Fatalf("after kill: state %s exit %d signal %d", final.State, final.ExitCode, final.Signal)
	}
}

// A container killed by the kernel's OOM killer is recorded as such.
func TestOOMKilled(t *testing.T) {
	f := newFixture(t, `dd if=/dev/zero of=/dev/null bs=64M count=1`)
	var spec map[string]any
	if err := state.ReadJSON(filepath.Join(f.bundle, "config.json"), &spec); err != nil {
		t.Fatal(err)
	}
	spec["linux"].(map[string]any)["resources"] = map[string]any{"memory": map[string]any{"limit": 16 << 20, "swap": 16 << 20}}
	b, _ := json.Marshal(spec)
	if err := os.WriteFile(filepath.Join(f.bundle, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("busybox", filepath.Join(f.bundle, "rootfs/bin/dd")); err != nil {
		t.Fatal(err)
	}
	h := f.launch(f.cfg)
	<-h.Done()
	st, err := Inspect(f.cfg.StateDir, f.cfg.RunDir)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != StateExited || !st.OOMKilled || st.ExitCode != 137 {
		t.Fatalf("status: state %s exit %d oom %v", st.State, st.ExitCode, st.OOMKilled)
	}
}

// launcherMode makes the test binary act as a short-lived `stack up`: launch one monitor from
// the Config in $STK_TEST_LAUNCH_CONFIG, print its pid, exit.
const launcherMode = "test-launcher"

func launcherMain() {
	var cfg Config
	if err := json.Unmarshal([]byte(os.Getenv("STK_TEST_LAUNCH_CONFIG")), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h, err := Launch(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(h.Pid)
	os.Exit(0)
}

// The monitor outlives the command that launched it, in its own session, without a terminal,
// with its stdio on /dev/null.
func TestMonitorOutlivesLauncher(t *testing.T) {
	f := newFixture(t, `while true; do usleep 50000; done`)
	f.cfg.StopTimeout = 100 * time.Millisecond
	b, _ := json.Marshal(f.cfg)
	cmd := exec.Command("/proc/self/exe", launcherMode)
	cmd.Env = append(os.Environ(), "STK_TEST_LAUNCH_CONFIG="+string(b))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("launcher: %v", err)
	}
	var pid int
	fmt.Sscan(string(out), &pid)
	_, start, err := procStat(pid)
	if err != nil {
		t.Fatalf("monitor %d is gone after its launcher exited: %v", pid, err)
	}
	t.Cleanup(func() {
		if processAlive(pid, start) {
			syscall.Kill(pid, syscall.SIGKILL) // the monitor this test launched, checked by start time
		}
	})
	st := f.waitFor("running", 10*time.Second, func(s *Status) bool { return s.State == StateRunning })
	if st.MonitorPid != pid || st.Unsupervised {
		t.Fatalf("record names monitor %d (unsupervised %v), launched %d", st.MonitorPid, st.Unsupervised, pid)
	}
	statb, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(string(statb[strings.LastIndexByte(string(statb), ')')+1:]))
	if fields[1] == fmt.Sprint(cmd.Process.Pid) || fields[3] != fmt.Sprint(pid) || fields[4] != "0" {
		t.Errorf("monitor ppid %s session %s tty %s: want a new session without a terminal", fields[1], fields[3], fields[4])
	}
	for fd := 0; fd <= 2; fd++ {
		if target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", pid, fd)); target != os.DevNull {
			t.Errorf("monitor fd %d is %s, want %s", fd, target, os.DevNull)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := Stop(ctx, f.cfg.StateDir, f.cfg.RunDir, 0, 0); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for processAlive(pid, start) {
		if time.Now().After(deadline) {
			t.Fatal("monitor still runs after its container stopped")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A stop while the policy waits to restart ends supervision for good.
func TestStopDuringBackoff(t *testing.T) {
	f := newFixture(t, `exit 1`)
	f.cfg.Restart = RestartPolicy{Name: RestartOnFailure}
	h := f.launch(f.cfg)
	f.waitFor("a few restarts", 30*time.Second, func(s *Status) bool { return s.RestartCount >= 3 })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := Stop(ctx, f.cfg.StateDir, f.cfg.RunDir, 0, 0); err != nil {
		t.Fatal(err)
	}
	<-h.Done()
	st, err := Inspect(f.cfg.StateDir, f.cfg.RunDir)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != StateStopped || !st.StopRequested {
		t.Fatalf("after stop: %+v", st)
	}
}
