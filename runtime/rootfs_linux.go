package runtime

import (
	"bufio"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"
)

// applyRootfs carries out a rootfs plan in the init's new mount namespace, up to and
// including pivot_root.
func applyRootfs(p *rootfsPlan) error {
	// Nothing we mount may propagate back to the host.
	if err := unix.Mount("", "/", "", p.Propagation, ""); err != nil {
		return fail("set propagation of /", err)
	}
	// pivot_root needs the new root to be a mount point.
	if err := unix.Mount(p.Rootfs, p.Rootfs, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fail("bind rootfs "+p.Rootfs, err)
	}
	for _, st := range p.Steps {
		if err := applyStep(p.Rootfs, st); err != nil {
			return fail(st.String(), err)
		}
	}
	if err := pivotRoot(p.Rootfs); err != nil {
		return fail("pivot_root", err)
	}
	return nil
}

func applyStep(rootfs string, st step) error {
	target, err := securejoin.SecureJoin(rootfs, st.Target)
	if err != nil {
		return err
	}
	switch st.Kind {
	case stepSymlink:
		if err := os.Symlink(st.Source, target); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		return nil
	case stepDevice:
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		_ = unix.Unlink(target) // a placeholder from the image must not stop us
		if err := unix.Mknod(target, st.DevType|st.Mode, int(unix.Mkdev(uint32(st.Major), uint32(st.Minor)))); err != nil {
			return &os.PathError{Op: "mknod", Path: st.Target, Err: err}
		}
		// mknod applies the umask; set the mode asked for.
		if err := unix.Chmod(target, st.Mode); err != nil {
			return &os.PathError{Op: "chmod", Path: st.Target, Err: err}
		}
		return unix.Chown(target, int(st.UID), int(st.GID))
	}
	if st.Flags&unix.MS_BIND != 0 {
		return bindMount(st, target)
	}
	if err := os.MkdirAll(target, 0o755); err != nil {
		return err
	}
	switch st.FSType {
	case "cgroup":
		return mountCgroupV1(target, st)
	case "sysfs":
		err := unix.Mount(st.Source, target, st.FSType, st.Flags, st.Data)
		if errors.Is(err, unix.EPERM) {
			// sysfs can only be mounted by the owner of the netns; fall back to the host's.
			err = unix.Mount("/sys", target, "", unix.MS_BIND|unix.MS_REC, "")
			if err == nil {
				err = unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_REC|st.Flags, "")
			}
		}
		if err != nil {
			return &os.PathError{Op: "mount sysfs", Path: st.Target, Err: err}
		}
	default:
		if err := unix.Mount(st.Source, target, st.FSType, st.Flags, st.Data); err != nil {
			return &os.PathError{Op: "mount " + st.FSType, Path: st.Target, Err: err}
		}
	}
	return propagate(target, st)
}

func bindMount(st step, target string) error {
	fi, err := os.Stat(st.Source)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		err = os.MkdirAll(target, 0o755)
	} else {
		if err = os.MkdirAll(filepath.Dir(target), 0o755); err == nil {
			var f *os.File
			f, err = os.OpenFile(target, os.O_RDONLY|os.O_CREATE|unix.O_CLOEXEC, 0o644)
			if err == nil {
				f.Close()
			}
		}
	}
	if err != nil {
		return err
	}
	if err := unix.Mount(st.Source, target, "", st.Flags&(unix.MS_BIND|unix.MS_REC), ""); err != nil {
		return &os.PathError{Op: "bind mount " + st.Source, Path: st.Target, Err: err}
	}
	if st.Remount {
		flags := st.Flags | unix.MS_BIND | unix.MS_REMOUNT
		if err := unix.Mount("", target, "", flags, ""); err != nil {
			return &os.PathError{Op: "remount", Path: st.Target, Err: err}
		}
	}
	return propagate(target, st)
}

func propagate(target string, st step) error {
	for _, f := range st.Propagation {
		if err := unix.Mount("", target, "", f, ""); err != nil {
			return &os.PathError{Op: "set propagation", Path: st.Target, Err: err}
		}
	}
	return nil
}

// mountCgroupV1 gives the container a /sys/fs/cgroup like the host's. On a unified host that
// is one cgroup2 mount; on a v1 or hybrid host a tmpfs with one mount per hierarchy listed in
// /proc/self/cgroup. The init already sits in its own cgroup namespace, so every hierarchy
// shows the container's cgroup as its root.
func mountCgroupV1(target string, st step) error {
	ro := st.Flags & unix.MS_RDONLY
	flags := st.Flags &^ unix.MS_RDONLY
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return unix.Mount("cgroup2", target, "cgroup2", st.Flags, "")
	}
	if err := unix.Mount("tmpfs", target, "tmpfs", flags, "mode=755"); err != nil {
		return &os.PathError{Op: "mount tmpfs", Path: st.Target, Err: err}
	}
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		ctrl := parts[1]
		name, fstype, data := ctrl, "cgroup", ctrl
		switch {
		case ctrl == "":
			name, fstype, data = "unified", "cgroup2", ""
		case strings.HasPrefix(ctrl, "name="):
			name, data = strings.TrimPrefix(ctrl, "name="), "none,"+ctrl
		}
		dir := filepath.Join(target, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err := unix.Mount("cgroup", dir, fstype, flags|ro, data); err != nil {
			return &os.PathError{Op: "mount cgroup " + ctrl, Path: dir, Err: err}
		}
		if strings.Contains(ctrl, ",") {
			for _, c := range strings.Split(ctrl, ",") {
				_ = os.Symlink(name, filepath.Join(target, c))
			}
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if ro != 0 {
		return unix.Mount("", target, "", unix.MS_REMOUNT|flags|ro, "mode=755")
	}
	return nil
}

// pivotRoot makes rootfs the root and detaches the old one, without needing a directory for
// it: pivot_root(".", ".") stacks the old root on top of the new, and the old one is then
// unmounted from there (see pivot_root(2), "new_root and put_old may be the same directory").
func pivotRoot(rootfs string) error {
	oldRoot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(oldRoot)
	newRoot, err := unix.Open(rootfs, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(newRoot)
	if err := unix.Fchdir(newRoot); err != nil {
		return err
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return &os.PathError{Op: "pivot_root", Path: rootfs, Err: err}
	}
	if err := unix.Fchdir(oldRoot); err != nil {
		return err
	}
	// Keep the unmount of the old root from propagating to the host's mounts.
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return err
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return &os.PathError{Op: "unmount old root", Path: "/", Err: err}
	}
	return unix.Chdir("/")
}

// applyMasks runs after pivot_root: masked paths are hidden (a read-only empty tmpfs over a
// directory, /dev/null over a file), read-only paths are bound onto themselves read-only, and
// finally the root itself is made read-only if asked.
func applyMasks(p *rootfsPlan) error {
	for _, m := range p.Masked {
		fi, err := os.Stat(m)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fail("mask "+m, err)
		}
		if fi.IsDir() {
			err = unix.Mount("tmpfs", m, "tmpfs", unix.MS_RDONLY, "size=0")
		} else {
			err = unix.Mount("/dev/null", m, "", unix.MS_BIND, "")
		}
		if err != nil {
			return fail("mask "+m, err)
		}
	}
	for _, r := range p.ReadOnly {
		if err := unix.Mount(r, r, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			return fail("make read-only "+r, err)
		}
		if err := unix.Mount("", r, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_REC|keptFlags(r), ""); err != nil {
			return fail("make read-only "+r, err)
		}
	}
	if p.ReadOnlyRoot {
		if err := unix.Mount("", "/", "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			return fail("make rootfs read-only", err)
		}
	}
	return nil
}

// keptFlags returns the nosuid/nodev/noexec flags a mount already has, which a bind remount
// must repeat or it would clear them.
func keptFlags(path string) uintptr {
	var st unix.Statfs_t
	if unix.Statfs(path, &st) != nil {
		return 0
	}
	var f uintptr
	for _, m := range [][2]uintptr{{unix.ST_NOSUID, unix.MS_NOSUID}, {unix.ST_NODEV, unix.MS_NODEV}, {unix.ST_NOEXEC, unix.MS_NOEXEC}} {
		if uintptr(st.Flags)&m[0] != 0 {
			f |= m[1]
		}
	}
	return f
}
