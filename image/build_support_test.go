package image

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/stackrun/stack/internal/testutil"
)

func diffEntries(t *testing.T, dir string) []string {
	t.Helper()
	var buf bytes.Buffer
	n, err := WriteDiff(&buf, dir)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&buf)
	var out []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		e := string(h.Typeflag) + " " + h.Name
		switch h.Typeflag {
		case tar.TypeSymlink, tar.TypeLink:
			e += " -> " + h.Linkname
		case tar.TypeReg:
			e += " " + string(b)
		}
		out = append(out, e)
	}
	if n != len(out) {
		t.Errorf("WriteDiff counted %d entries, tar has %d", n, len(out))
	}
	return out
}

func TestWriteDiff(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "a/b"), 0o755)
	os.WriteFile(filepath.Join(dir, "a/b/f"), []byte("content"), 0o644)
	os.Link(filepath.Join(dir, "a/b/f"), filepath.Join(dir, "a/hard"))
	os.Symlink("/nowhere", filepath.Join(dir, "link"))
	got := strings.Join(diffEntries(t, dir), "\n")
	want := strings.Join([]string{
		"5 a/", "5 a/b/", "0 a/b/f content", "1 a/hard -> a/b/f", "2 link -> /nowhere",
	}, "\n")
	if got != want {
		t.Errorf("entries:\n%s\nwant:\n%s", got, want)
	}
	if got := diffEntries(t, t.TempDir()); len(got) != 0 {
		t.Errorf("empty dir gave %q", got)
	}
}

// Overlay's whiteouts (0/0 character devices) and opaque directories become OCI whiteouts.
func TestWriteDiffWhiteouts(t *testing.T) {
	testutil.RequireRoot(t)
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "etc"), 0o755)
	if err := unix.Mknod(filepath.Join(dir, "etc/gone"), unix.S_IFCHR, 0); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(filepath.Join(dir, "opq"), 0o755)
	if err := unix.Setxattr(filepath.Join(dir, "opq"), "trusted.overlay.opaque", []byte("y"), 0); err != nil {
		t.Skipf("trusted xattrs unsupported here: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "opq/new"), []byte("n"), 0o644)
	got := strings.Join(diffEntries(t, dir), "\n")
	want := strings.Join([]string{"5 etc/", "0 etc/.wh.gone ", "5 opq/", "0 opq/.wh..wh..opq ", "0 opq/new n"}, "\n")
	if got != want {
		t.Errorf("entries:\n%s\nwant:\n%s", got, want)
	}
}
