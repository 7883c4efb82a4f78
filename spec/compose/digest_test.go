package compose

import (
	"github.com/stackrun/stack/spec"

	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestDigests: a service's digest moves with fields the config hash leaves out (depends_on,
// scale), and not with where the same stack file lies.
func TestDigests(t *testing.T) {
	load := func(yaml string) map[string]string {
		t.Helper()
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "stack.yaml"), []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		st, err := loadStack(context.Background(), spec.Options{Files: []string{filepath.Join(dir, "stack.yaml")}, ProjectName: "demo", Environ: []string{}})
		if err != nil {
			t.Fatal(err)
		}
		return spec.Digests(st)
	}
	base := load("services:\n  db:\n    image: busybox\n  web:\n    image: busybox\n")
	if same := load("services:\n  db:\n    image: busybox\n  web:\n    image: busybox\n"); same["service:web"] != base["service:web"] || same["project"] != base["project"] {
		t.Errorf("the same stack in another directory: %v, was %v", same, base)
	}
	for name, yaml := range map[string]string{
		"depends_on": "services:\n  db:\n    image: busybox\n  web:\n    image: busybox\n    depends_on: [db]\n",
		"scale":      "services:\n  db:\n    image: busybox\n  web:\n    image: busybox\n    scale: 2\n",
	} {
		got := load(yaml)
		if got["service:web"] == base["service:web"] || got["service:db"] != base["service:db"] {
			t.Errorf("%s: web %s -> %s, db %s -> %s", name, base["service:web"], got["service:web"], base["service:db"], got["service:db"])
		}
	}
	if _, ok := base["network:default"]; !ok {
		t.Errorf("no digest of the default network: %v", base)
	}
}
