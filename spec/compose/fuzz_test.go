package compose

import (
	"github.com/stackrun/stack/spec"

	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzLoad feeds arbitrary bytes as a stack file through the whole loader: it must never panic
// or hang, and must return either a stack or an error (problems with a message each). The seed
// corpus is in testdata/fuzz/FuzzLoad; run it longer with
// go test -run '^$' -fuzz FuzzLoad -fuzztime 60s ./spec
func FuzzLoad(f *testing.F) {
	f.Add([]byte("services:\n  web:\n    image: busybox\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, "stack.yaml")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		st, err := loadStack(context.Background(), spec.Options{Files: []string{path}, Environ: []string{}, NumCPU: 2, ProjectName: "fuzz"})
		// Go's fuzzer has no per-input timeout; an input that takes this long is a hang (a
		// normal one takes milliseconds even on a loaded machine).
		if d := time.Since(start); d > 20*time.Second {
			t.Fatalf("Load took %v", d)
		}
		if err != nil {
			var ps spec.Problems
			if errors.As(err, &ps) {
				if len(ps) == 0 {
					t.Fatal("empty Problems error")
				}
				for _, p := range ps {
					if p.Message == "" {
						t.Fatalf("problem without a message: %#v", p)
					}
				}
			}
			return
		}
		if st == nil {
			t.Fatal("nil stack without an error")
		}
		for name, svc := range st.Services {
			if svc.Hash == "" {
				t.Fatalf("service %s has no hash", name)
			}
		}
	})
}
