package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/stackrun/stack/image"
	"github.com/stackrun/stack/internal/testutil"
)

// runStack runs the CLI in-process and returns its stdout.
func runImageCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	app := newApp()
	var out, errOut bytes.Buffer
	app.Writer, app.ErrWriter = &out, &errOut
	err := app.Run(append([]string{"stack"}, args...))
	return out.String(), err
}

func TestImageCommands(t *testing.T) {
	root, runRoot := t.TempDir(), t.TempDir()
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs.tar")
	if err := os.WriteFile(rootfs, testutil.LayerTar(t,
		testutil.TarEntry{Name: "etc/"}, testutil.TarEntry{Name: "etc/hostname", Body: "x\n"}), 0o600); err != nil {
		t.Fatal(err)
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := runImageCLI(t, append([]string{"--root", root, "--run-root", runRoot}, args...)...)
		if err != nil {
			t.Fatalf("stack %s: %v", strings.Join(args, " "), err)
		}
		return out
	}
	id := strings.TrimSpace(must("image", "import", rootfs, "app:1"))
	if !strings.HasPrefix(id, "sha256:") {
		t.Fatalf("import printed %q", id)
	}
	must("image", "tag", "app:1", "localhost:5000/team/app:2")
	ls := must("image", "ls")
	for _, want := range []string{"REPOSITORY", "app ", "localhost:5000/team/app", id[7:19]} {
		if !strings.Contains(ls, want) {
			t.Errorf("image ls lacks %q:\n%s", want, ls)
		}
	}
	var insp []map[string]any
	if err := json.Unmarshal([]byte(must("image", "inspect", "app:1")), &insp); err != nil || len(insp) != 1 || insp[0]["id"] != id {
		t.Fatalf("inspect: %v %v", insp, err)
	}
	archive := filepath.Join(dir, "app.tar")
	must("image", "save", "-o", archive, "app:1")
	if out := must("image", "rm", "app:1", "localhost:5000/team/app:2"); !strings.Contains(out, "removed app:1") {
		t.Errorf("rm printed %q", out)
	}
	if _, err := runImageCLI(t, "--root", root, "--run-root", runRoot, "image", "inspect", "app:1"); err == nil {
		t.Error("inspect of a removed image succeeded")
	}
	if out := must("image", "load", "-i", archive); !strings.Contains(out, "Loaded image: app:1") {
		t.Errorf("load printed %q", out)
	}
	if out := must("image", "ls", "-q"); strings.TrimSpace(out) != id[7:19] {
		t.Errorf("ls -q after load = %q, want %s", out, id[7:19])
	}
	if out := must("image", "prune"); !strings.Contains(out, "removed 0 images") {
		t.Errorf("prune printed %q", out)
	}
	// A container record naming the image (as the engine writes it) makes rm refuse.
	cdir := filepath.Join(root, "containers", "c1")
	if err := os.MkdirAll(cdir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cdir, "local.json"), []byte(`{"image_id":"`+id+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := runImageCLI(t, "--root", root, "--run-root", runRoot, "image", "rm", "app:1"); !errors.Is(err, image.ErrInUse) {
		t.Errorf("rm of an image a container uses: %v, want ErrInUse", err)
	}
	must("image", "rm", "-f", "app:1")
	if out := must("image", "ls"); !strings.Contains(out, "<none>") {
		t.Errorf("forced rm of an image in use should leave it untagged:\n%s", out)
	}
	if _, err := runImageCLI(t, "--root", root, "--run-root", runRoot, "image", "pull"); exitCode(err) != exitUsage {
		t.Errorf("pull without a reference: exit %d (%v), want %d", exitCode(err), err, exitUsage)
	}
}

// `stack pull` pulls every service image of the stack file (from an in-process registry).
func TestPullStackFile(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	for _, repo := range []string{"web", "db"} {
		img, err := random.Image(1024, 2)
		if err != nil {
			t.Fatal(err)
		}
		ref, _ := name.ParseReference(host + "/" + repo + ":1")
		if err := remote.Write(ref, img); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "stack.yaml")
	yaml := "services:\n  web:\n    image: " + host + "/web:1\n  db:\n    image: " + host + "/db:1\n  db2:\n    image: " + host + "/db:1\n"
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	root, runRoot := t.TempDir(), t.TempDir()
	if _, err := runImageCLI(t, "--root", root, "--run-root", runRoot, "-f", file, "pull", "-q"); err != nil {
		t.Fatal(err)
	}
	out, err := runImageCLI(t, "--root", root, "--run-root", runRoot, "image", "ls")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{host + "/web", host + "/db"} {
		if !strings.Contains(out, want) {
			t.Errorf("image ls lacks %s:\n%s", want, out)
		}
	}
}
