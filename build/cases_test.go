package build_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stackrun/stack/build"
	"github.com/stackrun/stack/image"
)

// Acceptance 2: CMD and ENTRYPOINT in shell and exec form give Docker's argv; ENTRYPOINT resets
// the CMD inherited from the base; SHELL changes the shell-form wrapper.
func TestCmdEntrypoint(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name       string
		dockerfile string
		entrypoint []string
		cmd        []string
		output     string // what the image prints when run
	}{
		{
			name:       "cmd shell",
			dockerfile: "FROM busybox\nCMD echo hi $HOME\n",
			cmd:        []string{"/bin/sh", "-c", "echo hi $HOME"},
			// the shell expands $HOME, which the runtime sets from the image's passwd entry of
			// the user when the image does not (as runc and Docker do: root's is /root)
			output: "hi /root\n",
		},
		{
			name:       "cmd exec",
			dockerfile: "FROM busybox\nCMD [\"echo\", \"hi\", \"$HOME\"]\n",
			cmd:        []string{"echo", "hi", "$HOME"},
			output:     "hi $HOME\n",
		},
		{
			name:       "entrypoint shell with cmd exec",
			dockerfile: "FROM busybox\nCMD [\"ignored\"]\nENTRYPOINT echo ep\n",
			entrypoint: []string{"/bin/sh", "-c", "echo ep"},
			cmd:        []string{"ignored"},
			output:     "ep\n",
		},
		{
			name:       "entrypoint exec with cmd shell",
			dockerfile: "FROM busybox\nENTRYPOINT [\"echo\", \"ep\"]\nCMD echo x\n",
			entrypoint: []string{"echo", "ep"},
			cmd:        []string{"/bin/sh", "-c", "echo x"},
			output:     "ep /bin/sh -c echo x\n",
		},
		{
			name:       "entrypoint resets inherited cmd",
			dockerfile: "FROM busybox AS base\nCMD [\"base\"]\nFROM base\nENTRYPOINT [\"echo\", \"only\"]\n",
			entrypoint: []string{"echo", "only"},
			output:     "only\n",
		},
		{
			name:       "shell instruction",
			dockerfile: "FROM busybox\nSHELL [\"/bin/sh\", \"-ec\"]\nCMD echo sh\n",
			cmd:        []string{"/bin/sh", "-ec", "echo sh"},
			output:     "sh\n",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeContext(t, map[string]string{"Dockerfile": tc.dockerfile})
			tag := "argv:" + strings.ReplaceAll(tc.name, " ", "-")
			res, _ := e.mustBuild(t, dir, build.Options{Tags: []string{tag}})
			cfg, err := e.store.Config(res.Image)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(cfg.Config.Entrypoint, tc.entrypoint) || !slices.Equal(cfg.Config.Cmd, tc.cmd) {
				t.Errorf("entrypoint %q cmd %q, want %q %q", cfg.Config.Entrypoint, cfg.Config.Cmd, tc.entrypoint, tc.cmd)
			}
			want := append(slices.Clone(tc.entrypoint), tc.cmd...)
			if got := image.ContainerDefaults(cfg, image.Overrides{}).Args; !slices.Equal(got, want) {
				t.Errorf("argv %q, want %q", got, want)
			}
			if got := e.runImage(t, tag); got != tc.output {
				t.Errorf("output %q, want %q", got, tc.output)
			}
		})
	}
}

const tenSteps = `FROM busybox
ARG V=1
ENV A=1
WORKDIR /app
COPY a.txt /app/
RUN cat a.txt > /app/a.copy
COPY b.txt ./
RUN cat b.txt > /app/b.copy
LABEL x=y
CMD ["cat", "/app/a.copy", "/app/b.copy"]
`

// Acceptance 3: a second build is fully cached (same image); changing one copied file rebuilds
// from its COPY on only; --no-cache runs everything.
func TestCache(t *testing.T) {
	e := newEnv(t)
	dir := writeContext(t, map[string]string{"Dockerfile": tenSteps, "a.txt": "a\n", "b.txt": "b\n"})
	first, ev := e.mustBuild(t, dir, build.Options{Tags: []string{"cached:1"}})
	for _, s := range ev.statuses()[1:] {
		if !strings.HasSuffix(s, "=> done") {
			t.Errorf("first build: %s, want done", s)
		}
	}
	second, ev := e.mustBuild(t, dir, build.Options{Tags: []string{"cached:1"}})
	st := ev.statuses()
	if len(st) != 10 || st[0] != "FROM busybox => base" {
		t.Fatalf("statuses = %q", st)
	}
	for _, s := range st[1:] {
		if !strings.HasSuffix(s, "=> cached") {
			t.Errorf("second build: %s, want cached", s)
		}
	}
	if second.Image.ID != first.Image.ID {
		t.Errorf("second build made %s, first %s", second.Image.ID, first.Image.ID)
	}

	if err := os.WriteFile(filepath.Join(dir, "b.txt"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	third, ev := e.mustBuild(t, dir, build.Options{Tags: []string{"cached:1"}})
	want := []string{
		"FROM busybox => base",
		"ARG V=1 => cached",
		"ENV A=1 => cached",
		"WORKDIR /app => cached",
		"COPY a.txt /app/ => cached",
		"RUN cat a.txt > /app/a.copy => cached",
		"COPY b.txt ./ => done",
		"RUN cat b.txt > /app/b.copy => done",
		"LABEL x=y => done",
		`CMD ["cat", "/app/a.copy", "/app/b.copy"] => done`,
	}
	if got := ev.statuses(); !slices.Equal(got, want) {
		t.Errorf("after changing b.txt:\n got %q\nwant %q", got, want)
	}
	if third.Image.ID == first.Image.ID {
		t.Error("changed context gave the same image")
	}
	for i := 0; i < 4; i++ { // busybox's and those of WORKDIR, COPY a, RUN a are shared
		if third.Image.Layers[i] != first.Image.Layers[i] {
			t.Errorf("layer %d differs after a later change", i)
		}
	}
	if got := e.runImage(t, "cached:1"); got != "a\nchanged\n" {
		t.Errorf("output %q", got)
	}

	// A build arg that changes its ARG's value invalidates from that ARG on.
	_, ev = e.mustBuild(t, dir, build.Options{Args: map[string]string{"V": "2"}})
	if got := ev.statuses(); got[1] != "ARG V=1 => done" || got[5] != "RUN cat a.txt > /app/a.copy => done" {
		t.Errorf("with V=2: %q", got)
	}

	_, ev = e.mustBuild(t, dir, build.Options{NoCache: true})
	for _, s := range ev.statuses()[1:] {
		if !strings.HasSuffix(s, "=> done") {
			t.Errorf("--no-cache: %s, want done", s)
		}
	}
}

// BenchmarkCachedBuild measures a fully cached build of a 10-step Dockerfile (target: under
// 200 ms).
func BenchmarkCachedBuild(b *testing.B) {
	e := newEnv(b)
	dir := writeContext(b, map[string]string{"Dockerfile": tenSteps, "a.txt": "a\n", "b.txt": "b\n"})
	e.mustBuild(b, dir, build.Options{Tags: []string{"bench:1"}})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, ev := e.mustBuild(b, dir, build.Options{Tags: []string{"bench:1"}})
		for _, s := range ev.statuses()[1:] {
			if !strings.HasSuffix(s, "=> cached") {
				b.Fatalf("%s: not cached", s)
			}
		}
	}
}

// Acceptance 4: a RUN deleting files of a lower layer leaves whiteouts: the files are absent
// from the final image; a directory removed and re-created is opaque.
func TestWhiteout(t *testing.T) {
	e := newEnv(t)
	dir := writeContext(t, map[string]string{"Dockerfile": `FROM busybox
RUN mkdir -p /d/sub && echo 1 > /d/sub/f && echo k > /d/keep
RUN rm /etc/hostname && rm -rf /d && mkdir /d && echo new > /d/n
CMD ["sh", "-c", "ls /etc; ls -R /d"]
`})
	res, _ := e.mustBuild(t, dir, build.Options{Tags: []string{"wh:1"}})
	got := e.runImage(t, "wh:1")
	if want := "group\npasswd\n/d:\nn\n"; got != want {
		t.Errorf("image shows %q, want %q", got, want)
	}
	top := res.Image.Layers[len(res.Image.Layers)-1]
	names := layerNames(t, e.store, top.Digest)
	for _, want := range []string{"etc/.wh.hostname", "d/", "d/.wh..wh..opq", "d/n"} {
		if !slices.Contains(names, want) {
			t.Errorf("top layer lacks %s: %q", want, names)
		}
	}
}

func layerNames(t *testing.T, s *image.Store, digest string) []string {
	t.Helper()
	blob, err := s.ReadBlob(digest)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(blob))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
}

// Acceptance 5: each error names the Dockerfile line and says what is wrong.
func TestErrors(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name, dockerfile string
		want             string
	}{
		{
			name:       "unknown instruction",
			dockerfile: "FROM busybox\nFOO bar\n",
			want:       `Dockerfile:2: unknown instruction "FOO"`,
		},
		{
			name:       "missing source",
			dockerfile: "FROM busybox\n\nCOPY missing.txt /x\n",
			want:       `Dockerfile:3: COPY missing.txt /x: source "missing.txt" not found in the build context`,
		},
		{
			name:       "failing run",
			dockerfile: "FROM busybox\nENV X=1\nRUN echo out; echo boom >&2; \\\n  exit 7\n",
			want:       "Dockerfile:3: RUN echo out; echo boom >&2;   exit 7: command failed with exit code 7; output:\nout\nboom",
		},
		{
			name:       "source escaping the context",
			dockerfile: "FROM busybox\nCOPY ../secret /x\n",
			want:       `Dockerfile:2: COPY ../secret /x: source "../secret" is outside the build context`,
		},
		{
			name:       "symlink escaping the context",
			dockerfile: "FROM busybox\nCOPY link /x\n",
			want:       `Dockerfile:2: COPY link /x: source "link" is outside the build context: it resolves to /etc/passwd`,
		},
		{
			name:       "ADD from a URL",
			dockerfile: "FROM busybox\nADD https://example.com/a.tgz /x\n",
			want:       "Dockerfile:2: ADD https://example.com/a.tgz /x: source https://example.com/a.tgz: URLs are not supported: stack builds without network access",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeContext(t, map[string]string{"Dockerfile": tc.dockerfile})
			if err := os.Symlink("/etc/passwd", filepath.Join(dir, "link")); err != nil {
				t.Fatal(err)
			}
			_, _, _, err := e.build(t, dir, build.Options{})
			if err == nil {
				t.Fatal("build succeeded")
			}
			if err.Error() != tc.want {
				t.Errorf("error:\n%s\nwant:\n%s", err, tc.want)
			}
		})
	}
	var se *build.StepError
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN exit 3\n"})
	_, _, _, err := e.build(t, dir, build.Options{})
	if !errors.As(err, &se) || se.ExitCode != 3 || se.Line != 2 || !errors.Is(err, build.ErrRunFailed) {
		t.Errorf("error %v: not a StepError with exit code 3 at line 2", err)
	}
}
