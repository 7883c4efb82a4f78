package planner

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stackrun/stack/spec"
)

// savedFixture: a plan of a changed web (environment) saved, and its encoding.
func savedFixture(t *testing.T) (*spec.Stack, Observed, Options, *Saved, []byte) {
	t.Helper()
	web, db := svc("web", port(8080, 80)), svc("db")
	desired := stack(svc("web", port(8080, 80), env("A", "2")), db)
	obs := observed(ctr(web, 1), ctr(db, 1))
	opts := Options{Scale: map[string]int{"web": 1}}
	p, err := Compute(desired, obs, opts)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSaved(p, desired, obs, opts, Source{Files: []string{"/src/stack.yaml"}}, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	data, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return desired, obs, opts, s, data
}

func TestSavedRoundTrip(t *testing.T) {
	desired, obs, opts, _, data := savedFixture(t)
	s, err := DecodeSaved(data)
	if err != nil {
		t.Fatalf("decode what Encode wrote: %v\n%s", err, data)
	}
	if !IsSaved(data) {
		t.Error("IsSaved is false for a saved plan")
	}
	if ch := s.DesiredChanges(desired); ch != nil {
		t.Errorf("same stack: changes %v", ch)
	}
	if ch := s.ObservedChanges(obs, desired); ch != nil {
		t.Errorf("same host: changes %v", ch)
	}
	p, err := Compute(desired, obs, s.PlanOptions())
	if err != nil {
		t.Fatal(err)
	}
	if d := s.Differs(p); d != "" {
		t.Errorf("the plan computed again differs from the saved one: %s", d)
	}
	if p.Action("recreate container:web:1") == nil {
		t.Errorf("plan has no recreate of web: %v", p.Actions)
	}
	if got := s.PlanOptions(); got.Scale["web"] != 1 || len(got.Services) != 0 || opts.Scale["web"] != 1 {
		t.Errorf("options after the round trip: %+v", got)
	}
}

func TestSavedChanges(t *testing.T) {
	desired, obs, _, s, _ := savedFixture(t)

	other := stack(desired.Services["web"], svc("db", env("B", "1")), svc("cache"))
	ch := strings.Join(s.DesiredChanges(other), "; ")
	if ch != "service cache added; service db changed" {
		t.Errorf("changes of the stack: %q", ch)
	}
	// depends_on is not in the config hash but changes the plan: the digest covers it.
	dep := stack(desired.Services["web"], svc("db", dependsOn("web", spec.ConditionStarted, false)))
	if ch := s.DesiredChanges(dep); len(ch) != 1 || ch[0] != "service db changed" {
		t.Errorf("changes after adding depends_on: %v", ch)
	}

	gone := obs
	gone.Containers = obs.Containers[:1] // db's container removed
	ch = strings.Join(s.ObservedChanges(gone, desired), "; ")
	if !strings.Contains(ch, "gone: container:db:1 c-db-1 running") {
		t.Errorf("changes after db's container went: %q", ch)
	}
	// Images: one the stack does not use may come and go; one it uses may not change.
	unrelated := withImage(obs, "alpine:3", digestB)
	if ch := s.ObservedChanges(unrelated, desired); ch != nil {
		t.Errorf("an unrelated image pulled: changes %v", ch)
	}
	repulled := withImage(obs, "busybox:1", digestB)
	if ch := strings.Join(s.ObservedChanges(repulled, desired), "; "); ch != "gone: image:busybox:1 aaaa; new: image:busybox:1 bbbb" {
		t.Errorf("busybox:1 pulled again with another digest: %q", ch)
	}
	stopped := observed(obs.Containers[0], ctr(svc("db"), 1, status(StatusExited, 3)))
	ch = strings.Join(s.ObservedChanges(stopped, desired), "; ")
	if !strings.Contains(ch, "new: container:db:1 c-db-1 exited (3)") {
		t.Errorf("changes after db exited: %q", ch)
	}
}

func TestDecodeSavedRefuses(t *testing.T) {
	_, _, _, s, data := savedFixture(t)
	var planJSON bytes.Buffer
	p, _ := Compute(stack(svc("web")), Observed{Project: "demo"}, Options{})
	if err := p.WriteJSON(&planJSON); err != nil {
		t.Fatal(err)
	}
	// An edit that keeps the file consistent: checksum recomputed, the plan changed.
	forged := *s
	forged.Plan.Actions = forged.Plan.Actions[1:]
	forged.Checksum, _ = forged.sum()
	forgedData, _ := forged.Encode()
	for _, c := range []struct {
		name, data, want string
	}{
		{"truncated", string(data[:len(data)/2]), "not a saved plan (not valid JSON"},
		{"not JSON", "web\n", "not a saved plan (not valid JSON"},
		{"plan --format json", planJSON.String(), `not a saved plan (no "format": "stack-saved-plan"`},
		{"other version", strings.Replace(string(data), `"version": 1,`, `"version": 2,`, 1), "version 2; this stack reads saved plans of version 1 only"},
		{"edited reason", strings.Replace(string(data), `"reason": "running"`, `"reason": "stopped"`, 1), "changed after stack plan wrote it"},
		{"no fingerprint", strings.Replace(string(data), `"fingerprint": "`+s.Fingerprint+`"`, `"fingerprint": ""`, 1), "damaged: what the plan was made from"},
		{"unknown kind", strings.Replace(string(data), `"kind": "recreate container"`, `"kind": "explode container"`, 1), `unknown action kind "explode container"`},
		{"unknown field", strings.Replace(string(data), `"format":`, `"extra": 1, "format":`, 1), `damaged: json: unknown field "extra"`},
	} {
		if c.name == "edited reason" && !strings.Contains(string(data), `"reason": "running"`) {
			t.Fatalf("fixture has nothing unchanged (running):\n%s", data)
		}
		_, err := DecodeSaved([]byte(c.data))
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrInvalid with %q", c.name, err, c.want)
		}
	}
	// The forged file decodes (its checksum is right) but is not the plan of its inputs.
	got, err := DecodeSaved(forgedData)
	if err != nil {
		t.Fatal(err)
	}
	desired, obs, _, _, _ := savedFixture(t)
	p, _ = Compute(desired, obs, got.PlanOptions())
	if d := got.Differs(p); !strings.Contains(d, "now also") && !strings.Contains(d, "saved ") {
		t.Errorf("forged plan: Differs = %q", d)
	}
}

func TestNewSavedRefusesDown(t *testing.T) {
	st := stack(svc("web"))
	obs := observed()
	p, err := Compute(st, obs, Options{Down: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewSaved(p, st, obs, Options{Down: true}, Source{}, time.Now()); !errors.Is(err, ErrInvalid) {
		t.Errorf("saving a plan of down: %v, want ErrInvalid", err)
	}
}
