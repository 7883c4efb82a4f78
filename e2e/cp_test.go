package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stackrun/stack/internal/testutil"
)

const cpStack = `
services:
  app:
    image: stack-example:latest
    command: ["sleep", "3600"]
    volumes:
      - data:/data
volumes:
  data:
`

const containerPasswd = "root:x:0:0:root:/:/bin/sh\n"

// TestCp copies files and trees out of and into a running container, and checks that symlinks
// in the container (one to /, one climbing with ..) resolve inside it in both directions: no
// host file is read or written through them.
func TestCp(t *testing.T) {
	e := newEnv(t)
	e.exampleImage()
	f := e.stackFile(cpStack)
	e.must(append(f, "up", "-d", "--wait")...)
	sh := func(script string) string {
		return e.must(append(f, "exec", "app", "/bin/busybox", "sh", "-c", script)...)
	}
	sh(`set -e; bb=/bin/busybox; $bb ln -s / /escape; $bb ln -s ../../../../../.. /up; $bb ln -s /etc/passwd /tmp/link
$bb mkdir -p /srv/tree/nested; echo one > /srv/tree/file; echo two > /srv/tree/nested/deep; $bb chmod 640 /srv/tree/file
$bb ln -s file /srv/tree/rel; $bb ln -s / /srv/tree/abs`)
	host := t.TempDir()
	read := func(p string) string {
		t.Helper()
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	// Out: a file into an existing directory, and through both escaping symlinks.
	e.must(append(f, "cp", "app:/etc/passwd", host)...)
	if got := read(filepath.Join(host, "passwd")); got != containerPasswd {
		t.Errorf("cp out /etc/passwd: %q", got)
	}
	for _, p := range []string{"/escape/etc/passwd", "/up/etc/passwd", "/escape/escape/../etc/passwd"} {
		out := filepath.Join(host, "via"+strings.ReplaceAll(p, "/", "_"))
		e.must(append(f, "cp", "app:"+p, out)...)
		if got := read(out); got != containerPasswd {
			t.Errorf("cp out %s read a file outside the container: %q", p, got)
		}
	}
	// Out: a tree, symlinks kept as symlinks (not followed), modes kept.
	e.must(append(f, "cp", "app:/srv/tree", filepath.Join(host, "tree"))...)
	if read(filepath.Join(host, "tree/file")) != "one\n" || read(filepath.Join(host, "tree/nested/deep")) != "two\n" {
		t.Errorf("cp out tree: wrong contents")
	}
	if fi, err := os.Stat(filepath.Join(host, "tree/file")); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("cp out tree: file mode %v %v", fi, err)
	}
	for name, want := range map[string]string{"rel": "file", "abs": "/"} {
		if got, err := os.Readlink(filepath.Join(host, "tree", name)); err != nil || got != want {
			t.Errorf("cp out tree: symlink %s -> %q (%v), want %q", name, got, err, want)
		}
	}

	// In: a file through the symlink to /: it lands in the container's /tmp, not the host's.
	unique := "stk-cp-" + testutil.UniqueName()
	src := filepath.Join(host, "in.txt")
	os.WriteFile(src, []byte("from the host\n"), 0o644)
	e.must(append(f, "cp", src, "app:/escape/tmp/"+unique)...)
	if _, err := os.Lstat("/tmp/" + unique); err == nil {
		os.Remove("/tmp/" + unique)
		t.Fatalf("cp in through /escape wrote the host's /tmp/%s", unique)
	}
	if got := sh("cat /tmp/" + unique); got != "from the host\n" {
		t.Errorf("cp in through /escape: container has %q", got)
	}
	e.must(append(f, "cp", src, "app:/up/tmp/"+unique+"-up")...)
	if _, err := os.Lstat("/tmp/" + unique + "-up"); err == nil {
		os.Remove("/tmp/" + unique + "-up")
		t.Fatalf("cp in through /up wrote the host's /tmp")
	}
	// In: onto a symlink that points at /etc/passwd: the link is replaced, its target untouched.
	e.must(append(f, "cp", src, "app:/tmp/link")...)
	if got := sh("cat /etc/passwd; /bin/busybox readlink /tmp/link || echo not-a-link; cat /tmp/link"); got != containerPasswd+"not-a-link\nfrom the host\n" {
		t.Errorf("cp in onto a symlink: %q", got)
	}
	// In: a tree into a volume (visible through the running container's root), and its
	// contents with /. into an existing directory.
	e.must(append(f, "cp", filepath.Join(host, "tree"), "app:/data/")...)
	if got := sh("cat /data/tree/nested/deep; /bin/busybox readlink /data/tree/abs"); got != "two\n/\n" {
		t.Errorf("cp in tree to volume: %q", got)
	}
	sh("/bin/busybox mkdir /srv/flat")
	e.must(append(f, "cp", filepath.Join(host, "tree")+"/.", "app:/srv/flat")...)
	if got := sh("cat /srv/flat/file"); got != "one\n" {
		t.Errorf("cp in /.: %q", got)
	}
	if _, err := e.run(append(f, "cp", src, "app:/nonexistent/dir/x")...); err == nil {
		t.Errorf("cp into a missing directory succeeded")
	}
}
