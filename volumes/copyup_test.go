package volumes

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/stackrun/stack/internal/testutil"
	"github.com/stackrun/stack/spec"
)

const (
	testUID = 1234
	testGID = 5678
)

var seedTime = time.Date(2020, 5, 6, 7, 8, 9, 0, time.UTC)

// imageRootfs builds a fake image rootfs with content at /data owned by testUID:testGID.
func imageRootfs(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	data := filepath.Join(root, "data")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(data, "sub"), 0o755))
	must(os.WriteFile(filepath.Join(data, "seed.txt"), []byte("seed\n"), 0o600))
	must(os.WriteFile(filepath.Join(data, "sub", "setuid"), []byte("#!/bin/sh\n"), 0o755))
	must(os.Link(filepath.Join(data, "seed.txt"), filepath.Join(data, "sub", "seed-link")))
	must(os.Symlink("seed.txt", filepath.Join(data, "rel-link")))
	must(os.Symlink("/etc/passwd", filepath.Join(data, "abs-link")))
	must(unix.Mkfifo(filepath.Join(data, "fifo"), 0o620))
	must(unix.Mknod(filepath.Join(data, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	for _, p := range []string{"sub/setuid", "seed.txt", "sub", "fifo", "."} {
		must(os.Chown(filepath.Join(data, p), testUID, testGID))
	}
	must(os.Lchown(filepath.Join(data, "rel-link"), testUID, testGID))
	must(os.Chmod(filepath.Join(data, "seed.txt"), 0o640))
	must(os.Chmod(filepath.Join(data, "sub", "setuid"), 0o4755))
	must(os.Chmod(filepath.Join(data, "sub"), 0o2750))
	must(os.Chmod(data, 0o750))
	if err := unix.Setxattr(filepath.Join(data, "seed.txt"), "user.origin", []byte("image"), 0); err != nil && !errors.Is(err, unix.ENOTSUP) {
		t.Fatal(err)
	}
	ts := []unix.Timespec{unix.NsecToTimespec(seedTime.UnixNano()), unix.NsecToTimespec(seedTime.UnixNano())}
	for _, p := range []string{"seed.txt", "sub/setuid", "rel-link", "abs-link", "fifo", "null", "sub", "."} {
		must(unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(data, p), ts, unix.AT_SYMLINK_NOFOLLOW))
	}
	return root
}

type fileFacts struct {
	mode     os.FileMode
	uid, gid uint32
	mtime    time.Time
}

func facts(t *testing.T, p string) fileFacts {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return fileFacts{mode: fi.Mode(), uid: st.Uid, gid: st.Gid, mtime: fi.ModTime().UTC()}
}

func TestCopyUpPreservesOwnersModesAndLinks(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := context.Background()
	rootfs := imageRootfs(t)
	s := openTestStore(t)
	v, err := s.Ensure(ctx, Spec{Project: "shop", Key: "data"})
	if err != nil {
		t.Fatal(err)
	}
	copied, err := s.CopyUp(ctx, v.Name, rootfs, "/data", "c1")
	if err != nil || !copied {
		t.Fatalf("CopyUp = %v, %v; want a copy", copied, err)
	}
	src := filepath.Join(rootfs, "data")
	dst := v.Mountpoint
	for _, p := range []string{".", "seed.txt", "sub", "sub/setuid", "sub/seed-link", "rel-link", "abs-link", "fifo", "null"} {
		want, got := facts(t, filepath.Join(src, p)), facts(t, filepath.Join(dst, p))
		if got != want || got.mtime != seedTime {
			t.Errorf("%s: got %+v, want %+v", p, got, want)
		}
	}
	if f := facts(t, filepath.Join(dst, "seed.txt")); f.uid != testUID || f.gid != testGID || f.mode != 0o640 {
		t.Errorf("seed.txt = %+v, want %d:%d 0640", f, testUID, testGID)
	}
	if f := facts(t, dst); f.mode.Perm() != 0o750 || f.uid != testUID {
		t.Errorf("volume top dir = %+v, want the image dir's owner and mode", f)
	}
	b, err := os.ReadFile(filepath.Join(dst, "seed.txt"))
	if err != nil || string(b) != "seed\n" {
		t.Errorf("seed.txt content = %q, %v", b, err)
	}
	for link, want := range map[string]string{"rel-link": "seed.txt", "abs-link": "/etc/passwd"} {
		if got, err := os.Readlink(filepath.Join(dst, link)); err != nil || got != want {
			t.Errorf("%s -> %q, %v; want a symlink to %q", link, got, err, want)
		}
	}
	if st := facts2(t, filepath.Join(dst, "null")); st.Rdev != facts2(t, filepath.Join(src, "null")).Rdev {
		t.Errorf("device node copied as %d, want %d", st.Rdev, facts2(t, filepath.Join(src, "null")).Rdev)
	}
	a, b2 := facts2(t, filepath.Join(dst, "seed.txt")), facts2(t, filepath.Join(dst, "sub", "seed-link"))
	if a.Ino != b2.Ino {
		t.Errorf("hard link not kept: inodes %d and %d", a.Ino, b2.Ino)
	}
	val := make([]byte, 16)
	if n, err := unix.Getxattr(filepath.Join(src, "seed.txt"), "user.origin", val); err == nil {
		if m, err := unix.Getxattr(filepath.Join(dst, "seed.txt"), "user.origin", val); err != nil || string(val[:m]) != "image" {
			t.Errorf("xattr user.origin not copied: %q, %v (source had %d bytes)", val[:m], err, n)
		}
	}
	rec, err := s.Inspect(v.Name)
	if err != nil {
		t.Fatal(err)
	}
	if rec.CopyUp == nil || rec.CopyUp.Target != "/data" || rec.CopyUp.Container != "c1" {
		t.Errorf("copy-up record = %+v", rec.CopyUp)
	}
}

func facts2(t *testing.T, p string) *syscall.Stat_t {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t)
}

func TestCopyUpOnlyOnce(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := context.Background()
	rootfs := imageRootfs(t)
	s := openTestStore(t)
	v, err := s.Ensure(ctx, Spec{Project: "shop", Key: "data"})
	if err != nil {
		t.Fatal(err)
	}
	if copied, err := s.CopyUp(ctx, v.Name, rootfs, "/data", "c1"); err != nil || !copied {
		t.Fatalf("first CopyUp = %v, %v", copied, err)
	}
	// The image gains a file (a new version); a second container must not copy again, even
	// after the user emptied the volume.
	if err := os.WriteFile(filepath.Join(rootfs, "data", "later.txt"), []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	if copied, err := s.CopyUp(ctx, v.Name, rootfs, "/data", "c2"); err != nil || copied {
		t.Fatalf("second CopyUp = %v, %v; want no copy", copied, err)
	}
	if err := emptyDir(v.Mountpoint); err != nil {
		t.Fatal(err)
	}
	if copied, err := s.CopyUp(ctx, v.Name, rootfs, "/data", "c3"); err != nil || copied {
		t.Fatalf("CopyUp after emptying = %v, %v; want no copy", copied, err)
	}
	if entries, _ := os.ReadDir(v.Mountpoint); len(entries) != 0 {
		t.Errorf("volume got content again: %v", entries)
	}
}

func TestCopyUpSkips(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := context.Background()
	rootfs := imageRootfs(t)
	s := openTestStore(t)

	// Not empty: the user's data wins and nothing is recorded.
	v, err := s.Ensure(ctx, Spec{Name: "full"})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(v.Mountpoint, "mine"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if copied, err := s.CopyUp(ctx, "full", rootfs, "/data", "c1"); err != nil || copied {
		t.Fatalf("CopyUp into a non-empty volume = %v, %v", copied, err)
	}
	if _, err := os.Stat(filepath.Join(v.Mountpoint, "seed.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("copied into a non-empty volume")
	}

	// Nothing at the target in the image: no copy, no record, so a later image can still seed it.
	if _, err := s.Ensure(ctx, Spec{Name: "empty"}); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{"/nothing", "/data/seed.txt"} {
		if copied, err := s.CopyUp(ctx, "empty", rootfs, target, "c1"); err != nil || copied {
			t.Fatalf("CopyUp(%s) = %v, %v; want no copy", target, copied, err)
		}
	}
	if rec, _ := s.Inspect("empty"); rec.CopyUp != nil {
		t.Errorf("copy-up recorded without a copy: %+v", rec.CopyUp)
	}
	if copied, err := s.CopyUp(ctx, "empty", rootfs, "/data", "c2"); err != nil || !copied {
		t.Fatalf("CopyUp once the image has content = %v, %v", copied, err)
	}
	if _, err := s.CopyUp(ctx, "missing", rootfs, "/data", "c1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("CopyUp(missing volume) = %v, want ErrNotFound", err)
	}
}

// writeCanary makes a host directory standing for /etc, outside any rootfs.
func writeCanary(t *testing.T) (dir string, check func()) {
	t.Helper()
	dir = t.TempDir()
	canary := filepath.Join(dir, "passwd")
	if err := os.WriteFile(canary, []byte("canary\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, func() {
		t.Helper()
		entries, err := os.ReadDir(dir)
		if err != nil || len(entries) != 1 {
			t.Errorf("canary dir changed: %v, %v", entries, err)
		}
		if b, err := os.ReadFile(canary); err != nil || string(b) != "canary\n" {
			t.Errorf("canary changed: %q, %v", b, err)
		}
	}
}

func TestSymlinkToHostEtcRefused(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := context.Background()
	hostEtc, checkCanary := writeCanary(t)
	rootfs := t.TempDir()
	if err := os.Symlink(hostEtc, filepath.Join(rootfs, "data")); err != nil {
		t.Fatal(err)
	}
	s := openTestStore(t)

	if _, err := ResolveTarget(rootfs, "/data"); !errors.Is(err, ErrRefused) {
		t.Fatalf("ResolveTarget(/data -> %s) = %v, want ErrRefused", hostEtc, err)
	}
	plan := []Planned{{
		Type:   spec.MountVolume,
		Mount:  specs.Mount{Destination: "/data", Type: "bind", Source: s.DataPath("shop_data"), Options: []string{"rbind"}},
		Volume: &Spec{Project: "shop", Key: "data"},
	}}
	if _, err := s.Prepare(ctx, Container{ID: "c1", Rootfs: rootfs}, plan); !errors.Is(err, ErrRefused) {
		t.Fatalf("Prepare = %v, want ErrRefused", err)
	}
	if _, err := s.Inspect("shop_data"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a refused mount still created its volume: %v", err)
	}

	// Copy-up on its own resolves the symlink inside the rootfs: it finds nothing to copy and
	// never reads the host directory.
	v, err := s.Ensure(ctx, Spec{Name: "probe"})
	if err != nil {
		t.Fatal(err)
	}
	if copied, err := s.CopyUp(ctx, "probe", rootfs, "/data", "c1"); err != nil || copied {
		t.Errorf("CopyUp through a symlink to the host = %v, %v; want no copy", copied, err)
	}
	if entries, _ := os.ReadDir(v.Mountpoint); len(entries) != 0 {
		t.Errorf("host files copied into the volume: %v", entries)
	}
	checkCanary()
}

func TestPrepareVolumes(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := context.Background()
	rootfs := imageRootfs(t)
	stateRoot := t.TempDir()
	s, err := Open(filepath.Join(stateRoot, Dir))
	if err != nil {
		t.Fatal(err)
	}
	o := testPlanOptions()
	o.StateRoot = stateRoot
	o.ProjectDir = t.TempDir()
	plan, err := Plan([]spec.Mount{
		{Type: spec.MountVolume, Source: "data", Target: "/data"},
		{Type: spec.MountBind, Source: "./conf", Target: "/conf", CreateHostPath: true},
		{Type: spec.MountVolume, Source: "cache", Target: "/data/sub", NoCopy: true},
		{Type: spec.MountTmpfs, Target: "/tmp"},
	}, o)
	if err != nil {
		t.Fatal(err)
	}
	mounts, err := s.Prepare(ctx, Container{ID: "c1", Rootfs: rootfs}, plan)
	if err != nil {
		t.Fatal(err)
	}
	var dests []string
	for _, m := range mounts {
		dests = append(dests, m.Destination+"="+m.Source)
	}
	want := []string{
		"/data=" + s.DataPath("shop_data"),
		"/conf=" + filepath.Join(o.ProjectDir, "conf"),
		"/tmp=tmpfs",
		"/data/sub=" + s.DataPath("global-cache"),
	}
	if !reflect.DeepEqual(dests, want) {
		t.Errorf("mounts = %v, want %v", dests, want)
	}
	if _, err := os.Stat(filepath.Join(s.DataPath("shop_data"), "seed.txt")); err != nil {
		t.Errorf("copy-up did not happen: %v", err)
	}
	if entries, _ := os.ReadDir(s.DataPath("global-cache")); len(entries) != 0 {
		t.Errorf("nocopy volume got content: %v", entries)
	}
	for _, n := range []string{"shop_data", "global-cache"} {
		v, err := s.Inspect(n)
		if err != nil || !reflect.DeepEqual(v.Users, []string{"c1"}) {
			t.Errorf("%s users = %v, %v; want [c1]", n, v.Users, err)
		}
	}
	if err := s.Remove("shop_data", false); !errors.Is(err, ErrInUse) {
		t.Errorf("Remove of a mounted volume = %v, want ErrInUse", err)
	}
	if err := s.ReleaseContainer("c1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove("shop_data", false); err != nil {
		t.Errorf("Remove after release = %v", err)
	}
}

func TestConcurrentPrepareCopiesOnce(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := context.Background()
	rootfs := imageRootfs(t)
	s := openTestStore(t)
	plan := []Planned{{
		Type:   spec.MountVolume,
		Mount:  specs.Mount{Destination: "/data", Type: "bind", Source: s.DataPath("shop_data"), Options: []string{"rbind"}},
		Volume: &Spec{Project: "shop", Key: "data"},
	}}
	const n = 4
	errc := make(chan error, n)
	for i := range n {
		go func() {
			_, err := s.Prepare(ctx, Container{ID: fmt.Sprintf("c%d", i), Rootfs: rootfs}, plan)
			errc <- err
		}()
	}
	for range n {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	v, err := s.Inspect("shop_data")
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Users) != n || v.CopyUp == nil {
		t.Fatalf("record = %+v, want %d users and a copy-up", v, n)
	}
	b, err := os.ReadFile(filepath.Join(v.Mountpoint, "seed.txt"))
	if err != nil || string(b) != "seed\n" {
		t.Errorf("seed.txt = %q, %v", b, err)
	}
}

func TestCopyUpRedoesAnInterruptedCopy(t *testing.T) {
	ctx := context.Background()
	rootfs := t.TempDir()
	if err := os.MkdirAll(filepath.Join(rootfs, "data", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"a", "sub/b"} {
		if err := os.WriteFile(filepath.Join(rootfs, "data", f), []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := openTestStore(t)
	v, err := s.Ensure(ctx, Spec{Name: "vol"})
	if err != nil {
		t.Fatal(err)
	}
	// What a copy killed midway leaves: the marker, and part of the content.
	if err := s.update("vol", func(v *Volume) bool { v.CopyingUp = true; return true }); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(v.Mountpoint, "a"), []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	if copied, err := s.CopyUp(ctx, "vol", rootfs, "/data", "c2"); err != nil || !copied {
		t.Fatalf("CopyUp after an interrupted copy = %v, %v; want a fresh copy", copied, err)
	}
	for f, want := range map[string]string{"a": "a", "sub/b": "sub/b"} {
		if b, err := os.ReadFile(filepath.Join(v.Mountpoint, f)); err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", f, b, err, want)
		}
	}
	rec, err := s.Inspect("vol")
	if err != nil || rec.CopyingUp || rec.CopyUp == nil {
		t.Errorf("record after the copy: %+v, %v", rec, err)
	}
}

// TestCopyUpKilledMidway kills, with SIGKILL, a process that is copying image content into a
// volume, then copies again: the result is the whole content, not the part the first copy made.
func TestCopyUpKilledMidway(t *testing.T) {
	const envRoot, envRootfs = "STACK_TEST_COPYUP_STORE", "STACK_TEST_COPYUP_ROOTFS"
	if root := os.Getenv(envRoot); root != "" {
		// The child: copy, and stop for good after the third entry.
		s, err := Open(root)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		s.afterCopyEntry = func() {
			if n++; n == 3 {
				select {}
			}
		}
		_, err = s.CopyUp(context.Background(), "vol", os.Getenv(envRootfs), "/data", "child")
		t.Fatalf("child copy returned (%v); it should have been killed", err)
	}
	ctx := context.Background()
	rootfs := t.TempDir()
	if err := os.MkdirAll(filepath.Join(rootfs, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if err := os.WriteFile(filepath.Join(rootfs, "data", fmt.Sprintf("f%02d", i)), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := openTestStore(t)
	v, err := s.Ensure(ctx, Spec{Name: "vol"})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestCopyUpKilledMidway$")
	cmd.Env = append(os.Environ(), envRoot+"="+s.Root(), envRootfs+"="+rootfs)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := false
	t.Cleanup(func() {
		if !waited {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		entries, _ := os.ReadDir(v.Mountpoint)
		rec, err := s.Inspect("vol")
		if err == nil && rec.CopyingUp && len(entries) >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the child copy did not get going: %+v, %d entries", rec, len(entries))
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not a timing assumption
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	waited = true

	if entries, _ := os.ReadDir(v.Mountpoint); len(entries) != 3 {
		t.Fatalf("the killed copy left %d entries, want 3", len(entries))
	}
	if copied, err := s.CopyUp(ctx, "vol", rootfs, "/data", "c2"); err != nil || !copied {
		t.Fatalf("CopyUp after the killed one = %v, %v", copied, err)
	}
	if entries, _ := os.ReadDir(v.Mountpoint); len(entries) != 20 {
		t.Errorf("volume holds %d entries after the second copy, want 20", len(entries))
	}
}

func TestCopyUpHardLinks(t *testing.T) {
	ctx := context.Background()
	rootfs := t.TempDir()
	data := filepath.Join(rootfs, "data")
	if err := os.MkdirAll(filepath.Join(data, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "a", "one"), []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{"a/b/two", "three"} {
		if err := os.Link(filepath.Join(data, "a", "one"), filepath.Join(data, l)); err != nil {
			t.Fatal(err)
		}
	}
	s := openTestStore(t)
	v, err := s.Ensure(ctx, Spec{Name: "vol"})
	if err != nil {
		t.Fatal(err)
	}
	if copied, err := s.CopyUp(ctx, "vol", rootfs, "/data", "c1"); err != nil || !copied {
		t.Fatalf("CopyUp = %v, %v", copied, err)
	}
	ino := facts2(t, filepath.Join(v.Mountpoint, "a", "one")).Ino
	for _, l := range []string{"a/b/two", "three"} {
		if got := facts2(t, filepath.Join(v.Mountpoint, l)).Ino; got != ino {
			t.Errorf("%s is inode %d, want a hard link to a/one (%d)", l, got, ino)
		}
	}
	if n := facts2(t, filepath.Join(v.Mountpoint, "three")).Nlink; n != 3 {
		t.Errorf("link count %d, want 3", n)
	}
}
