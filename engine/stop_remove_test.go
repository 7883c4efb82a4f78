package engine_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stackrun/stack/engine"
	"github.com/stackrun/stack/planner"
)

// stopToRemover is the fake's containers with engine.StopToRemover: it records which
// containers were stopped that way, and stops them as Stop does.
type stopToRemover struct {
	engine.Containers
	mu  sync.Mutex
	ids []string
}

func (s *stopToRemover) StopToRemove(ctx context.Context, id string, timeout time.Duration) error {
	s.mu.Lock()
	s.ids = append(s.ids, id)
	s.mu.Unlock()
	return s.Containers.Stop(ctx, id, timeout)
}

// TestStopToRemove: down and a recreate stop the containers they remove through StopToRemove
// (so a monitor can leave the runtime's record to Remove); a plain stop never does.
func TestStopToRemove(t *testing.T) {
	f := newFixture(t)
	str := &stopToRemover{Containers: f.host.Containers()}
	cfg := f.host.Config(engine.Config{Project: "demo", Root: f.root})
	cfg.Containers = str
	e, err := engine.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.eng = e
	if _, err := f.up(t, stack(svc("web"), svc("db")), planner.Options{}, engine.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if len(str.ids) != 0 {
		t.Fatalf("up from nothing stopped %v to remove them", str.ids)
	}
	before := f.host.ContainerIDs()

	// A recreate of web: the old web is stopped to be removed, db is left alone.
	if _, err := f.up(t, stack(svc("web", env("A", "1")), svc("db")), planner.Options{}, engine.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	var oldWeb string
	for _, id := range before {
		if !slices.Contains(f.host.ContainerIDs(), id) {
			oldWeb = id
		}
	}
	if oldWeb == "" || !slices.Equal(str.ids, []string{oldWeb}) {
		t.Fatalf("recreate stopped %v to remove them, want only the old web %q", str.ids, oldWeb)
	}

	// down: every container is stopped to be removed.
	str.ids = nil
	running := f.host.ContainerIDs()
	if _, err := f.up(t, stack(svc("web", env("A", "1")), svc("db")), planner.Options{Down: true}, engine.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(running)
	slices.Sort(str.ids)
	if !slices.Equal(str.ids, running) {
		t.Fatalf("down stopped %v to remove them, want %v", str.ids, running)
	}
	if left := f.host.ContainerIDs(); len(left) != 0 {
		t.Fatalf("containers %v left after down", left)
	}
}
