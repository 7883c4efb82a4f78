package compose

import (
	"github.com/stackrun/stack/spec"

	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// goldenCases are whole stack files under testdata/stacks (and examples/), each loaded and
// compared with testdata/golden/<name>.golden: compose-go's normalized project (what stack config
// prints), the warnings, and stack's model with each service's hash.
type goldenCase struct {
	name     string
	dir      string   // under testdata/stacks, or a path relative to the package
	files    []string // relative to dir; empty: default file discovery in dir
	environ  []string
	profiles []string
}

// options are the load options of the case, its directory taken below root.
func (tc goldenCase) options(root string) spec.Options {
	dir := filepath.Join(root, tc.dir)
	opts := spec.Options{Environ: tc.environ, Profiles: tc.profiles, NumCPU: 4, ProjectDirectory: dir}
	if opts.Environ == nil {
		opts.Environ = []string{}
	}
	for _, f := range tc.files {
		opts.Files = append(opts.Files, filepath.Join(dir, f))
	}
	return opts
}

var goldenCases = []goldenCase{
	{name: "webdbcache", dir: "webdbcache"},
	{name: "longsyntax", dir: "longsyntax"},
	{name: "override", dir: "override"}, // compose.yaml + compose.override.yaml by discovery
	{name: "override3", dir: "override3", files: []string{"base.yaml", "staging.yaml", "prod.yaml"}},
	{name: "override3-staging", dir: "override3", files: []string{"base.yaml", "staging.yaml"}},
	{name: "profiles", dir: "profiles"},
	{name: "profiles-debug", dir: "profiles", profiles: []string{"debug"}},
	{name: "profiles-all", dir: "profiles", profiles: []string{"*"}},
	{name: "interpolation", dir: "interpolation", environ: []string{"REGION=eu-west-1", "HOST_PORT=8001", "TAG=from-environ"}},
	{name: "interpolation-defaults", dir: "interpolation", environ: []string{"REGION=us-east-2"}},
	{name: "extends", dir: "extends"},
	{name: "include", dir: "include"},
	{name: "envfile", dir: "envfile"},
	{name: "ranges", dir: "ranges"},
	{name: "hardening", dir: "hardening"},
	{name: "wordpress", dir: "wordpress"},
	{name: "monitoring", dir: "monitoring"},
	{name: "warnings", dir: "warnings"},
	{name: "networks", dir: "networks"},
	{name: "restart", dir: "restart"},
	{name: "networknone", dir: "networknone"},
	{name: "anchors", dir: "anchors"},
	{name: "example-webapp", dir: "../../../../examples", files: []string{"webapp.yaml"}},
	{name: "example-counter", dir: "../../../../examples", files: []string{"counter.yaml"}},
}

func TestGolden(t *testing.T) {
	root, err := filepath.Abs("testdata/stacks")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(root, tc.dir)
			opts := tc.options(root)
			st, p, err := LoadWithProject(context.Background(), opts)
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			yml, err := p.MarshalYAML()
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			b.WriteString("# stack config\n")
			b.Write(yml)
			b.WriteString("# warnings\n")
			for _, w := range st.Warnings {
				b.WriteString(w.Error() + "\n")
			}
			b.WriteString("# model\n")
			for _, svc := range st.Services {
				svc.Hash = portableHash(t, svc, filepath.Dir(dir))
			}
			model, err := json.MarshalIndent(st, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			b.Write(model)
			b.WriteString("\n")
			got := strings.ReplaceAll(b.String(), filepath.Dir(dir), "${TESTDATA}")
			checkGolden(t, filepath.Join("testdata", "golden", tc.name+".golden"), got)
		})
	}
}

// TestExamples loads every stack file under examples/: each must be valid and draw no warning.
// (examples/stack.yaml belongs to the README's quick start and changes with it, so it has no
// golden; the examples spec owns have goldens above.)
func TestExamples(t *testing.T) {
	files, err := filepath.Glob("../../examples/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			files := []string{f}
			// An override (stack.dev.yaml) is loaded over its base (stack.yaml), as it is used.
			if parts := strings.SplitN(filepath.Base(f), ".", 3); len(parts) == 3 {
				base := filepath.Join(filepath.Dir(f), parts[0]+"."+parts[2])
				if _, err := os.Stat(base); err == nil {
					files = []string{base, f}
				}
			}
			st, err := loadStack(context.Background(), spec.Options{Files: files, Environ: []string{}})
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range st.Warnings {
				t.Errorf("warning: %v", w)
			}
			if len(st.Services) == 0 {
				t.Error("no services")
			}
		})
	}
}

// portableHash is the service's hash computed as if the test data lived at ${TESTDATA}: the
// hash covers absolute paths (bind sources, env files), which differ between checkouts, and a
// golden file must be the same wherever the repository is cloned.
func portableHash(t *testing.T, svc *spec.Service, prefix string) string {
	t.Helper()
	b, err := json.Marshal(svc)
	if err != nil {
		t.Fatal(err)
	}
	var moved spec.Service
	if err := json.Unmarshal([]byte(strings.ReplaceAll(string(b), prefix, "${TESTDATA}")), &moved); err != nil {
		t.Fatal(err)
	}
	return spec.Hash(&moved)
}

func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run with -update to create it): %v", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from the output (run go test ./spec -run %s -update to accept):\n%s", path, t.Name(), diffLines(string(want), got))
	}
}

// diffLines shows the first lines that differ, enough to see what changed.
func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < max(len(w), len(g)) && shown < 20; i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			b.WriteString("line " + strconv.Itoa(i+1) + ":\n  want: " + wl + "\n  got:  " + gl + "\n")
			shown++
		}
	}
	return b.String()
}

// problemsOf returns the problems of a failed load.
func problemsOf(t *testing.T, err error) spec.Problems {
	t.Helper()
	var ps spec.Problems
	if !errors.As(err, &ps) {
		t.Fatalf("want a Problems error, got %v", err)
	}
	return ps
}
