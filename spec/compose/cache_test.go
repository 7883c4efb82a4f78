package compose

import (
	"slices"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/stackrun/stack/spec"

	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// memCache is a Cache in memory. Every load Gets once and, when it was not served from the
// cache, Puts once: hits is the number of loads served from it.
type memCache struct {
	m          map[string][]byte
	gets, puts int
	hits       int
}

func (c *memCache) Get(k string) ([]byte, bool) {
	c.gets++
	c.hits = c.gets - c.puts
	b, ok := c.m[k]
	return b, ok
}

func (c *memCache) Put(k string, b []byte) error {
	if c.m == nil {
		c.m = map[string][]byte{}
	}
	c.m[k] = b
	c.puts++
	c.hits = c.gets - c.puts
	return nil
}

// TestCacheSameStack: for every golden stack, a load served from the cache is the same model
// (hash and warnings included) as a load without one; stacks with include: or extends: file:
// are never served from the cache.
func TestCacheSameStack(t *testing.T) {
	root, err := filepath.Abs("testdata/stacks")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.options(root)
			want, err := loadStack(context.Background(), opts)
			if err != nil {
				t.Fatal(err)
			}
			c := &memCache{}
			opts.Cache = c
			for i := 0; i < 2; i++ {
				got, err := loadStack(context.Background(), opts)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("load %d with cache differs from the load without:\n got %+v\nwant %+v", i, got, want)
				}
			}
			noCache := tc.name == "include" || tc.name == "extends"
			if noCache && len(c.m) != 0 {
				t.Fatalf("%s was cached; it reads files the cache cannot list", tc.name)
			}
			if !noCache && c.hits != 1 {
				t.Fatalf("second load: %d cache hits, want 1", c.hits)
			}
		})
	}
}

// TestCacheInvalidation: every input a load depends on, changed, makes the next load a miss
// that sees the change.
func TestCacheInvalidation(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("stack.yaml", `services:
  web:
    image: busybox:${TAG:-1}
    env_file:
      - path: web.env
      - path: opt.env
        required: false
    environment:
      FROM_HOST:
`)
	write("web.env", "A=1\n")
	c := &memCache{}
	base := spec.Options{Files: []string{filepath.Join(dir, "stack.yaml")}, NumCPU: 2, Cache: c, CacheSalt: "build-1",
		Environ: []string{"FROM_HOST=x"}}
	load := func(opts spec.Options) *spec.Service {
		t.Helper()
		st, err := loadStack(context.Background(), opts)
		if err != nil {
			t.Fatal(err)
		}
		return st.Services["web"]
	}
	hits := func(want int) {
		t.Helper()
		if c.hits != want {
			t.Fatalf("cache hits %d, want %d", c.hits, want)
		}
	}
	load(base)
	if s := load(base); s.Environment["A"] != "1" || s.Image != "busybox:1" || s.Environment["FROM_HOST"] != "x" {
		t.Fatalf("cached service: %+v", s)
	}
	hits(1)

	write("web.env", "A=2\n")
	if s := load(base); s.Environment["A"] != "2" {
		t.Fatalf("env_file change not seen: A=%q", s.Environment["A"])
	}
	hits(1)

	write("opt.env", "B=3\n") // an optional env file that did not exist
	if s := load(base); s.Environment["B"] != "3" {
		t.Fatalf("new optional env file not seen: %v", s.Environment)
	}
	hits(1)

	env := base
	env.Environ = []string{"FROM_HOST=y", "TAG=2"}
	if s := load(env); s.Image != "busybox:2" || s.Environment["FROM_HOST"] != "y" {
		t.Fatalf("environment change not seen: %s %v", s.Image, s.Environment)
	}
	hits(1)

	write(".env", "TAG=3\n") // the default .env did not exist
	if s := load(base); s.Image != "busybox:3" {
		t.Fatalf("new .env not seen: %s", s.Image)
	}
	hits(1)
	write(".env", "TAG=4\n")
	if s := load(base); s.Image != "busybox:4" {
		t.Fatalf(".env change not seen: %s", s.Image)
	}
	hits(1)
	write(".env", "TAG=3\n")
	load(base)

	write("stack.yaml", strings.Replace(mustRead(t, filepath.Join(dir, "stack.yaml")), "busybox", "alpine", 1))
	if s := load(base); s.Image != "alpine:3" {
		t.Fatalf("stack file change not seen: %s", s.Image)
	}
	hits(1)

	salt := base
	salt.CacheSalt = "build-2"
	load(salt)
	hits(1)
	load(salt)
	hits(2)

	// A damaged entry is a miss, not an error.
	for k := range c.m {
		c.m[k] = []byte("{not json")
	}
	if s := load(base); s.Image != "alpine:3" {
		t.Fatalf("after a damaged entry: %s", s.Image)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestCacheDefaultFiles: without -f, a new override file next to the stack file (or a new
// stack file in the working directory) changes what is loaded, and the cache sees it.
func TestCacheDefaultFiles(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.WriteFile("compose.yaml", []byte("services:\n  web:\n    image: busybox:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := &memCache{}
	opts := spec.Options{NumCPU: 2, Cache: c, Environ: []string{}}
	image := func() string {
		t.Helper()
		st, err := loadStack(context.Background(), opts)
		if err != nil {
			t.Fatal(err)
		}
		return st.Services["web"].Image
	}
	image()
	if got := image(); got != "busybox:1" || c.hits != 1 {
		t.Fatalf("image %s, %d hits", got, c.hits)
	}
	if err := os.WriteFile("compose.override.yaml", []byte("services:\n  web:\n    image: busybox:2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := image(); got != "busybox:2" || c.hits != 1 {
		t.Fatalf("after adding the override: image %s, %d hits", got, c.hits)
	}
	if err := os.WriteFile("stack.yaml", []byte("services:\n  web:\n    image: busybox:3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := image(); got != "busybox:3" || c.hits != 1 {
		t.Fatalf("after adding stack.yaml: image %s, %d hits", got, c.hits)
	}
}

// TestDefaultFileNamesMatchCompose: spec keeps its own copy of compose-go's default names (so
// that the CLI does not link compose-go); they must not drift.
func TestDefaultFileNamesMatchCompose(t *testing.T) {
	if got, want := spec.DefaultFileNames()[2:], cli.DefaultFileNames; !slices.Equal(got, want) {
		t.Fatalf("spec.DefaultFileNames()[2:] = %v, compose-go has %v", got, want)
	}
	if got, want := spec.DefaultOverrideFileNames("compose.yaml"), cli.DefaultOverrideFileNames; !slices.Equal(got, want) {
		t.Fatalf("spec.DefaultOverrideFileNames = %v, compose-go has %v", got, want)
	}
}
