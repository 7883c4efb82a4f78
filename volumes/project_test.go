package volumes

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stackrun/stack/spec"
)

// TestLifecycleAsTheEngineDrivesIt walks a volume through the calls the engine makes: up
// (ensure, prepare), recreate (release the old container, prepare the new), down without -v
// (release only), up again, down -v (release, remove the project's volumes). The data is there
// until down -v, and an external volume survives it.
func TestLifecycleAsTheEngineDrivesIt(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t)
	if _, err := s.Ensure(ctx, Spec{Name: "outside"}); err != nil { // made by `stack volume create`
		t.Fatal(err)
	}
	st := &spec.Stack{Name: "shop", WorkingDir: t.TempDir(), Volumes: map[string]*spec.Volume{
		"data": {Key: "data", Name: "shop_data"},
		"ext":  {Key: "ext", Name: "outside", External: true},
	}}
	svc := &spec.Service{Name: "db", Mounts: []spec.Mount{
		{Type: spec.MountVolume, Source: "data", Target: "/data"},
		{Type: spec.MountVolume, Source: "ext", Target: "/ext"},
	}}
	up := func(id string) {
		t.Helper()
		for _, key := range []string{"data", "ext"} {
			if _, err := s.Ensure(ctx, SpecFor(st.Name, st.Volumes[key])); err != nil {
				t.Fatal(err)
			}
		}
		plan, err := PlanService(st, svc, PlanOptions{Container: "shop-db-1", StateRoot: filepath.Dir(s.Root())})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Prepare(ctx, Container{ID: id}, plan); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(s.DataPath("shop_data"), "rows")
	up("c1")
	if err := os.WriteFile(file, []byte("42"), 0o600); err != nil {
		t.Fatal(err)
	}
	// recreate: the old container goes, a new one comes
	if err := s.ReleaseContainer("c1"); err != nil {
		t.Fatal(err)
	}
	up("c2")
	// down (no -v): containers go, volumes stay
	if err := s.ReleaseContainer("c2"); err != nil {
		t.Fatal(err)
	}
	up("c3")
	if b, err := os.ReadFile(file); err != nil || string(b) != "42" {
		t.Fatalf("data after recreate and down/up = %q, %v", b, err)
	}
	// a crash lost the release of c3 and c0 never existed: Reconcile with the live containers
	if err := s.Use("shop_data", "c0"); err != nil {
		t.Fatal(err)
	}
	if err := s.Reconcile(map[string]bool{}); err != nil {
		t.Fatal(err)
	}
	// down -v
	vols, err := s.ListProject("shop")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vols {
		if err := s.RemoveOwned("shop", v.Name); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("data after down -v: %v", err)
	}
	if _, err := s.Inspect("outside"); err != nil {
		t.Errorf("external volume removed by down -v: %v", err)
	}
}
