package build_test

import (
	"bytes"
	"context"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/stackrun/stack/build"
	"github.com/stackrun/stack/image"
	"github.com/stackrun/stack/internal/testutil"
	"github.com/stackrun/stack/runtime"
	"github.com/stackrun/stack/runtime/cgroups"
	"github.com/stackrun/stack/runtime/runtimetest"
)

// env is one test's store (with a busybox image imported from busybox-static), cgroup parent
// and runtime root.
type env struct {
	store   *image.Store
	cgroup  string
	runRoot string
}

func newEnv(t testing.TB) *env {
	t.Helper()
	testutil.RequireRoot(t)
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "bb")
	runtimetest.BusyboxRootfs(t, rootfs)
	tarball := filepath.Join(dir, "bb.tar")
	if out, err := exec.Command("tar", "-C", rootfs, "-cf", tarball, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar busybox rootfs: %v: %s", err, out)
	}
	s, err := image.Open(filepath.Join(dir, "images"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Import(context.Background(), tarball, "busybox:latest"); err != nil {
		t.Fatal(err)
	}
	parent := testutil.UniqueName()
	drv, err := cgroups.New("")
	if err != nil {
		t.Fatal(err)
	}
	if err := drv.Apply(parent, nil); err != nil {
		t.Fatalf("create parent cgroup: %v", err)
	}
	t.Cleanup(func() {
		if err := drv.Remove(parent); err != nil {
			t.Errorf("cleanup: remove cgroup %s: %v", parent, err)
		}
	})
	return &env{store: s, cgroup: parent, runRoot: filepath.Join(dir, "run")}
}

// writeContext writes files (path -> content) into a new context directory.
func writeContext(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, c := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// events records progress events.
type events struct {
	mu  sync.Mutex
	all []build.Event
}

func (e *events) add(ev build.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if ev.Status != build.StatusRunning {
		e.all = append(e.all, ev)
	}
}

func (e *events) statuses() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, ev := range e.all {
		out = append(out, ev.Instruction+" => "+ev.Status)
	}
	return out
}

func (e *env) build(t testing.TB, dir string, o build.Options) (*build.Result, *events, string, error) {
	t.Helper()
	ev := &events{}
	var out bytes.Buffer
	o.Context = dir
	o.CgroupParent = e.cgroup
	o.RuntimeRoot = e.runRoot
	o.Progress = ev.add
	o.Output = &out
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := build.Build(ctx, e.store, o)
	return res, ev, out.String(), err
}

func (e *env) mustBuild(t testing.TB, dir string, o build.Options) (*build.Result, *events) {
	t.Helper()
	res, ev, out, err := e.build(t, dir, o)
	if err != nil {
		t.Fatalf("build: %v\noutput:\n%s", err, out)
	}
	return res, ev
}

// runImage runs args (or the image's default process when none) in a container of the image
// and returns its stdout.
func (e *env) runImage(t *testing.T, ref string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	img, err := e.store.Get(ref)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := e.store.Config(img)
	if err != nil {
		t.Fatal(err)
	}
	if len(args) == 0 {
		args = append(slices.Clone(cfg.Config.Entrypoint), cfg.Config.Cmd...)
	}
	cdir := t.TempDir()
	rootfs, unmount, err := e.store.MountRootfs(ctx, ref, filepath.Join(cdir, "c"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := unmount(); err != nil {
			t.Error(err)
		}
	})
	sp := runtimetest.Spec(args...)
	sp.Root.Path = rootfs
	sp.Process.Env = cfg.Config.Env
	sp.Linux.CgroupsPath = ""
	b := &runtimetest.Bundle{Dir: cdir, Spec: sp}
	bundle := b.Write(t)
	rt := runtime.New(runtime.Options{Root: filepath.Join(cdir, "state"), CgroupParent: e.cgroup})
	id := "run-" + strings.TrimPrefix(testutil.UniqueName(), testutil.Prefix)
	pr, pw, _ := os.Pipe()
	c, err := rt.Create(ctx, id, bundle, runtime.IO{Stdout: pw, Stderr: pw})
	pw.Close()
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	t.Cleanup(func() { rt.Delete(context.Background(), id, true) })
	var out bytes.Buffer
	done := make(chan struct{})
	go func() { out.ReadFrom(pr); close(done) }()
	if err := rt.Start(ctx, id); err != nil {
		t.Fatalf("start: %v", err)
	}
	es, err := c.Wait()
	if err != nil {
		t.Fatal(err)
	}
	<-done
	if es.Code != 0 {
		t.Fatalf("%v exited %v: %s", args, es, out.String())
	}
	return out.String()
}

// Acceptance 1: stage 1 FROM busybox generates files with RUN, stage 2 FROM scratch copies
// them and busybox with COPY --from; the final image runs and prints the expected output.
func TestMultiStage(t *testing.T) {
	e := newEnv(t)
	dir := writeContext(t, map[string]string{
		"Dockerfile": `# syntax=docker/dockerfile:1
FROM busybox AS gen
ARG GREETING=hello
RUN mkdir -p /out && echo "$GREETING from stage one" > /out/msg \
 && echo second > /out/other
FROM busybox AS unused
RUN exit 1
FROM scratch
COPY --from=gen /bin/busybox /bin/busybox
COPY --from=gen /out/ /data/
COPY --from=busybox:latest /etc/passwd /etc/
ENTRYPOINT ["/bin/busybox", "cat"]
CMD ["/data/msg", "/data/other"]
`,
	})
	res, _ := e.mustBuild(t, dir, build.Options{Tags: []string{"multi:1"}, Args: map[string]string{"GREETING": "hi"}})
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], `syntax directive "docker/dockerfile:1" ignored`) {
		t.Errorf("warnings = %q", res.Warnings)
	}
	if len(res.Image.Layers) != 3 {
		t.Errorf("final image has %d layers, want 3 (one per COPY)", len(res.Image.Layers))
	}
	if got, want := e.runImage(t, "multi:1"), "hi from stage one\nsecond\n"; got != want {
		t.Errorf("output = %q, want %q", got, want)
	}
}

// FROM an image that is not in the store pulls it (here from an in-memory registry on
// loopback); --pull pulls a newer image under the same tag.
func TestFromPulls(t *testing.T) {
	e := newEnv(t)
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	ref := strings.TrimPrefix(srv.URL, "http://") + "/lib/bb:1"
	push := func(src string) {
		img, err := e.store.Get(src)
		if err != nil {
			t.Fatal(err)
		}
		v, err := e.store.V1(img)
		if err != nil {
			t.Fatal(err)
		}
		r, err := name.ParseReference(ref, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(r, v); err != nil {
			t.Fatal(err)
		}
	}
	push("busybox")
	fresh := &env{store: mustOpen(t), cgroup: e.cgroup, runRoot: e.runRoot}
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM " + ref + "\nRUN cat /etc/hostname\n"})
	_, _, out, err := fresh.build(t, dir, build.Options{})
	if err != nil || out != "image\n" {
		t.Fatalf("build from a pulled base: %v, output %q", err, out)
	}

	// A different image under the same tag: used only with Pull.
	other := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo other > /etc/hostname\n"})
	e.mustBuild(t, other, build.Options{Tags: []string{"other:1"}})
	push("other:1")
	if _, _, out, err := fresh.build(t, dir, build.Options{}); err != nil || out != "" {
		t.Errorf("without --pull: %v, output %q (want the cached step)", err, out)
	}
	if _, _, out, err := fresh.build(t, dir, build.Options{Pull: true}); err != nil || out != "other\n" {
		t.Errorf("with --pull: %v, output %q", err, out)
	}
}

func mustOpen(t *testing.T) *image.Store {
	t.Helper()
	s, err := image.Open(filepath.Join(t.TempDir(), "images"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}
