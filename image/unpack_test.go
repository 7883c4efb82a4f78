package image

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stackrun/stack/internal/testutil"
)

type E = testutil.TarEntry

func privileged() bool { return os.Geteuid() == 0 }

func diffID(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func TestUnpackRegularLayer(t *testing.T) {
	mt := time.Date(2020, 5, 6, 7, 8, 9, 0, time.UTC)
	raw := testutil.LayerTar(t,
		E{Name: "./", Mode: 0o755},
		E{Name: "bin/", Mode: 0o755},
		E{Name: "bin/busybox", Body: "#!binary", Mode: 0o4755, UID: 0, GID: 0, ModTime: mt},
		E{Name: "bin/sh", Type: tar.TypeSymlink, Link: "busybox"},
		E{Name: "bin/ash", Type: tar.TypeLink, Link: "bin/busybox"},
		E{Name: "etc/motd", Body: "hello\n", Mode: 0o640, UID: 1000, GID: 1001},
		E{Name: "tmp/", Mode: 0o1777, ModTime: mt},
		E{Name: "run/fifo", Type: tar.TypeFifo, Mode: 0o600},
		E{Name: "etc/motd", Body: "replaced\n", Mode: 0o644, UID: 1000, GID: 1001}, // later entry wins
		E{Name: "dev/null", Type: tar.TypeChar, Major: 1, Minor: 3, Mode: 0o666},
	)
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"plain", raw},
		{"gzip", testutil.Gzip(t, raw)},
		{"zstd", testutil.Zstd(t, raw)},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			st, err := Unpack(bytes.NewReader(c.data), dir, UnpackOptions{DiffID: diffID(raw), Privileged: privileged()})
			if err != nil {
				t.Fatal(err)
			}
			if st.DiffID != diffID(raw) || st.Entries != 10 {
				t.Errorf("stats = %+v", st)
			}
			bb := filepath.Join(dir, "bin/busybox")
			fi, err := os.Lstat(bb)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode()&fs.ModePerm != 0o755 || fi.Mode()&fs.ModeSetuid == 0 {
				t.Errorf("busybox mode = %v, want setuid 0755", fi.Mode())
			}
			if !fi.ModTime().Equal(mt) {
				t.Errorf("busybox mtime = %v, want %v", fi.ModTime(), mt)
			}
			if l, _ := os.Readlink(filepath.Join(dir, "bin/sh")); l != "busybox" {
				t.Errorf("bin/sh -> %q", l)
			}
			ash, _ := os.Lstat(filepath.Join(dir, "bin/ash"))
			if ash == nil || !os.SameFile(fi, ash) {
				t.Errorf("bin/ash is not a hard link of bin/busybox")
			}
			b, _ := os.ReadFile(filepath.Join(dir, "etc/motd"))
			if string(b) != "replaced\n" {
				t.Errorf("etc/motd = %q", b)
			}
			tmp, _ := os.Lstat(filepath.Join(dir, "tmp"))
			if tmp.Mode()&fs.ModeSticky == 0 || tmp.Mode()&fs.ModePerm != 0o777 || !tmp.ModTime().Equal(mt) {
				t.Errorf("tmp = %v %v", tmp.Mode(), tmp.ModTime())
			}
			if fifo, err := os.Lstat(filepath.Join(dir, "run/fifo")); err != nil || fifo.Mode()&fs.ModeNamedPipe == 0 {
				t.Errorf("run/fifo: %v %v", fifo, err)
			}
			motd, _ := os.Lstat(filepath.Join(dir, "etc/motd"))
			if privileged() {
				sys := motd.Sys().(*syscall.Stat_t)
				if sys.Uid != 1000 || sys.Gid != 1001 {
					t.Errorf("etc/motd owner = %d:%d", sys.Uid, sys.Gid)
				}
				null, err := os.Lstat(filepath.Join(dir, "dev/null"))
				if err != nil || null.Mode()&fs.ModeCharDevice == 0 || null.Sys().(*syscall.Stat_t).Rdev != unix.Mkdev(1, 3) {
					t.Errorf("dev/null: %v %v", null, err)
				}
			} else if st.Skipped != 1 {
				t.Errorf("unprivileged: skipped %d device nodes, want 1", st.Skipped)
			}
		})
	}
}

func TestUnpackWhiteouts(t *testing.T) {
	testutil.RequireRoot(t)
	raw := testutil.LayerTar(t,
		E{Name: "etc/.wh.passwd"},
		E{Name: "var/cache/"},
		E{Name: "var/cache/.wh..wh..opq"},
		E{Name: "var/cache/new", Body: "n"},
		E{Name: "x/.wh..wh.plnk"},
	)
	dir := t.TempDir()
	if _, err := Unpack(bytes.NewReader(testutil.Gzip(t, raw)), dir, UnpackOptions{Privileged: true}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(filepath.Join(dir, "etc/passwd"))
	if err != nil || fi.Mode()&fs.ModeCharDevice == 0 || fi.Sys().(*syscall.Stat_t).Rdev != 0 {
		t.Fatalf("etc/passwd whiteout: %v %v", fi, err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "etc/.wh.passwd")); err == nil {
		t.Error(".wh. file left in the layer")
	}
	buf := make([]byte, 8)
	n, err := unix.Lgetxattr(filepath.Join(dir, "var/cache"), overlayOpaqueXattr, buf)
	if err != nil || string(buf[:n]) != "y" {
		t.Errorf("opaque xattr = %q, %v", buf[:n], err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "var/cache/.wh..wh..opq")); err == nil {
		t.Error("opaque marker left as a file")
	}
	if _, err := os.Lstat(filepath.Join(dir, "x/.wh..wh.plnk")); err == nil {
		t.Error("aufs metadata left as a file")
	}
}

func TestUnpackWhiteoutUnprivileged(t *testing.T) {
	raw := testutil.LayerTar(t, E{Name: "etc/.wh.passwd"})
	_, err := Unpack(bytes.NewReader(raw), t.TempDir(), UnpackOptions{})
	if err == nil || !strings.Contains(err.Error(), "root") {
		t.Fatalf("err = %v, want a whiteout-needs-root error", err)
	}
}

func TestUnpackRefusesHostileLayers(t *testing.T) {
	tenGiB := int64(10) << 30
	good := testutil.LayerTar(t, E{Name: "a", Body: "a"})
	gz := testutil.Gzip(t, testutil.LayerTar(t, E{Name: "a", Body: strings.Repeat("x", 10000)}))
	cases := []struct {
		name   string
		data   []byte
		opts   UnpackOptions
		errHas string
	}{
		{"dotdot", testutil.LayerTar(t, E{Name: "../../etc/x", Body: "pwned"}), UnpackOptions{}, "escapes"},
		{"dotdot inside", testutil.LayerTar(t, E{Name: "a/../../x", Body: "pwned"}), UnpackOptions{}, "escapes"},
		{"absolute", testutil.LayerTar(t, E{Name: "/abs/path", Body: "pwned"}), UnpackOptions{}, "absolute"},
		{"symlink to root then through it", testutil.LayerTar(t,
			E{Name: "link", Type: tar.TypeSymlink, Link: "/"},
			E{Name: "link/etc/x", Body: "pwned"}), UnpackOptions{}, "symlink"},
		{"symlink up then through it", testutil.LayerTar(t,
			E{Name: "up", Type: tar.TypeSymlink, Link: "../../.."},
			E{Name: "up/x", Body: "pwned"}), UnpackOptions{}, "symlink"},
		{"hardlink to host path", testutil.LayerTar(t,
			E{Name: "h", Type: tar.TypeLink, Link: "/etc/passwd"}), UnpackOptions{}, "absolute"},
		{"hardlink climbing out", testutil.LayerTar(t,
			E{Name: "h", Type: tar.TypeLink, Link: "../outside"}), UnpackOptions{}, "escapes"},
		{"hardlink through symlink", testutil.LayerTar(t,
			E{Name: "l", Type: tar.TypeSymlink, Link: "/etc"},
			E{Name: "h", Type: tar.TypeLink, Link: "l/passwd"}), UnpackOptions{}, "symlink"},
		{"hardlink to missing", testutil.LayerTar(t,
			E{Name: "h", Type: tar.TypeLink, Link: "nothere"}), UnpackOptions{}, "not in this layer"},
		{"diff id mismatch", good, UnpackOptions{DiffID: "sha256:" + strings.Repeat("0", 64)}, "does not match"},
		{"truncated gzip", gz[:len(gz)/2], UnpackOptions{}, "unexpected EOF"},
		{"header claims 10 GiB", testutil.LayerTar(t, E{Name: "big", Body: "tiny", ClaimSize: tenGiB}), UnpackOptions{}, "unexpected EOF"},
		{"header over limit", testutil.LayerTar(t, E{Name: "big", Body: "tiny", ClaimSize: tenGiB}),
			UnpackOptions{Limits: Limits{MaxBytes: 1 << 30}}, "exceeds the layer limit"},
		{"too many entries", testutil.LayerTar(t, E{Name: "a"}, E{Name: "b"}, E{Name: "c"}),
			UnpackOptions{Limits: Limits{MaxEntries: 2}}, "more than 2 entries"},
		{"name too long", testutil.LayerTar(t, E{Name: strings.Repeat("d/", 40) + "f"}),
			UnpackOptions{Limits: Limits{MaxNameLen: 50}}, "longer than 50"},
		{"component too long", testutil.LayerTar(t, E{Name: strings.Repeat("n", 256)}), UnpackOptions{}, "component longer"},
		{"file as parent", testutil.LayerTar(t, E{Name: "f", Body: "x"}, E{Name: "f/g", Body: "y"}), UnpackOptions{}, "not a directory"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sandbox := t.TempDir()
			dir := filepath.Join(sandbox, "a", "b", "layer")
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			c.opts.Privileged = privileged()
			_, err := Unpack(bytes.NewReader(c.data), dir, c.opts)
			if err == nil {
				t.Fatal("hostile layer unpacked without error")
			}
			if !errors.Is(err, ErrInvalidLayer) {
				t.Errorf("err = %v, want ErrInvalidLayer", err)
			}
			if !strings.Contains(err.Error(), c.errHas) {
				t.Errorf("err = %v, want it to mention %q", err, c.errHas)
			}
			// Nothing may appear next to the layer dir.
			filepath.WalkDir(sandbox, func(p string, d fs.DirEntry, _ error) error {
				if p == sandbox || p == dir || strings.HasPrefix(p, dir+"/") ||
					p == filepath.Join(sandbox, "a") || p == filepath.Join(sandbox, "a", "b") {
					return nil
				}
				t.Errorf("written outside the layer: %s", p)
				return nil
			})
		})
	}
}

func TestCleanName(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"./", "."}, {"a/b/../c", "a/c"}, {"./usr/bin/", "usr/bin"}, {"a//b", "a/b"},
	} {
		got, err := cleanName(c.in, DefaultMaxNameLen)
		if err != nil || got != c.want {
			t.Errorf("cleanName(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}
