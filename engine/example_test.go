package engine_test

import (
	"github.com/stackrun/stack/spec/compose"

	"context"
	"strings"
	"testing"

	"github.com/stackrun/stack/engine"
	"github.com/stackrun/stack/engine/enginetest"
	"github.com/stackrun/stack/planner"
	"github.com/stackrun/stack/spec"
)

// TestExampleStack goes from the example stack file through spec.Load, the planner and the
// engine on fakes: up, a no-op second plan (the records' JSON round trip keeps the hash and
// config comparable), then an edit of one variable recreates exactly the service that uses it.
func TestExampleStack(t *testing.T) {
	load := func(env ...string) *spec.Stack {
		t.Helper()
		st, err := spec.Load(context.Background(), spec.Options{Files: []string{"../examples/stack.yaml"}, Environ: env, Loader: compose.Load})
		if err != nil {
			t.Fatalf("load example: %v", err)
		}
		return st
	}
	desired := load()
	h := enginetest.New()
	e, err := engine.New(h.Config(engine.Config{Project: desired.Name, Root: t.TempDir()}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Converge(context.Background(), desired, planner.Options{}, fast(engine.ApplyOptions{}), nil); err != nil {
		t.Fatal(err)
	}
	plan := func(d *spec.Stack) *planner.Plan {
		t.Helper()
		obs, err := e.Observe(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		p, err := planner.Compute(d, obs, planner.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	if p := plan(load()); !p.Empty() {
		var b strings.Builder
		p.WriteText(&b)
		t.Fatalf("second plan of the example is not a no-op:\n%s", b.String())
	}
	p := plan(load("EXAMPLE_TITLE=changed"))
	var got []string
	for _, a := range p.Actions {
		got = append(got, a.ID+" ("+a.Reason+")")
	}
	want := []string{
		"recreate container:web:1 (environment changed (environment.TITLE))",
		"start container:web:1 (environment changed (environment.TITLE))",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("plan after editing EXAMPLE_TITLE:\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}
