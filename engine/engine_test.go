package engine_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stackrun/stack/engine"
	"github.com/stackrun/stack/engine/enginetest"
	"github.com/stackrun/stack/planner"
	"github.com/stackrun/stack/spec"
	"github.com/stackrun/stack/state"
)

// hashOf stands in for spec's config hash in tests.
func hashOf(s *spec.Service) string {
	c := *s
	c.Replicas, c.PullPolicy, c.Profiles, c.DependsOn, c.Build, c.Hash = 0, "", nil, nil, nil, ""
	b, err := json.Marshal(c)
	if err != nil {
		panic(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

func svc(name string, opts ...func(*spec.Service)) *spec.Service {
	s := &spec.Service{
		Name:        name,
		Image:       "busybox:1",
		Environment: map[string]string{"SERVICE": name},
		Networks:    map[string]*spec.ServiceNetwork{"default": nil},
		Restart:     spec.RestartPolicy{Name: "no"},
		Replicas:    1,
	}
	for _, o := range opts {
		o(s)
	}
	s.Hash = hashOf(s)
	return s
}

func dep(name, cond string, restart bool) func(*spec.Service) {
	return func(s *spec.Service) {
		if s.DependsOn == nil {
			s.DependsOn = map[string]spec.Dependency{}
		}
		s.DependsOn[name] = spec.Dependency{Condition: cond, Restart: restart, Required: true}
	}
}

func healthcheck(s *spec.Service) {
	s.Healthcheck = &spec.Healthcheck{Test: []string{"CMD", "true"}, Interval: time.Second}
}

func env(k, v string) func(*spec.Service) {
	return func(s *spec.Service) { s.Environment[k] = v }
}

func withVolume(s *spec.Service) {
	s.Mounts = append(s.Mounts, spec.Mount{Type: spec.MountVolume, Source: "data", Target: "/data"})
}

func stack(services ...*spec.Service) *spec.Stack {
	st := &spec.Stack{
		Name:     "demo",
		Services: map[string]*spec.Service{},
		Networks: map[string]*spec.Network{"default": {Key: "default", Name: "demo_default"}},
		Volumes:  map[string]*spec.Volume{"data": {Key: "data", Name: "demo_data"}},
	}
	for _, s := range services {
		st.Services[s.Name] = s
	}
	return st
}

type fixture struct {
	host *enginetest.Host
	root string
	eng  *engine.Engine
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{host: enginetest.New(), root: t.TempDir()}
	f.eng = f.engine(t)
	return f
}

// engine returns another Engine on the same host and roots, as a second command would have.
func (f *fixture) engine(t *testing.T) *engine.Engine {
	t.Helper()
	e, err := engine.New(f.host.Config(engine.Config{Project: "demo", Root: f.root}))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func fast(opts engine.ApplyOptions) engine.ApplyOptions {
	opts.PollInterval = time.Millisecond
	opts.Lock.Poll = time.Millisecond
	return opts
}

func (f *fixture) up(t *testing.T, desired *spec.Stack, popts planner.Options, opts engine.ApplyOptions) (*planner.Plan, error) {
	t.Helper()
	return f.eng.Converge(context.Background(), desired, popts, fast(opts), nil)
}

// plan observes and plans without applying.
func (f *fixture) plan(t *testing.T, desired *spec.Stack, popts planner.Options) *planner.Plan {
	t.Helper()
	_, p := f.observeAndPlan(t, desired, popts)
	return p
}

// observeAndPlan observes and plans without applying; it returns what it observed too.
func (f *fixture) observeAndPlan(t *testing.T, desired *spec.Stack, popts planner.Options) (planner.Observed, *planner.Plan) {
	t.Helper()
	obs, err := f.eng.Observe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	p, err := planner.Compute(desired, obs, popts)
	if err != nil {
		t.Fatal(err)
	}
	return obs, p
}

// checkConsistent verifies that the records on disk and the fake runtime agree: every record
// names a container the runtime has, in a state its phase allows, and every container the
// runtime has is recorded.
func (f *fixture) checkConsistent(t *testing.T) {
	t.Helper()
	recs, err := f.eng.Records()
	if err != nil {
		t.Fatal(err)
	}
	recorded := map[string]bool{}
	for _, r := range recs {
		recorded[r.ID] = true
		st, ok := f.host.Container(r.ID)
		if !ok {
			t.Errorf("record %s (%s:%d, phase %s) names no container", r.ID[:12], r.Service, r.Number, r.Phase)
			continue
		}
		switch r.Phase {
		case engine.RecordCreated:
			if st.Status != planner.StatusCreated {
				t.Errorf("record %s says created, runtime says %s", r.Name, st.Status)
			}
		case engine.RecordStarted:
			if st.Status == planner.StatusCreated {
				t.Errorf("record %s says started, runtime says created", r.Name)
			}
		case engine.RecordCreating:
			t.Errorf("record %s left in phase creating", r.Name)
		}
	}
	for _, id := range f.host.ContainerIDs() {
		if !recorded[id] {
			t.Errorf("container %s exists in the runtime without a record", id[:12])
		}
	}
}

func TestUpThenNoop(t *testing.T) {
	f := newFixture(t)
	desired := stack(svc("db", healthcheck, withVolume), svc("web", dep("db", spec.ConditionHealthy, true)), svc("cache"))
	p, err := f.up(t, desired, planner.Options{}, engine.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Empty() {
		t.Fatal("first up planned nothing")
	}
	obs, err := f.eng.Observe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(obs.Containers) != 3 {
		t.Fatalf("observed %d containers, want 3", len(obs.Containers))
	}
	for _, c := range obs.Containers {
		if c.Status != planner.StatusRunning {
			t.Errorf("%s:%d is %s, want running", c.Service, c.Number, c.Status)
		}
		if c.Config == nil || c.Hash != desired.Services[c.Service].Hash || c.ImageDigest == "" {
			t.Errorf("%s:%d recorded without config, hash or digest: %+v", c.Service, c.Number, c)
		}
	}
	f.checkConsistent(t)

	f.host.ResetCalls()
	again := f.plan(t, desired, planner.Options{})
	if !again.Empty() {
		var b strings.Builder
		again.WriteText(&b)
		t.Fatalf("second plan is not a no-op:\n%s", b.String())
	}
	if _, err := f.up(t, desired, planner.Options{}, engine.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if calls := f.host.Calls(); len(calls) != 0 {
		t.Errorf("no-op up made calls: %v", calls)
	}
}

// dag20Roles says which of the 20 services are one-shots (exit 0 soon, needed by i+3 with
// service_completed_successfully: every fifth service) and which have a healthcheck (needed by
// i+2 with service_healthy: every third service, unless the dependency is a one-shot, whose
// health would race its exit).
func dag20Roles() (oneShot, healthy map[int]bool) {
	oneShot, healthy = map[int]bool{}, map[int]bool{}
	for i := 3; i < 20; i++ {
		if i%5 == 0 {
			oneShot[i-3] = true
		}
	}
	for i := 2; i < 20; i++ {
		if i%3 == 0 && !oneShot[i-2] {
			healthy[i-2] = true
		}
	}
	return oneShot, healthy
}

// dag20 is a stack of 20 services svc00..svc19 where service i depends on i-1 (started), and
// on the one-shot and healthy services of dag20Roles; it steers the fakes accordingly.
func dag20(h *enginetest.Host) *spec.Stack {
	var services []*spec.Service
	name := func(i int) string { return fmt.Sprintf("svc%02d", i) }
	oneShot, healthy := dag20Roles()
	for i := range 20 {
		var opts []func(*spec.Service)
		if i >= 1 {
			opts = append(opts, dep(name(i-1), spec.ConditionStarted, false))
		}
		if i >= 2 && healthy[i-2] {
			opts = append(opts, dep(name(i-2), spec.ConditionHealthy, false))
		}
		if i >= 3 && oneShot[i-3] {
			opts = append(opts, dep(name(i-3), spec.ConditionCompletedSuccessful, false))
		}
		if healthy[i] {
			opts = append(opts, healthcheck)
		}
		s := svc(name(i), opts...)
		services = append(services, s)
		h.Set(s.Name, behaviorOf(s))
	}
	return stack(services...)
}

func TestDAGStartsAfterConditions(t *testing.T) {
	f := newFixture(t)
	f.host.OpDelay = 2 * time.Millisecond
	desired := dag20(f.host)
	const bound = 3
	if _, err := f.up(t, desired, planner.Options{}, engine.ApplyOptions{Parallelism: bound}); err != nil {
		t.Fatal(err)
	}
	if got := f.host.MaxConcurrent(); got > bound {
		t.Errorf("max concurrent host calls %d, bound %d", got, bound)
	} else {
		t.Logf("max concurrent host calls: %d (bound %d)", got, bound)
	}
	// When each service started, each dependency had met its condition.
	startAt := map[string]time.Time{}
	for _, c := range f.host.Calls() {
		if c.Op == "start" {
			startAt[strings.Split(c.Resource, ":")[1]] = c.At
		}
	}
	if len(startAt) != 20 {
		t.Fatalf("%d services started, want 20", len(startAt))
	}
	// The fakes' behaviours fix when a dependency became healthy or completed, relative to its start.
	for _, s := range desired.Services {
		for d, dd := range s.DependsOn {
			ds, dStart := desired.Services[d], startAt[d]
			at := startAt[s.Name]
			var met time.Time
			switch dd.Condition {
			case spec.ConditionStarted:
				met = dStart
			case spec.ConditionHealthy:
				met = dStart.Add(behaviorOf(ds).HealthyAfter)
			case spec.ConditionCompletedSuccessful:
				met = dStart.Add(behaviorOf(ds).ExitAfter)
			}
			if at.Before(met) {
				t.Errorf("%s started at %s, before %s met %s (at %s)", s.Name, at.Format(time.StampMicro), d, dd.Condition, met.Format(time.StampMicro))
			}
		}
	}
	f.checkConsistent(t)
	if p := f.plan(t, desired, planner.Options{}); !p.Empty() {
		var b strings.Builder
		p.WriteText(&b)
		t.Errorf("plan after a full apply is not a no-op:\n%s", b.String())
	}
}

// behaviorOf is how dag20 steers a service's containers.
func behaviorOf(s *spec.Service) enginetest.Behavior {
	var i int
	fmt.Sscanf(s.Name, "svc%02d", &i)
	oneShot, healthy := dag20Roles()
	switch {
	case oneShot[i]:
		return enginetest.Behavior{ExitAfter: 15 * time.Millisecond}
	case healthy[i]:
		return enginetest.Behavior{HealthyAfter: 10 * time.Millisecond}
	}
	return enginetest.Behavior{}
}

func TestFailureStopsScheduling(t *testing.T) {
	f := newFixture(t)
	boom := errors.New("boom")
	f.host.Set("b", enginetest.Behavior{StartError: boom})
	desired := stack(svc("a"), svc("b", dep("a", spec.ConditionStarted, false)), svc("c", dep("b", spec.ConditionStarted, false)))
	var events []engine.Event
	var mu sync.Mutex
	_, err := f.up(t, desired, planner.Options{}, engine.ApplyOptions{Parallelism: 1, OnEvent: func(e engine.Event) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	}})
	var ae *engine.ActionError
	if !errors.As(err, &ae) || ae.Action != "start container:b:1" || !errors.Is(err, boom) {
		t.Fatalf("error = %v, want the failed start of b wrapping boom", err)
	}
	for _, c := range f.host.Calls() {
		if c.String() == "start container:c:1" {
			t.Error("c was started after b failed")
		}
	}
	var failed, skipped []string
	for _, e := range events {
		switch e.Phase {
		case engine.PhaseFailed:
			failed = append(failed, e.Action)
		case engine.PhaseSkipped:
			skipped = append(skipped, e.Action)
		}
	}
	if !slices.Equal(failed, []string{"start container:b:1"}) || !slices.Contains(skipped, "start container:c:1") {
		t.Errorf("events: failed %v, skipped %v", failed, skipped)
	}
	f.checkConsistent(t)

	// The next plan picks up where this one stopped.
	f.host.Set("b", enginetest.Behavior{})
	p := f.plan(t, desired, planner.Options{})
	var ids []string
	for _, a := range p.Actions {
		ids = append(ids, a.ID)
	}
	if !slices.Contains(ids, "start container:b:1") || !slices.Contains(ids, "start container:c:1") {
		t.Errorf("replan after failure: %v", ids)
	}
}

func TestCancelLeavesConsistentState(t *testing.T) {
	f := newFixture(t)
	f.host.OpDelay = 3 * time.Millisecond
	// db never becomes healthy within the test: web's start waits until cancelled.
	f.host.Set("db", enginetest.Behavior{HealthyAfter: time.Hour})
	services := []*spec.Service{svc("db", healthcheck), svc("web", dep("db", spec.ConditionHealthy, false))}
	for i := range 8 {
		services = append(services, svc(fmt.Sprintf("w%d", i)))
	}
	desired := stack(services...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := f.eng.Converge(ctx, desired, planner.Options{}, fast(engine.ApplyOptions{Parallelism: 2, OnEvent: func(e engine.Event) {
		if e.Phase == engine.PhaseWaiting && e.Action != "" {
			cancel()
		}
	}}), nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v, want context.Canceled", err)
	}
	f.checkConsistent(t)

	// Up converges from the recorded state. The fake fixes a container's behaviour at create,
	// so db is recreated to get one that becomes healthy.
	f.host.Set("db", enginetest.Behavior{})
	if _, err := f.up(t, desired, planner.Options{ForceRecreate: true}, engine.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	f.checkConsistent(t)
	if p := f.plan(t, desired, planner.Options{}); !p.Empty() {
		t.Errorf("not converged after cancel and re-up: %d actions", len(p.Actions))
	}
}

// TestApplyDoesWhatThePlanSays compares the host calls of an apply with the plan's actions.
func TestApplyDoesWhatThePlanSays(t *testing.T) {
	f := newFixture(t)
	v1 := stack(svc("db", withVolume), svc("web", dep("db", spec.ConditionStarted, true)), svc("cache"), svc("old"))
	if _, err := f.up(t, v1, planner.Options{Scale: map[string]int{"cache": 3}}, engine.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	// Change db (web follows with restart: true), scale cache down, drop old.
	v2 := stack(svc("db", withVolume, env("DB_HOST", "db2")), svc("web", dep("db", spec.ConditionStarted, true)), svc("cache"))
	for _, tc := range []struct {
		name    string
		desired *spec.Stack
		opts    planner.Options
	}{
		{"change", v2, planner.Options{Scale: map[string]int{"cache": 1}, RemoveOrphans: true}},
		{"down", nil, planner.Options{Down: true, RemoveVolumes: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := f.plan(t, tc.desired, tc.opts)
			f.host.ResetCalls()
			if err := f.eng.Apply(context.Background(), p, fast(engine.ApplyOptions{})); err != nil {
				t.Fatal(err)
			}
			var want, got []string
			for _, a := range p.Actions {
				switch a.Kind {
				case planner.RecreateContainer:
					want = append(want, "create "+a.Resource, "stop "+a.Resource, "remove "+a.Resource)
				case planner.CreateNetwork, planner.CreateVolume:
					want = append(want, "ensure "+a.Resource)
				default:
					want = append(want, a.Kind.Verb()+" "+a.Resource)
				}
			}
			for _, c := range f.host.Calls() {
				if c.Op != "attach" && c.Op != "publish" {
					got = append(got, c.String())
				}
			}
			slices.Sort(want)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("apply did\n  %s\nplan said\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			}
			f.checkConsistent(t)
		})
	}
	if ids := f.host.ContainerIDs(); len(ids) != 0 {
		t.Errorf("containers left after down: %v", ids)
	}
	obs, _ := f.eng.Observe(context.Background())
	if len(obs.Networks)+len(obs.Volumes)+len(obs.Containers) != 0 {
		t.Errorf("left after down -v: %+v", obs)
	}
	if projects, _ := engine.Projects(f.root); len(projects) != 0 {
		t.Errorf("projects left after down: %v", projects)
	}
}

func TestRecreateKeepsOldWhenCreateFails(t *testing.T) {
	f := newFixture(t)
	if _, err := f.up(t, stack(svc("web")), planner.Options{}, engine.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	before := f.host.ContainerIDs()
	f.host.Set("web", enginetest.Behavior{CreateError: errors.New("no space left")})
	_, err := f.up(t, stack(svc("web", env("A", "1"))), planner.Options{}, engine.ApplyOptions{})
	if err == nil || !strings.Contains(err.Error(), "recreate container:web:1") {
		t.Fatalf("error = %v, want the failed recreate", err)
	}
	if after := f.host.ContainerIDs(); !slices.Equal(before, after) {
		t.Errorf("containers %v after failed recreate, want the old %v", after, before)
	}
	if st, _ := f.host.Container(before[0]); st.Status != planner.StatusRunning {
		t.Errorf("old container is %s after failed recreate, want running", st.Status)
	}
	f.checkConsistent(t)
}

// TestRecreateWithFixedPort: the replacement takes the host port only after the old container
// released it, so create-before-destroy works with published ports.
func TestRecreateWithFixedPort(t *testing.T) {
	f := newFixture(t)
	port := func(s *spec.Service) { s.Ports = []spec.Port{{Published: 8080, Target: 80, Protocol: "tcp"}} }
	if _, err := f.up(t, stack(svc("web", port)), planner.Options{}, engine.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.up(t, stack(svc("web", port, env("A", "1"))), planner.Options{}, engine.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	ids := f.host.ContainerIDs()
	if len(ids) != 1 {
		t.Fatalf("containers %v, want one", ids)
	}
	if st, _ := f.host.Container(ids[0]); st.Status != planner.StatusRunning {
		t.Errorf("replacement is %s, want running", st.Status)
	}
	f.checkConsistent(t)
}

func TestConditionFailures(t *testing.T) {
	tests := []struct {
		name     string
		behavior enginetest.Behavior
		dep      *spec.Service
		cond     string
		want     string
	}{
		{"completed with failure", enginetest.Behavior{ExitAfter: time.Millisecond, ExitCode: 3}, svc("init"), spec.ConditionCompletedSuccessful, "exited with code 3"},
		{"unhealthy", enginetest.Behavior{Unhealthy: true}, svc("init", healthcheck), spec.ConditionHealthy, "is unhealthy"},
		{"no healthcheck", enginetest.Behavior{}, svc("init"), spec.ConditionHealthy, "has no healthcheck"},
		{"exited before healthy", enginetest.Behavior{ExitAfter: time.Millisecond, HealthyAfter: time.Hour, OOM: true}, svc("init", healthcheck), spec.ConditionHealthy, "exited (137)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.host.Set("init", tt.behavior)
			_, err := f.up(t, stack(tt.dep, svc("app", dep("init", tt.cond, false))), planner.Options{}, engine.ApplyOptions{})
			if !errors.Is(err, engine.ErrFailed) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want ErrFailed with %q", err, tt.want)
			}
			f.checkConsistent(t)
		})
	}
}

func TestConcurrentConvergeSerializes(t *testing.T) {
	f := newFixture(t)
	f.host.OpDelay = 2 * time.Millisecond
	desired := stack(svc("a"), svc("b"), svc("c", dep("a", spec.ConditionStarted, false)))
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range 2 {
		e := f.engine(t) // a separate command
		wg.Go(func() {
			_, errs[i] = e.Converge(context.Background(), desired, planner.Options{}, fast(engine.ApplyOptions{}), nil)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	creates := 0
	for _, c := range f.host.Calls() {
		if c.Op == "create" {
			creates++
		}
	}
	if creates != 3 || len(f.host.ContainerIDs()) != 3 {
		t.Errorf("%d creates, %d containers after two concurrent ups, want 3 and 3", creates, len(f.host.ContainerIDs()))
	}
	f.checkConsistent(t)
}

func TestLockNoWaitAndStalePlan(t *testing.T) {
	f := newFixture(t)
	desired := stack(svc("a"))
	lock, err := f.eng.Lock(context.Background(), engine.LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.engine(t).Converge(context.Background(), desired, planner.Options{}, engine.ApplyOptions{Lock: engine.LockOptions{NoWait: true}}, nil)
	if !errors.Is(err, engine.ErrLocked) {
		t.Errorf("Converge while locked with NoWait: %v, want ErrLocked", err)
	}
	var waited string
	ctx, cancel := context.WithCancel(context.Background())
	_, err = f.engine(t).Converge(ctx, desired, planner.Options{}, engine.ApplyOptions{Lock: engine.LockOptions{
		Poll: time.Millisecond, OnWait: func(msg string) { waited = msg; cancel() }}}, nil)
	if !errors.Is(err, context.Canceled) || !strings.Contains(waited, "waiting for another stack command") {
		t.Errorf("waiting Converge: err %v, message %q", err, waited)
	}
	lock.Unlock()

	p := f.plan(t, desired, planner.Options{})
	if _, err := f.up(t, desired, planner.Options{}, engine.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := f.eng.Apply(context.Background(), p, fast(engine.ApplyOptions{})); !errors.Is(err, engine.ErrStale) {
		t.Errorf("applying a plan made before another up: %v, want ErrStale", err)
	}
	if n := len(f.host.ContainerIDs()); n != 1 {
		t.Errorf("%d containers, want 1", n)
	}
}

func TestObserveOwnershipAndMissing(t *testing.T) {
	f := newFixture(t)
	if _, err := f.up(t, stack(svc("a"), svc("b")), planner.Options{}, engine.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	recs, _ := f.eng.Records()
	// A record of another project copied into this project's directory is not ours.
	foreign := *recs[0]
	foreign.ID, foreign.Project = "f00", "other"
	foreign.Labels = map[string]string{engine.LabelProject: "other"}
	if err := state.WriteJSON(filepath.Join(f.root, "projects", "demo", "containers", "f00.json"), &foreign); err != nil {
		t.Fatal(err)
	}
	// The runtime lost b (a reboot wiped its state).
	var bID string
	for _, r := range recs {
		if r.Service == "b" {
			bID = r.ID
		}
	}
	f.host.Lose(bID)
	obs, err := f.eng.Observe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]planner.ContainerStatus{}
	for _, c := range obs.Containers {
		got[c.ID] = c.Status
	}
	if len(got) != 2 || got[bID] != planner.StatusMissing {
		t.Errorf("observed %v, want a and b (missing) only", got)
	}
	if _, err := f.up(t, stack(svc("a"), svc("b")), planner.Options{}, engine.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(f.root, "projects", "demo", "containers", bID+".json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("record of the lost container is still there: %v", err)
	}
	if p := f.plan(t, stack(svc("a"), svc("b")), planner.Options{}); !p.Empty() {
		t.Errorf("not converged after replacing the lost container")
	}
}

func BenchmarkNoopUp30(b *testing.B) {
	h := enginetest.New()
	root := b.TempDir()
	e, err := engine.New(h.Config(engine.Config{Project: "demo", Root: root}))
	if err != nil {
		b.Fatal(err)
	}
	var services []*spec.Service
	for i := range 30 {
		var opts []func(*spec.Service)
		if i > 0 {
			opts = append(opts, dep(fmt.Sprintf("s%02d", i-1), spec.ConditionStarted, true))
		}
		services = append(services, svc(fmt.Sprintf("s%02d", i), opts...))
	}
	desired := stack(services...)
	if _, err := e.Converge(context.Background(), desired, planner.Options{}, engine.ApplyOptions{}, nil); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		p, err := e.Converge(context.Background(), desired, planner.Options{}, engine.ApplyOptions{}, nil)
		if err != nil || !p.Empty() {
			b.Fatalf("not a no-op: %v", err)
		}
	}
}

func TestWaitReady(t *testing.T) {
	f := newFixture(t)
	f.host.Set("db", enginetest.Behavior{HealthyAfter: 20 * time.Millisecond})
	f.host.Set("migrate", enginetest.Behavior{ExitAfter: 10 * time.Millisecond})
	desired := stack(svc("db", healthcheck), svc("migrate"),
		svc("app", dep("migrate", spec.ConditionCompletedSuccessful, false)))
	if _, err := f.up(t, desired, planner.Options{}, engine.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := f.eng.WaitReady(context.Background(), desired, nil, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	for _, id := range f.host.ContainerIDs() {
		st, _ := f.host.Container(id)
		if st.Status == planner.StatusRunning && st.Health == "starting" {
			t.Errorf("WaitReady returned while a container is still starting")
		}
	}

	f.host.Set("crash", enginetest.Behavior{ExitAfter: time.Millisecond, ExitCode: 1})
	crashing := stack(svc("crash"))
	if _, err := f.up(t, crashing, planner.Options{}, engine.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := f.eng.WaitReady(context.Background(), crashing, nil, time.Millisecond); !errors.Is(err, engine.ErrFailed) {
		t.Errorf("WaitReady on a crashing service: %v, want ErrFailed", err)
	}
}

// TestPullAlwaysRecreatesOnlyWhenTheDigestChanges: with --pull always the new digest is known
// only after the pull; the conditional recreates in the plan run only if it changed, and
// dependents with depends_on.restart follow.
func TestPullAlwaysRecreatesOnlyWhenTheDigestChanges(t *testing.T) {
	f := newFixture(t)
	desired := stack(svc("db"), svc("web", dep("db", spec.ConditionStarted, true)),
		svc("proxy", dep("web", spec.ConditionStarted, true)),
		svc("worker", dep("db", spec.ConditionStarted, false), func(s *spec.Service) { s.Image = "alpine:1" }))
	if _, err := f.up(t, desired, planner.Options{}, engine.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	before := f.host.ContainerIDs()

	var mu sync.Mutex
	unneeded := 0
	opts := engine.ApplyOptions{OnEvent: func(e engine.Event) {
		mu.Lock()
		defer mu.Unlock()
		if e.Phase == engine.PhaseUnneeded {
			unneeded++
		}
	}}
	f.host.ResetCalls()
	if _, err := f.up(t, desired, planner.Options{Pull: planner.PullAlways}, opts); err != nil {
		t.Fatal(err)
	}
	var calls []string
	for _, c := range f.host.Calls() {
		calls = append(calls, c.String())
	}
	slices.Sort(calls)
	if want := []string{"pull image:alpine:1", "pull image:busybox:1"}; !slices.Equal(calls, want) {
		t.Errorf("pull with unchanged digests did %v, want only %v", calls, want)
	}
	if unneeded == 0 {
		t.Error("no action was reported as not needed")
	}
	if after := f.host.ContainerIDs(); !slices.Equal(before, after) {
		t.Errorf("containers changed although no digest did")
	}

	f.host.SetRemote("busybox:1", "sha256:new")
	f.host.ResetCalls()
	if _, err := f.up(t, desired, planner.Options{Pull: planner.PullAlways}, engine.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	created := map[string]bool{}
	for _, c := range f.host.Calls() {
		if c.Op == "create" {
			created[c.Resource] = true
		}
	}
	want := map[string]bool{"container:db:1": true, "container:web:1": true, "container:proxy:1": true}
	if !maps.Equal(created, want) {
		t.Errorf("recreated %v after a new digest, want %v", created, want)
	}
	obs, _ := f.eng.Observe(context.Background())
	for _, c := range obs.Containers {
		if c.Status != planner.StatusRunning {
			t.Errorf("%s:%d is %s", c.Service, c.Number, c.Status)
		}
	}
	f.checkConsistent(t)
	if p := f.plan(t, desired, planner.Options{}); !p.Empty() {
		t.Errorf("not converged after the pull")
	}
}

func TestProjectsAndImagesInUse(t *testing.T) {
	f := newFixture(t)
	if _, err := f.up(t, stack(svc("a")), planner.Options{}, engine.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	projects, err := engine.Projects(f.root)
	if err != nil || !slices.Equal(projects, []string{"demo"}) {
		t.Errorf("Projects = %v, %v", projects, err)
	}
	used, err := engine.ImagesInUse(f.root)
	recs, _ := engine.RecordsOf(f.root, "demo")
	if err != nil || len(recs) != 1 || !used[recs[0].ImageDigest] || len(used) != 1 {
		t.Errorf("ImagesInUse = %v, %v; records %d", used, err, len(recs))
	}
}

// TestDependentStartsWhileDependencyScalesDown: replicas being removed do not count for (or
// break) the condition check of a dependent starting at the same time.
func TestDependentStartsWhileDependencyScalesDown(t *testing.T) {
	f := newFixture(t)
	f.host.Set("x", enginetest.Behavior{StopDelay: 20 * time.Millisecond})
	if _, err := f.up(t, stack(svc("x", healthcheck)), planner.Options{Scale: map[string]int{"x": 3}}, engine.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	desired := stack(svc("x", healthcheck), svc("y", dep("x", spec.ConditionHealthy, false)))
	if _, err := f.up(t, desired, planner.Options{}, engine.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	f.checkConsistent(t)
	if n := len(f.host.ContainerIDs()); n != 2 {
		t.Errorf("%d containers, want x:1 and y:1", n)
	}
}

// A new container's id never shares the prefix that names its cgroup (12 characters) with
// another container of the project: an id that would is drawn again.
func TestContainerIDPrefixUnique(t *testing.T) {
	f := &fixture{host: enginetest.New(), root: t.TempDir()}
	ids := []string{
		"aaaaaaaaaaaa" + strings.Repeat("1", 52),
		"aaaaaaaaaaaa" + strings.Repeat("2", 52), // same cgroup name as the first
		"bbbbbbbbbbbb" + strings.Repeat("3", 52),
	}
	e, err := engine.New(f.host.Config(engine.Config{Project: "demo", Root: f.root, NewID: func() string {
		id := ids[0]
		ids = ids[1:]
		return id
	}}))
	if err != nil {
		t.Fatal(err)
	}
	f.eng = e
	desired := stack(svc("a"))
	if _, err := f.up(t, desired, planner.Options{}, engine.ApplyOptions{Parallelism: 1}); err != nil {
		t.Fatal(err)
	}
	desired.Services["b"] = svc("b")
	if _, err := f.up(t, desired, planner.Options{}, engine.ApplyOptions{Parallelism: 1}); err != nil {
		t.Fatal(err)
	}
	got := f.byService(t)
	if got["a"][:12] == got["b"][:12] {
		t.Fatalf("containers a %s and b %s share their cgroup name", got["a"], got["b"])
	}
	if !strings.HasPrefix(got["b"], "bbbbbbbbbbbb") || len(ids) != 0 {
		t.Fatalf("b = %s, ids left %d: the colliding id was not drawn again", got["b"], len(ids))
	}
}
