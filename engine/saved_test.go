package engine_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stackrun/stack/engine"
	"github.com/stackrun/stack/planner"
	"github.com/stackrun/stack/spec"
)

// save does what `stack plan -out` does: observe, plan, save; it returns the plan's text (what
// plan printed) and the file's bytes.
func (f *fixture) save(t *testing.T, desired *spec.Stack, popts planner.Options) (string, []byte) {
	t.Helper()
	obs, p := f.observeAndPlan(t, desired, popts)
	var text bytes.Buffer
	if err := p.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	s, err := planner.NewSaved(p, desired, obs, popts, planner.Source{Files: []string{"/src/stack.yaml"}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	data, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return text.String(), data
}

// byService maps each service to the id of its recorded container.
func (f *fixture) byService(t *testing.T) map[string]string {
	t.Helper()
	recs, err := f.eng.Records()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, r := range recs {
		out[r.Service] = r.ID
	}
	return out
}

// applySaved does what `stack apply FILE` does with the file's bytes; it returns the text of
// the plan it applied and the ids of the actions that finished.
func (f *fixture) applySaved(t *testing.T, desired *spec.Stack, data []byte) (string, []string, error) {
	t.Helper()
	s, err := planner.DecodeSaved(data)
	if err != nil {
		return "", nil, err
	}
	var mu sync.Mutex
	var done []string
	var text bytes.Buffer
	_, err = f.engine(t).ApplySaved(context.Background(), desired, s, fast(engine.ApplyOptions{OnEvent: func(e engine.Event) {
		mu.Lock()
		defer mu.Unlock()
		if e.Phase == engine.PhaseDone || e.Phase == engine.PhaseUnneeded {
			done = append(done, e.Action)
		}
	}}), func(p *planner.Plan) error { return p.WriteText(&text) })
	return text.String(), done, err
}

// TestApplySavedPlan: a fresh saved plan applies, and what it did is what plan printed: the
// same text, every printed action finished and nothing else.
func TestApplySavedPlan(t *testing.T) {
	f := newFixture(t)
	first := stack(svc("db"), svc("web", dep("db", spec.ConditionStarted, false)))
	if _, err := f.up(t, first, planner.Options{}, engine.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	before := f.byService(t)
	desired := stack(svc("db"), svc("web", dep("db", spec.ConditionStarted, false), env("A", "2")), svc("cache"))
	printed, data := f.save(t, desired, planner.Options{})

	applied, done, err := f.applySaved(t, desired, data)
	if err != nil {
		t.Fatalf("apply a fresh saved plan: %v", err)
	}
	if applied != printed {
		t.Errorf("applied plan:\n%s\nplan printed:\n%s", applied, printed)
	}
	var want []string
	for _, l := range strings.Split(printed, "\n") {
		// "  + create container:cache:1 (new)" -> "create container:cache:1"
		if f := strings.Fields(l); len(f) > 2 && (f[0] == "+" || f[0] == "-" || f[0] == "~") {
			want = append(want, f[1]+" "+f[2])
		}
	}
	slices.Sort(want)
	slices.Sort(done)
	if !slices.Equal(done, want) || len(want) == 0 {
		t.Errorf("actions done %v, plan printed %v", done, want)
	}
	after := f.byService(t)
	if len(after) != 3 || after["db"] != before["db"] || after["web"] == before["web"] || after["cache"] == "" {
		t.Errorf("containers %v -> %v: want db kept, web replaced, cache new", before, after)
	}
	// A saved plan is spent once applied: the host it was made from is gone.
	if _, _, err := f.applySaved(t, desired, data); !errors.Is(err, engine.ErrStale) {
		t.Errorf("apply the same saved plan twice: %v, want ErrStale", err)
	}
	f.checkConsistent(t)
}

// TestApplySavedRefusesChangedStack: the stack file (or the environment it interpolates)
// changed since the plan was made: refused, nothing done.
func TestApplySavedRefusesChangedStack(t *testing.T) {
	f := newFixture(t)
	desired := stack(svc("db"), svc("web"))
	_, data := f.save(t, desired, planner.Options{})
	for _, c := range []struct {
		name    string
		changed *spec.Stack
		want    string
	}{
		{"environment", stack(svc("db"), svc("web", env("A", "1"))), "service web changed"},
		{"service added", stack(svc("db"), svc("web"), svc("cache")), "service cache added"},
		{"scale", stack(svc("db"), svc("web", func(s *spec.Service) { s.Replicas = 2 })), "service web changed"},
	} {
		f.host.ResetCalls()
		_, _, err := f.applySaved(t, c.changed, data)
		if !errors.Is(err, engine.ErrStale) || !strings.Contains(err.Error(), "the stack changed since the plan was made ("+c.want+")") {
			t.Errorf("%s: %v, want ErrStale naming %q", c.name, err, c.want)
		}
		if calls := f.host.Calls(); len(calls) != 0 || len(f.host.ContainerIDs()) != 0 {
			t.Errorf("%s: refused apply made calls %v", c.name, calls)
		}
	}
}

// TestApplySavedRefusesChangedHost: a container added or removed between plan and apply (by
// another up or down): refused, nothing done, the change named.
func TestApplySavedRefusesChangedHost(t *testing.T) {
	f := newFixture(t)
	base := stack(svc("db"), svc("web"))
	if _, err := f.up(t, base, planner.Options{}, engine.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	desired := stack(svc("db"), svc("web", env("A", "2")))

	// Added: another up adds a container of cache.
	_, data := f.save(t, desired, planner.Options{})
	if _, err := f.up(t, stack(svc("db"), svc("web"), svc("cache")), planner.Options{}, engine.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	before := f.host.ContainerIDs()
	f.host.ResetCalls()
	_, _, err := f.applySaved(t, desired, data)
	if !errors.Is(err, engine.ErrStale) || !strings.Contains(err.Error(), "the host changed since the plan was made (new: container:cache:1") {
		t.Errorf("apply after a container was added: %v, want ErrStale naming container:cache:1", err)
	}
	if calls := f.host.Calls(); len(calls) != 0 || !slices.Equal(before, f.host.ContainerIDs()) {
		t.Errorf("refused apply made calls %v", calls)
	}

	// Removed: the cache container goes again (up with --remove-orphans) after the plan.
	_, data = f.save(t, stack(svc("db"), svc("web", env("A", "2")), svc("cache")), planner.Options{})
	if _, err := f.up(t, base, planner.Options{RemoveOrphans: true}, engine.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	before = f.host.ContainerIDs()
	f.host.ResetCalls()
	_, _, err = f.applySaved(t, stack(svc("db"), svc("web", env("A", "2")), svc("cache")), data)
	if !errors.Is(err, engine.ErrStale) || !strings.Contains(err.Error(), "gone: container:cache:1") {
		t.Errorf("apply after a container was removed: %v, want ErrStale naming container:cache:1", err)
	}
	if calls := f.host.Calls(); len(calls) != 0 || !slices.Equal(before, f.host.ContainerIDs()) {
		t.Errorf("refused apply made calls %v", calls)
	}
	f.checkConsistent(t)
}

// TestApplySavedRefusesBadFile: damaged files, other versions and other JSON are refused with
// the reason, before anything is observed or done.
func TestApplySavedRefusesBadFile(t *testing.T) {
	f := newFixture(t)
	desired := stack(svc("web"))
	_, data := f.save(t, desired, planner.Options{})
	for _, c := range []struct{ name, data, want string }{
		{"corrupt", string(data[:len(data)-20]), "not a saved plan (not valid JSON"},
		{"other version", strings.Replace(string(data), `"version": 1,`, `"version": 7,`, 1), "version 7; this stack reads saved plans of version 1 only"},
		{"edited", strings.Replace(string(data), `"reason": "new"`, `"reason": "whatever"`, 1), "changed after stack plan wrote it"},
	} {
		_, _, err := f.applySaved(t, desired, []byte(c.data))
		if !errors.Is(err, planner.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.want)
		}
	}
	if calls := f.host.Calls(); len(calls) != 0 {
		t.Errorf("refused files made calls %v", calls)
	}
	// A plan of another project.
	s, err := planner.DecodeSaved(data)
	if err != nil {
		t.Fatal(err)
	}
	other, err := engine.New(f.host.Config(engine.Config{Project: "other", Root: f.root}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.ApplySaved(context.Background(), desired, s, engine.ApplyOptions{}, nil); !errors.Is(err, engine.ErrInvalid) {
		t.Errorf("apply a plan of demo to project other: %v, want ErrInvalid", err)
	}
}

// TestDownRemovesImages: down --rmi all removes the images of the project's services, but
// keeps (with a warning) one that a container of another project uses; --rmi local only the
// images built for services without image:.
func TestDownRemovesImages(t *testing.T) {
	f := newFixture(t)
	f.host.SetImage("busybox:1", "sha256:b1")
	f.host.SetImage("alpine:3", "sha256:a3")
	f.host.SetImage("demo-app", "sha256:app")
	app := svc("app", func(s *spec.Service) { s.Image, s.Build = "demo-app", &spec.Build{Context: "/src"} })
	tool := svc("tool", func(s *spec.Service) { s.Image = "alpine:3" })
	desired := stack(svc("web"), app, tool)
	if _, err := f.up(t, desired, planner.Options{}, engine.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	// Another project runs busybox:1 too.
	other, err := engine.New(f.host.Config(engine.Config{Project: "shop", Root: f.root}))
	if err != nil {
		t.Fatal(err)
	}
	shop := stack(svc("front"))
	shop.Name = "shop"
	if _, err := other.Converge(context.Background(), shop, planner.Options{}, fast(engine.ApplyOptions{}), nil); err != nil {
		t.Fatal(err)
	}

	var warnings []string
	var mu sync.Mutex
	_, err = f.eng.Converge(context.Background(), desired, planner.Options{Down: true, RemoveOrphans: true, RemoveImages: planner.RemoveImagesAll},
		fast(engine.ApplyOptions{OnEvent: func(e engine.Event) {
			mu.Lock()
			defer mu.Unlock()
			if e.Phase == engine.PhaseWarning {
				warnings = append(warnings, e.Action+": "+e.Message)
			}
		}}), nil)
	if err != nil {
		t.Fatalf("down --rmi all: %v", err)
	}
	for ref, present := range map[string]bool{"busybox:1": true, "alpine:3": false, "demo-app": false} {
		if _, ok := f.host.Image(ref); ok != present {
			t.Errorf("after down --rmi all: image %s present %v, want %v", ref, ok, present)
		}
	}
	want := "remove image:busybox:1: image busybox:1 kept: still used by shop-front-1 (project shop)"
	if len(warnings) != 1 || warnings[0] != want {
		t.Errorf("warnings %q, want [%q]", warnings, want)
	}

	// --rmi local: only the built image goes.
	f.host.SetImage("alpine:3", "sha256:a3")
	f.host.SetImage("demo-app", "sha256:app")
	if _, err := f.up(t, desired, planner.Options{}, engine.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.up(t, desired, planner.Options{Down: true, RemoveImages: planner.RemoveImagesLocal}, engine.ApplyOptions{}); err != nil {
		t.Fatalf("down --rmi local: %v", err)
	}
	for ref, present := range map[string]bool{"busybox:1": true, "alpine:3": true, "demo-app": false} {
		if _, ok := f.host.Image(ref); ok != present {
			t.Errorf("after down --rmi local: image %s present %v, want %v", ref, ok, present)
		}
	}
}
