package volumes

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/stackrun/stack/internal/testutil"
	"github.com/stackrun/stack/spec"
)

// The main goroutine keeps the main thread: a goroutine that locks the main thread and exits is not
// terminated with it (the runtime parks the thread instead), so inMountNamespace's namespace would
// outlive its test, and /proc/self (the main thread) would show its mounts.
func init() { runtime.LockOSThread() }

// inMountNamespace runs fn on a thread of its own in a new, private mount namespace. The thread
// is never unlocked, so it exits with the goroutine and takes the namespace and every mount made
// in it along: nothing is left on the host, also when the test fails. Processes started by fn
// (os/exec forks from the calling thread) inherit the namespace.
func inMountNamespace(t *testing.T, fn func() error) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			errc <- errors.New("mount namespace test would run on the main thread")
			return
		}
		if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
			errc <- fmt.Errorf("unshare mount namespace: %w", err)
			return
		}
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			errc <- fmt.Errorf("make / private: %w", err)
			return
		}
		errc <- fn()
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// applyMount does what a runtime does with one OCI mount from Prepare, onto dest (a path on the
// host already resolved with ResolveTarget). It is the test's stand-in for the runtime, which
// this package must not import.
func applyMount(m specs.Mount, dest string) error {
	var flags, prop uintptr
	var data []string
	for _, o := range m.Options {
		switch o {
		case "rbind":
			flags |= unix.MS_BIND | unix.MS_REC
		case "bind":
			flags |= unix.MS_BIND
		case "ro":
			flags |= unix.MS_RDONLY
		case "nosuid":
			flags |= unix.MS_NOSUID
		case "nodev":
			flags |= unix.MS_NODEV
		case "noexec":
			flags |= unix.MS_NOEXEC
		case "private":
			prop = unix.MS_PRIVATE
		case "rprivate":
			prop = unix.MS_PRIVATE | unix.MS_REC
		case "slave":
			prop = unix.MS_SLAVE
		case "rslave":
			prop = unix.MS_SLAVE | unix.MS_REC
		case "shared":
			prop = unix.MS_SHARED
		case "rshared":
			prop = unix.MS_SHARED | unix.MS_REC
		default:
			data = append(data, o)
		}
	}
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return err
	}
	if err := unix.Mount(m.Source, dest, m.Type, flags&^unix.MS_RDONLY, strings.Join(data, ",")); err != nil {
		return &os.PathError{Op: "mount", Path: dest, Err: err}
	}
	if flags&unix.MS_BIND != 0 && flags&(unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC) != 0 {
		// A bind mount ignores most flags until it is remounted (mount(2)).
		if err := unix.Mount("", dest, "", flags|unix.MS_REMOUNT, ""); err != nil {
			return &os.PathError{Op: "remount", Path: dest, Err: err}
		}
	} else if flags&unix.MS_RDONLY != 0 {
		if err := unix.Mount("", dest, "", flags|unix.MS_REMOUNT, strings.Join(data, ",")); err != nil {
			return &os.PathError{Op: "remount", Path: dest, Err: err}
		}
	}
	if prop != 0 {
		if err := unix.Mount("", dest, "", prop, ""); err != nil {
			return &os.PathError{Op: "set propagation", Path: dest, Err: err}
		}
	}
	return nil
}

// busybox runs busybox sh -c script as uid:gid.
func busybox(bb string, uid, gid uint32, script string) (string, error) {
	cmd := exec.Command(bb, "sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// traversable lets other users reach dir by opening every directory from /tmp down to it.
func traversable(t *testing.T, dir string) {
	t.Helper()
	for d := dir; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func TestBindMountsInNamespace(t *testing.T) {
	testutil.RequireRoot(t)
	bb := testutil.RequireBinary(t, "busybox")
	ctx := context.Background()
	base := t.TempDir()
	project := filepath.Join(base, "project")
	rootfs := filepath.Join(base, "rootfs")
	for _, d := range []string{filepath.Join(project, "ro"), filepath.Join(project, "rw"), rootfs} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	traversable(t, base)
	if err := os.WriteFile(filepath.Join(project, "ro", "config"), []byte("original\n"), 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(project, "ro", "config"), 0o666); err != nil { // writable but for the mount
		t.Fatal(err)
	}
	if err := os.Chown(filepath.Join(project, "rw"), testUID, testGID); err != nil {
		t.Fatal(err)
	}
	s, err := Open(filepath.Join(base, "state", Dir))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := Plan([]spec.Mount{
		{Type: spec.MountBind, Source: "./ro", Target: "/etc/app", ReadOnly: true},
		{Type: spec.MountBind, Source: "./rw", Target: "/work"},
		{Type: spec.MountTmpfs, Target: "/scratch", TmpfsSize: 1 << 20, TmpfsMode: 0o1777},
		{Type: spec.MountTmpfs, Target: "/frozen", ReadOnly: true},
	}, PlanOptions{Project: "p", Container: "p-web-1", ProjectDir: project, StateRoot: filepath.Join(base, "state")})
	if err != nil {
		t.Fatal(err)
	}
	mounts, err := s.Prepare(ctx, Container{ID: "c1", Rootfs: rootfs}, plan)
	if err != nil {
		t.Fatal(err)
	}
	dests := map[string]string{}
	for _, m := range mounts {
		d, err := ResolveTarget(rootfs, m.Destination)
		if err != nil {
			t.Fatal(err)
		}
		dests[m.Destination] = d
	}
	inMountNamespace(t, func() error {
		for _, m := range mounts {
			if err := applyMount(m, dests[m.Destination]); err != nil {
				return err
			}
		}
		var errs []error
		// Read-only bind: no write, not even by root, and the host file is unchanged.
		err := os.WriteFile(filepath.Join(dests["/etc/app"], "config"), []byte("changed\n"), 0o666)
		if !errors.Is(err, unix.EROFS) {
			errs = append(errs, fmt.Errorf("root write into read-only bind = %v, want EROFS", err))
		}
		if out, err := busybox(bb, testUID, testGID, "echo changed > "+filepath.Join(dests["/etc/app"], "config")); err == nil {
			errs = append(errs, fmt.Errorf("uid %d wrote into the read-only bind: %s", testUID, out))
		}
		// Read-write bind: the write shows on the host with the writer's uid.
		if out, err := busybox(bb, testUID, testGID, "echo hello > "+filepath.Join(dests["/work"], "new.txt")); err != nil {
			errs = append(errs, fmt.Errorf("write into read-write bind as %d: %v: %s", testUID, err, out))
		}
		// tmpfs: mode as planned, writable by anyone (1777), no exec; read-only tmpfs refuses.
		var st unix.Stat_t
		if err := unix.Stat(dests["/scratch"], &st); err != nil || st.Mode&0o7777 != 0o1777 {
			errs = append(errs, fmt.Errorf("tmpfs mode = %o, %v; want 1777", st.Mode&0o7777, err))
		}
		var sfs unix.Statfs_t
		if err := unix.Statfs(dests["/scratch"], &sfs); err != nil || sfs.Flags&unix.ST_NOEXEC == 0 || sfs.Flags&unix.ST_NOSUID == 0 || sfs.Flags&unix.ST_NODEV == 0 {
			errs = append(errs, fmt.Errorf("tmpfs flags = %#x, %v; want noexec,nosuid,nodev", sfs.Flags, err))
		}
		if sfs.Blocks*uint64(sfs.Bsize) != 1<<20 {
			errs = append(errs, fmt.Errorf("tmpfs size = %d, want %d", sfs.Blocks*uint64(sfs.Bsize), 1<<20))
		}
		if out, err := busybox(bb, testUID, testGID, "echo x > "+filepath.Join(dests["/scratch"], "f")); err != nil {
			errs = append(errs, fmt.Errorf("write into tmpfs as %d: %v: %s", testUID, err, out))
		}
		if err := os.WriteFile(filepath.Join(dests["/frozen"], "f"), nil, 0o600); !errors.Is(err, unix.EROFS) {
			errs = append(errs, fmt.Errorf("write into read-only tmpfs = %v, want EROFS", err))
		}
		return errors.Join(errs...)
	})
	if b, err := os.ReadFile(filepath.Join(project, "ro", "config")); err != nil || string(b) != "original\n" {
		t.Errorf("read-only source changed: %q, %v", b, err)
	}
	f := facts(t, filepath.Join(project, "rw", "new.txt"))
	if f.uid != testUID || f.gid != testGID {
		t.Errorf("file written through the bind is owned by %d:%d, want %d:%d", f.uid, f.gid, testUID, testGID)
	}
	// The namespace is gone with its thread: nothing of the test is mounted on the host.
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mi), base) {
		t.Errorf("mounts of the test left on the host:\n%s", mi)
	}
}
