package build

import (
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/stackrun/stack/image"
)

func TestCacheRecords(t *testing.T) {
	s, err := image.Open(filepath.Join(t.TempDir(), "images"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(s.BuildCacheDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := &v1.ConfigFile{OS: "linux", Config: v1.Config{Env: []string{"A=1"}}}
	if err := record(s, "nolayers", cfg, nil); err != nil {
		t.Fatal(err)
	}
	gone := []image.Layer{{Digest: "sha256:" + stepKey("x"), ChainID: "sha256:" + stepKey("y")}}
	if err := record(s, "dangling", cfg, gone); err != nil {
		t.Fatal(err)
	}
	if rec, ok := lookup(s, "nolayers"); !ok || rec.Config.Config.Env[0] != "A=1" {
		t.Errorf("lookup(nolayers) = %v, %v", rec, ok)
	}
	if _, ok := lookup(s, "dangling"); ok {
		t.Error("a record whose layers are gone was a hit")
	}
	if _, ok := lookup(s, "absent"); ok {
		t.Error("an absent record was a hit")
	}
	if n, err := PruneCache(s); err != nil || n != 1 {
		t.Errorf("PruneCache = %d, %v; want 1", n, err)
	}
	if _, ok := lookup(s, "nolayers"); !ok {
		t.Error("PruneCache removed a valid record")
	}
}
