package build_test

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stackrun/stack/build"
	"github.com/stackrun/stack/spec"
)

// COPY and ADD: globs, directories (contents, not the directory), --chown by name and number,
// --chmod, .dockerignore, WORKDIR-relative destinations, ADD's tar extraction; RUN as USER
// sees the files with those owners.
func TestCopyAndAdd(t *testing.T) {
	e := newEnv(t)
	dir := writeContext(t, map[string]string{
		"Dockerfile": `FROM busybox
WORKDIR /w
COPY *.txt sub/ ./
COPY --chown=app:extra --chmod=640 a.txt /owned/
COPY --chown=1234 b.txt /num
ADD bundle.tgz /unpacked/
ADD plain.bin /raw/
RUN chmod 1777 /tmp
USER app
RUN id -u > /tmp/uid
CMD ["sh", "-c", "cd /w && ls -A; stat -c '%U:%G %a' /owned/a.txt; stat -c '%u:%g' /num; cat /unpacked/dir/x; stat -c '%u:%g %a' /unpacked/dir/x; ls /raw; cat /tmp/uid"]
`,
		"a.txt":        "a",
		"b.txt":        "b",
		"c.md":         "c",
		"sub/in.txt":   "in",
		"sub/skip.log": "excluded",
		".dockerignore": `**/*.log
Dockerfile
`,
		"plain.bin": "not an archive",
	})
	writeTgz(t, filepath.Join(dir, "bundle.tgz"), map[string]string{"dir/x": "from tar\n"})
	e.mustBuild(t, dir, build.Options{Tags: []string{"copy:1"}})
	got := e.runImage(t, "copy:1")
	want := "a.txt\nb.txt\nin.txt\napp:extra 640\n1234:1234\nfrom tar\n7:8 600\nplain.bin\n1000\n"
	if got != want {
		t.Errorf("image shows\n%s\nwant\n%s", got, want)
	}
}

func writeTgz(t *testing.T, p string, files map[string]string) {
	t.Helper()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zw := gzip.NewWriter(f)
	tw := tar.NewWriter(zw)
	for _, name := range slices.Sorted(maps.Keys(files)) {
		c := files[name]
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(c)), Uid: 7, Gid: 8, Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(c))
	}
	tw.Close()
	zw.Close()
}

// The config instructions land in the image config: ENV and ARG expansion (ENV winning over
// ARG, ${VAR:-default}), LABEL, EXPOSE, VOLUME, USER, WORKDIR, STOPSIGNAL, HEALTHCHECK,
// ONBUILD; build labels; the escape directive; history with empty layers marked.
func TestConfig(t *testing.T) {
	e := newEnv(t)
	dir := writeContext(t, map[string]string{
		"Dockerfile": "# escape=`\n" + `FROM busybox
ARG PORT=80
ARG NAME
ENV NAME=env-wins APP_HOME=/srv/${NAME} ` + "`" + `
    OTHER=${UNSET:-fallback}
LABEL org.example.port=$PORT "two words"="x y"
EXPOSE $PORT 53/udp
VOLUME ["/data", "/logs"]
WORKDIR $APP_HOME
WORKDIR sub
USER app:extra
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s --retries=2 CMD ["true"]
ONBUILD USER root
ONBUILD RUN echo triggered > /triggered
`,
	})
	res, _ := e.mustBuild(t, dir, build.Options{Tags: []string{"onbuild:1"}, Args: map[string]string{"PORT": "8080", "NAME": "arg"}, Labels: map[string]string{"from.build": "yes"}})
	cfg, err := e.store.Config(res.Image)
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Config
	if want := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "NAME=env-wins", "APP_HOME=/srv/arg", "OTHER=fallback"}; !slices.Equal(c.Env[len(c.Env)-3:], want[1:]) {
		t.Errorf("env = %q, want %q", c.Env, want)
	}
	if want := map[string]string{"org.example.port": "8080", "two words": "x y", "from.build": "yes"}; !maps.Equal(c.Labels, want) {
		t.Errorf("labels = %v", c.Labels)
	}
	if want := map[string]struct{}{"8080/tcp": {}, "53/udp": {}}; !maps.Equal(c.ExposedPorts, want) {
		t.Errorf("exposed = %v", c.ExposedPorts)
	}
	if want := map[string]struct{}{"/data": {}, "/logs": {}}; !maps.Equal(c.Volumes, want) {
		t.Errorf("volumes = %v", c.Volumes)
	}
	if c.WorkingDir != "/srv/arg/sub" || c.User != "app:extra" || c.StopSignal != "SIGINT" {
		t.Errorf("workdir %q user %q stopsignal %q", c.WorkingDir, c.User, c.StopSignal)
	}
	if h := c.Healthcheck; h == nil || !slices.Equal(h.Test, []string{"CMD", "true"}) || h.Interval != 5*time.Second || h.Retries != 2 {
		t.Errorf("healthcheck = %+v", h)
	}
	if !slices.Equal(c.OnBuild, []string{"USER root", "RUN echo triggered > /triggered"}) {
		t.Errorf("onbuild = %q", c.OnBuild)
	}
	var empty int
	for _, h := range cfg.History[1:] {
		if h.EmptyLayer {
			empty++
		}
	}
	// busybox's one entry, then 13 instructions; the two WORKDIRs create directories (layers).
	if len(cfg.History) != 14 || empty != 11 || len(res.Image.Layers) != 3 {
		t.Errorf("history %d entries, %d empty; %d layers", len(cfg.History), empty, len(res.Image.Layers))
	}

	// A child runs the base's ONBUILD triggers right after FROM and does not inherit them.
	child := writeContext(t, map[string]string{"Dockerfile": "FROM onbuild:1\nRUN cat /triggered\n"})
	res, ev, out, err := e.build(t, child, build.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"FROM onbuild:1 => base", "ONBUILD USER root => done", "ONBUILD RUN echo triggered > /triggered => done", "RUN cat /triggered => done"}; !slices.Equal(ev.statuses(), want) || out != "triggered\n" {
		t.Errorf("child build: %q, output %q", ev.statuses(), out)
	}
	if cfg, _ := e.store.Config(res.Image); len(cfg.Config.OnBuild) != 0 {
		t.Errorf("child inherited triggers %q", cfg.Config.OnBuild)
	}
}

// Service builds from the stack file's build section, tags <project>-<service> (spec's Image)
// and build.tags, and lets command-line args override the file's.
func TestService(t *testing.T) {
	e := newEnv(t)
	dir := writeContext(t, map[string]string{
		"web/Dockerfile.dev": "FROM busybox AS base\nARG A\nARG B\nLABEL a=$A b=$B\nFROM base AS final\nLABEL final=1\n",
	})
	svc := &spec.Service{Name: "web", Image: "proj-web", Build: &spec.Build{
		Context: filepath.Join(dir, "web"), Dockerfile: "Dockerfile.dev", Target: "base",
		Args: map[string]string{"A": "file", "B": "file"}, Tags: []string{"extra:2"},
	}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id, err := build.Service(ctx, e.store, svc, build.Options{Args: map[string]string{"B": "cli"}, CgroupParent: e.cgroup, RuntimeRoot: e.runRoot})
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"proj-web", "proj-web:latest", "extra:2"} {
		img, err := e.store.Get(ref)
		if err != nil || img.ID != id {
			t.Errorf("%s: %v (%v)", ref, img, err)
		}
	}
	img, _ := e.store.Get(id)
	cfg, _ := e.store.Config(img)
	if want := map[string]string{"a": "file", "b": "cli"}; !maps.Equal(cfg.Config.Labels, want) {
		t.Errorf("labels = %v, want %v (target base)", cfg.Config.Labels, want)
	}
}

// RUN runs with the stage's environment, ARGs, SHELL, WORKDIR and USER, without network (only
// loopback), and its output is streamed; a failed build leaves no scratch directory or mount.
func TestRunEnvironment(t *testing.T) {
	e := newEnv(t)
	dir := writeContext(t, map[string]string{"Dockerfile": `FROM busybox
ARG BUILD_ONLY=arg-value
ENV FROM_ENV=env-value
WORKDIR /work/dir
SHELL ["/bin/sh", "-ec"]
RUN echo "args:$BUILD_ONLY env:$FROM_ENV pwd:$(pwd) net:$(ls /sys/class/net | tr '\n' ' ')" && echo "$0" > /shell
USER app
RUN echo "uid:$(id -u) gid:$(id -g) groups:$(id -G)"
RUN ["echo", "exec form $HOME"]
RUN --network=host test "$(ls /sys/class/net)" != lo && echo host network
`})
	res, _, out, err := e.build(t, dir, build.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := "args:arg-value env:env-value pwd:/work/dir net:lo \nuid:1000 gid:1000 groups:1000 2000\nexec form $HOME\nhost network\n"
	if out != want {
		t.Errorf("output %q, want %q", out, want)
	}
	cfg, _ := e.store.Config(res.Image)
	for _, kv := range cfg.Config.Env {
		if strings.HasPrefix(kv, "BUILD_ONLY=") {
			t.Errorf("ARG persisted in the image env: %q", cfg.Config.Env)
		}
	}

	fail := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nCOPY x /x\nRUN exit 1\n", "x": "x"})
	if _, _, _, err := e.build(t, fail, build.Options{}); err == nil {
		t.Fatal("failing build succeeded")
	}
	left, err := os.ReadDir(filepath.Join(e.store.Root(), "tmp"))
	if err != nil || len(left) != 0 {
		t.Errorf("scratch space after a failed build: %v %v", left, err)
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mounts), e.store.Root()) {
		t.Errorf("mounts left under the store:\n%s", mounts)
	}
}

// Cancelling the build kills a running RUN step and leaves nothing behind.
func TestCancelRun(t *testing.T) {
	e := newEnv(t)
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo started; sleep 600\n"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := writerFunc(func(b []byte) (int, error) {
		if strings.Contains(string(b), "started") {
			cancel()
		}
		return len(b), nil
	})
	done := make(chan error, 1)
	go func() {
		_, err := build.Build(ctx, e.store, build.Options{Context: dir, CgroupParent: e.cgroup, RuntimeRoot: e.runRoot, Output: out})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("build did not stop within a minute of being cancelled")
	}
	left, err := os.ReadDir(filepath.Join(e.store.Root(), "tmp"))
	if err != nil || len(left) != 0 {
		t.Errorf("scratch space after a cancelled build: %v %v", left, err)
	}
	if ents, _ := os.ReadDir(e.runRoot); len(ents) != 0 {
		t.Errorf("RUN container records left: %v", ents)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }
