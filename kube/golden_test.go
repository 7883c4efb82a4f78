package kube

import (
	"github.com/stackrun/stack/spec/compose"

	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stackrun/stack/spec"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// goldenStacks are whole stack files (spec's testdata and the examples), rendered with the
// options given; each output is compared with testdata/<name>.golden and decoded strictly.
var goldenStacks = []struct {
	name  string
	dir   string // relative to this package
	files []string
	opts  Options
}{
	{name: "webdbcache", dir: "../spec/compose/testdata/stacks/webdbcache"},
	{name: "webdbcache-statefulset", dir: "../spec/compose/testdata/stacks/webdbcache", opts: Options{Volumes: VolumesStatefulSet, Publish: PublishLoadBalancer}},
	{name: "wordpress", dir: "../spec/compose/testdata/stacks/wordpress"},
	{name: "longsyntax", dir: "../spec/compose/testdata/stacks/longsyntax", opts: Options{AllowHostPath: true}},
	{name: "monitoring", dir: "../spec/compose/testdata/stacks/monitoring", opts: Options{AllowHostPath: true}},
	{name: "networks", dir: "../spec/compose/testdata/stacks/networks"},
	{name: "hardening", dir: "../spec/compose/testdata/stacks/hardening"},
	{name: "restart", dir: "../spec/compose/testdata/stacks/restart"},
	{name: "override", dir: "../spec/compose/testdata/stacks/override"},
	{name: "ranges", dir: "../spec/compose/testdata/stacks/ranges"},
	{name: "example-stack", dir: "../examples", files: []string{"stack.yaml"}},
	{name: "example-webapp", dir: "../examples", files: []string{"webapp.yaml"}, opts: Options{AllowHostPath: true}},
	{name: "example-counter", dir: "../examples", files: []string{"counter.yaml"}},
}

func TestGoldenExports(t *testing.T) {
	for _, g := range goldenStacks {
		t.Run(g.name, func(t *testing.T) {
			dir, err := filepath.Abs(g.dir)
			if err != nil {
				t.Fatal(err)
			}
			var files []string
			for _, f := range g.files {
				files = append(files, filepath.Join(dir, f))
			}
			st, err := spec.Load(context.Background(), spec.Options{Files: files, ProjectDirectory: dir, Environ: []string{}, Loader: compose.Load})
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			res, err := Render(st, g.opts)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := WriteStream(&buf, res.Objects); err != nil {
				t.Fatal(err)
			}
			strictDecode(t, buf.Bytes())
			buf.WriteString("# findings\n")
			for _, f := range res.Findings {
				buf.WriteString("# " + strings.ReplaceAll(f.String(), dir, "<dir>") + "\n")
			}
			got := strings.ReplaceAll(buf.String(), dir, "<dir>")
			path := filepath.Join("testdata", g.name+".golden")
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./kube -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs from the output (go test ./kube -run TestGoldenExports/%s -update rewrites it):\n%s", path, g.name, firstDiff(string(want), got))
			}
		})
	}
}

func firstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			return "line " + strconv.Itoa(i+1) + ":\n  want: " + a + "\n  got:  " + b
		}
	}
	return ""
}
