package volumes

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stackrun/stack/spec"
)

func openTestStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "state", Dir))
	if err != nil {
		t.Fatal(err)
	}
	s.now = func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
	return s
}

func TestOpenCreatesPrivateRoot(t *testing.T) {
	s := openTestStore(t)
	fi, err := os.Stat(s.Root())
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o700 {
		t.Errorf("store root mode = %o, want 700", got)
	}
}

func TestName(t *testing.T) {
	for _, tc := range []struct{ project, key, want string }{
		{"shop", "data", "shop_data"},
		{"blog", "data", "blog_data"},
		{"", "data", "data"},
	} {
		if got := Name(tc.project, tc.key); got != tc.want {
			t.Errorf("Name(%q, %q) = %q, want %q", tc.project, tc.key, got, tc.want)
		}
	}
}

func TestValidateName(t *testing.T) {
	for name, ok := range map[string]bool{
		"shop_data": true, "a": true, "x.y-z_1": true,
		"": false, ".hidden": false, "../etc": false, "a/b": false, "_x": false, "a b": false,
	} {
		err := ValidateName(name)
		if (err == nil) != ok {
			t.Errorf("ValidateName(%q) = %v, want ok=%v", name, err, ok)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidateName(%q) = %v, want ErrInvalid", name, err)
		}
	}
}

func TestEnsureCreatesOnceAndRecords(t *testing.T) {
	s := openTestStore(t)
	ctx := context.Background()
	v, err := s.Ensure(ctx, Spec{Project: "shop", Key: "data", Labels: map[string]string{"tier": "db"}})
	if err != nil {
		t.Fatal(err)
	}
	want := &Volume{
		Name: "shop_data", Driver: DriverLocal, Project: "shop", Key: "data",
		Labels: map[string]string{"tier": "db"}, Created: s.now().UTC(),
		Mountpoint: filepath.Join(s.Root(), "shop_data", "_data"),
	}
	if !reflect.DeepEqual(v, want) {
		t.Fatalf("Ensure = %+v, want %+v", v, want)
	}
	if fi, err := os.Stat(v.Mountpoint); err != nil || !fi.IsDir() {
		t.Fatalf("data dir: %v", err)
	}
	if err := os.WriteFile(filepath.Join(v.Mountpoint, "keep"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Second Ensure returns the existing volume and keeps its data.
	v2, err := s.Ensure(ctx, Spec{Project: "shop", Key: "data"})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(v2, want) {
		t.Errorf("second Ensure = %+v, want the first record", v2)
	}
	if _, err := os.Stat(filepath.Join(v.Mountpoint, "keep")); err != nil {
		t.Errorf("data lost by second Ensure: %v", err)
	}
	got, err := s.Inspect("shop_data")
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Inspect = %+v, %v", got, err)
	}
}

func TestEnsureExplicitName(t *testing.T) {
	s := openTestStore(t)
	v, err := s.Ensure(context.Background(), Spec{Name: "shared-cache", Project: "shop", Key: "cache"})
	if err != nil {
		t.Fatal(err)
	}
	if v.Name != "shared-cache" {
		t.Errorf("name = %q, want the explicit name", v.Name)
	}
}

func TestEnsureExternal(t *testing.T) {
	s := openTestStore(t)
	ctx := context.Background()
	_, err := s.Ensure(ctx, Spec{Name: "outside", Project: "shop", Key: "ext", External: true})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("Ensure(external, missing) = %v, want ErrNotFound", err)
	}
	for _, want := range []string{`external volume "outside"`, "stack volume create outside"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(s.Root(), "outside")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing external volume was created: %v", err)
	}
	if _, err := s.Ensure(ctx, Spec{Name: "outside"}); err != nil {
		t.Fatal(err)
	}
	v, err := s.Ensure(ctx, Spec{Name: "outside", Project: "shop", Key: "ext", External: true})
	if err != nil {
		t.Fatalf("Ensure(external, existing) = %v", err)
	}
	if v.Project != "" {
		t.Errorf("external volume took the project %q", v.Project)
	}
}

func TestTwoProjectsSameKeyGetTwoVolumes(t *testing.T) {
	s := openTestStore(t)
	ctx := context.Background()
	a, err := s.Ensure(ctx, Spec{Project: "shop", Key: "data"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Ensure(ctx, Spec{Project: "blog", Key: "data"})
	if err != nil {
		t.Fatal(err)
	}
	if a.Name == b.Name || a.Mountpoint == b.Mountpoint {
		t.Fatalf("same volume for two projects: %s %s", a.Mountpoint, b.Mountpoint)
	}
	if err := os.WriteFile(filepath.Join(a.Mountpoint, "f"), []byte("shop"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(b.Mountpoint, "f")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("data of project shop visible in project blog's volume")
	}
	vols, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, v := range vols {
		names = append(names, v.Name)
	}
	if want := []string{"blog_data", "shop_data"}; !reflect.DeepEqual(names, want) {
		t.Errorf("List = %v, want %v", names, want)
	}
}

func TestRemoveRefusesInUse(t *testing.T) {
	s := openTestStore(t)
	ctx := context.Background()
	v, err := s.Ensure(ctx, Spec{Project: "shop", Key: "data"})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"c2", "c1", "c2"} {
		if err := s.Use(v.Name, id); err != nil {
			t.Fatal(err)
		}
	}
	// A new Store value (another process) sees the users.
	s2, err := Open(s.Root())
	if err != nil {
		t.Fatal(err)
	}
	got, err := s2.Inspect(v.Name)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"c1", "c2"}; !reflect.DeepEqual(got.Users, want) {
		t.Errorf("users = %v, want %v", got.Users, want)
	}
	err = s2.Remove(v.Name, false)
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "c1, c2") {
		t.Fatalf("Remove(in use) = %v, want ErrInUse naming c1, c2", err)
	}
	if err := s.Release(v.Name, "c1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(v.Name, false); !errors.Is(err, ErrInUse) {
		t.Fatalf("Remove with one user left = %v, want ErrInUse", err)
	}
	if err := s.Reconcile(map[string]bool{"c1": true}); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(v.Name, false); err != nil {
		t.Fatalf("Remove after Reconcile dropped the gone user: %v", err)
	}
	if _, err := os.Stat(v.Mountpoint); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("data still there after Remove: %v", err)
	}
	if _, err := s.Inspect(v.Name); !errors.Is(err, ErrNotFound) {
		t.Errorf("Inspect after Remove = %v, want ErrNotFound", err)
	}
	if err := s.Remove(v.Name, false); !errors.Is(err, ErrNotFound) {
		t.Errorf("Remove(missing) = %v, want ErrNotFound", err)
	}
	if err := s.Remove(v.Name, true); err != nil {
		t.Errorf("Remove(missing, force) = %v, want nil", err)
	}
	if err := s.Release(v.Name, "c2"); err != nil {
		t.Errorf("Release of a removed volume = %v, want nil", err)
	}
}

func TestRemoveForceInUse(t *testing.T) {
	s := openTestStore(t)
	v, err := s.Ensure(context.Background(), Spec{Name: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Use(v.Name, "c1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(v.Name, true); err != nil {
		t.Fatalf("Remove(force) = %v", err)
	}
	if _, err := s.Inspect("x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("volume still there: %v", err)
	}
}

func TestReleaseContainer(t *testing.T) {
	s := openTestStore(t)
	ctx := context.Background()
	for _, n := range []string{"a", "b"} {
		if _, err := s.Ensure(ctx, Spec{Name: n}); err != nil {
			t.Fatal(err)
		}
		if err := s.Use(n, "c1"); err != nil {
			t.Fatal(err)
		}
		if err := s.Use(n, "c2"); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.ReleaseContainer("c1"); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a", "b"} {
		v, err := s.Inspect(n)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(v.Users, []string{"c2"}) {
			t.Errorf("%s users = %v, want [c2]", n, v.Users)
		}
	}
}

func TestUseMissingVolume(t *testing.T) {
	s := openTestStore(t)
	if err := s.Use("nope", "c1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Use(missing) = %v, want ErrNotFound", err)
	}
	if err := s.Use("nope", ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("Use(empty id) = %v, want ErrInvalid", err)
	}
}

func TestPrune(t *testing.T) {
	s := openTestStore(t)
	ctx := context.Background()
	for _, sp := range []Spec{{Project: "shop", Key: "a"}, {Project: "shop", Key: "b"}, {Project: "blog", Key: "a"}} {
		if _, err := s.Ensure(ctx, sp); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Use("shop_b", "c1"); err != nil {
		t.Fatal(err)
	}
	// Leftovers: a half-created volume (no record) and an interrupted removal.
	if err := os.MkdirAll(filepath.Join(s.Root(), "half", "_data"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(s.Root(), trashPre+"old-123", "old", "_data"), 0o700); err != nil {
		t.Fatal(err)
	}
	removed, err := s.Prune(func(v *Volume) bool { return v.Project == "shop" })
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"shop_a"}; !reflect.DeepEqual(removed, want) {
		t.Errorf("Prune(shop) removed %v, want %v", removed, want)
	}
	if _, err := os.Stat(filepath.Join(s.Root(), trashPre+"old-123")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("interrupted removal not finished: %v", err)
	}
	removed, err = s.Prune(nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"blog_a"}; !reflect.DeepEqual(removed, want) {
		t.Errorf("Prune(all) removed %v, want %v (shop_b is in use)", removed, want)
	}
}

func TestConcurrentUseRecordsEveryUser(t *testing.T) {
	s := openTestStore(t)
	if _, err := s.Ensure(context.Background(), Spec{Name: "shared"}); err != nil {
		t.Fatal(err)
	}
	const n = 16
	errc := make(chan error, n)
	for i := range n {
		go func() {
			// A Store per goroutine, as separate processes would have.
			s2, err := Open(s.Root())
			if err == nil {
				err = s2.Use("shared", fmt.Sprintf("c%02d", i))
			}
			errc <- err
		}()
	}
	for range n {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	v, err := s.Inspect("shared")
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Users) != n {
		t.Errorf("users = %v, want %d (a concurrent update was lost)", v.Users, n)
	}
}

func TestProjectView(t *testing.T) {
	s := openTestStore(t)
	ctx := context.Background()
	for _, sp := range []Spec{
		SpecFor("shop", &spec.Volume{Key: "data"}),
		SpecFor("shop", &spec.Volume{Key: "cache", Name: "shared-cache"}),
		SpecFor("blog", &spec.Volume{Key: "data", Name: "blog_data"}),
		{Name: "outside"},
	} {
		if _, err := s.Ensure(ctx, sp); err != nil {
			t.Fatal(err)
		}
	}
	ext := SpecFor("shop", &spec.Volume{Key: "ext", Name: "outside", External: true})
	if ext.Project != "" || !ext.External {
		t.Errorf("SpecFor(external) = %+v, want no project", ext)
	}
	vols, err := s.ListProject("shop")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, v := range vols {
		names = append(names, v.Name)
	}
	if want := []string{"shared-cache", "shop_data"}; !reflect.DeepEqual(names, want) {
		t.Errorf("ListProject(shop) = %v, want %v", names, want)
	}
	for _, name := range []string{"outside", "blog_data"} {
		if err := s.RemoveOwned("shop", name); !errors.Is(err, ErrInvalid) {
			t.Errorf("RemoveOwned(shop, %s) = %v, want ErrInvalid", name, err)
		}
	}
	if err := s.RemoveOwned("shop", "shop_data"); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveOwned("shop", "shop_data"); err != nil {
		t.Errorf("RemoveOwned of a missing volume = %v, want nil", err)
	}
}

// The volume name rule is spec's (which reports bad names with their position in the file);
// every name it accepts makes legal file names for the volume's directory, its lock and the
// directory it is renamed to on removal.
func TestVolumeNamesFollowSpecRule(t *testing.T) {
	names := []string{"shop_data", "p_.", "p_..", strings.Repeat("v", spec.MaxNameLen),
		"", ".", "..", "../etc", "a/b", ".x", "_x", strings.Repeat("v", spec.MaxNameLen+1)}
	for _, n := range names {
		specOK := spec.ValidObjectName("volume", n) == nil
		ourOK := ValidateName(n) == nil
		if specOK != ourOK {
			t.Errorf("%q: spec accepts %v, volumes accepts %v", n, specOK, ourOK)
		}
		if ourOK && len(trashPre+n+"-4294967295") > 255 {
			t.Errorf("%q: removal directory name too long", n)
		}
	}
}

// A volume with the longest name is created, used and removed.
func TestLongestVolumeNameLifecycle(t *testing.T) {
	s := openTestStore(t)
	name := strings.Repeat("v", spec.MaxNameLen)
	if _, err := s.Ensure(context.Background(), Spec{Name: name, Project: "p", Key: "k"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(name, false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Inspect(name); !errors.Is(err, ErrNotFound) {
		t.Errorf("after remove: %v", err)
	}
}
