package engine_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stackrun/stack/engine"
	"github.com/stackrun/stack/planner"
)

// TestOneOff: a one-off container is recorded with its label and listed by Records, but
// Observe leaves it out, so the plan neither counts it as a replica nor removes it as an
// orphan; RemoveOneOff removes it and its record.
func TestOneOff(t *testing.T) {
	f := newFixture(t)
	st := stack(svc("web", withVolume))
	ctx := context.Background()
	if _, err := f.up(t, st, planner.Options{}, engine.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	f.host.ResetCalls()
	rec, err := f.eng.CreateOneOff(ctx, engine.OneOff{Stack: st, Service: st.Services["web"]})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Labels[engine.LabelOneOff] != "true" || !strings.HasPrefix(rec.Name, "demo-web-run-") || rec.Phase != engine.RecordCreated {
		t.Errorf("one-off record: %+v", rec)
	}
	var calls []string
	for _, c := range f.host.Calls() {
		calls = append(calls, c.Op)
	}
	if got := strings.Join(calls, " "); !strings.HasSuffix(got, "create attach") {
		t.Errorf("calls: %s", got)
	}
	recs, _ := f.eng.Records()
	if len(recs) != 2 {
		t.Fatalf("records: %d, want the replica and the one-off", len(recs))
	}
	for _, opts := range []planner.Options{{}, {RemoveOrphans: true}, {Scale: map[string]int{"web": 1}}} {
		if p := f.plan(t, st, opts); !p.Empty() {
			t.Errorf("plan with a one-off (%+v): %d actions", opts, len(p.Actions))
		}
	}
	if err := f.eng.RemoveOneOff(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.host.Container(rec.ID); ok {
		t.Error("one-off container left on the host")
	}
	if recs, _ := f.eng.Records(); len(recs) != 1 {
		t.Errorf("records after RemoveOneOff: %d", len(recs))
	}

	// A down takes one-offs with it.
	rec, err = f.eng.CreateOneOff(ctx, engine.OneOff{Stack: st, Service: st.Services["web"]})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.up(t, st, planner.Options{Down: true, RemoveOrphans: true}, engine.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if recs, _ := f.eng.Records(); len(recs) != 0 {
		t.Errorf("records after down: %d", len(recs))
	}
	if ids := f.host.ContainerIDs(); len(ids) != 0 {
		t.Errorf("containers after down: %v", ids)
	}
}
