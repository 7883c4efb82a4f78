package local

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestCopyStaysInRoot copies through symlinks that point out of a fake container root (to /,
// and up with ..) in both directions and checks that only files below the root are read or
// written. No root privileges needed: the "container" is a directory.
func TestCopyStaysInRoot(t *testing.T) {
	ctr := t.TempDir()
	host := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(ctr, "etc"), 0o755))
	must(os.MkdirAll(filepath.Join(ctr, "tmp"), 0o755))
	must(os.WriteFile(filepath.Join(ctr, "etc/secret"), []byte("inside"), 0o600))
	must(os.Symlink("/", filepath.Join(ctr, "escape")))
	must(os.Symlink("../../../../../../..", filepath.Join(ctr, "up")))
	// A host file at the same path as the container's: reading it would be the escape.
	outside := filepath.Join(host, "etc")
	must(os.MkdirAll(outside, 0o755))
	must(os.WriteFile(filepath.Join(outside, "secret"), []byte("HOST"), 0o600))
	root, err := os.Open(ctr)
	must(err)
	defer root.Close()
	ctx := context.Background()

	for i, src := range []string{"/etc/secret", "/escape/etc/secret", "/up/etc/secret", "escape/../up/etc/secret", host + "/etc/secret"} {
		dst := filepath.Join(host, "out", string(rune('a'+i)))
		must(os.MkdirAll(filepath.Dir(dst), 0o755))
		err := copyOut(ctx, root, src, dst)
		if src == host+"/etc/secret" {
			if err == nil {
				t.Errorf("copy out of %s (a host path, absent in the container) succeeded", src)
			}
			continue
		}
		must(err)
		if b, _ := os.ReadFile(dst); string(b) != "inside" {
			t.Errorf("copy out of %s read %q", src, b)
		}
	}

	in := filepath.Join(host, "in")
	must(os.WriteFile(in, []byte("new"), 0o644))
	for _, dst := range []string{"/escape/tmp/a", "/up/tmp/b", "/up" + host + "/c"} {
		err := copyIn(ctx, root, in, dst)
		if dst == "/up"+host+"/c" {
			if err == nil {
				t.Errorf("copy into %s succeeded", dst)
			}
			if _, serr := os.Stat(filepath.Join(host, "c")); serr == nil {
				t.Errorf("copy into %s wrote the host", dst)
			}
			continue
		}
		must(err)
		if b, _ := os.ReadFile(filepath.Join(ctr, "tmp", filepath.Base(dst))); string(b) != "new" {
			t.Errorf("copy into %s: container has %q", dst, b)
		}
	}
	// A symlink at the destination is replaced, not followed.
	must(os.Symlink(filepath.Join(outside, "secret"), filepath.Join(ctr, "tmp/link")))
	must(copyIn(ctx, root, in, "/tmp/link"))
	if b, _ := os.ReadFile(filepath.Join(outside, "secret")); string(b) != "HOST" {
		t.Errorf("copy onto a symlink wrote its target: %q", b)
	}
	if fi, err := os.Lstat(filepath.Join(ctr, "tmp/link")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("symlink not replaced: %v %v", fi, err)
	}
}
