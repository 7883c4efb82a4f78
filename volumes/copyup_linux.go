package volumes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"

	"github.com/stackrun/stack/state"
)

// CopyUp copies the content of directory target inside rootfs (the image's root filesystem, as
// the container will see it) into volume name, as Docker does when an empty volume is mounted over
// a path that has content in the image: owners, modes, times, symlinks, hard links, device nodes
// and extended attributes (where the filesystem allows) are kept, and the volume's top directory
// takes the owner and mode of the image's directory.
//
// It copies at most once per volume: the copy is recorded in the volume's record and a later call
// (another container, a recreate) does nothing, even if the volume was emptied since. It also does
// nothing when the volume is not empty (the user's data wins) or when target does not exist in
// the image or is not a directory. copied reports whether a copy happened.
//
// target is resolved inside rootfs (filepath-securejoin's pathrs-lite), so a symlink in the image
// cannot lead the copy to host files; below it nothing is followed (every open is O_NOFOLLOW,
// relative to the parent directory's descriptor), in the image or in the volume.
func (s *Store) CopyUp(ctx context.Context, name, rootfs, target, containerID string) (copied bool, err error) {
	if err := ValidateName(name); err != nil {
		return false, err
	}
	if !filepath.IsAbs(target) {
		return false, fmt.Errorf("copy up into volume %q: %w: target %q is not absolute", name, ErrInvalid, target)
	}
	target = filepath.Clean(target)
	fail := func(err error) (bool, error) {
		return false, fmt.Errorf("copy %s from the image into volume %q: %w", target, name, err)
	}
	if _, err := s.read(name); err != nil {
		return fail(err)
	}
	// One copy at a time per volume; the store lock is only taken for the record, so a large copy
	// does not hold up other volumes.
	vl, err := state.WaitLock(filepath.Join(s.root, locksDir, name+".lock"))
	if err != nil {
		return fail(err)
	}
	defer vl.Unlock()
	v, err := s.read(name)
	if err != nil {
		return fail(err)
	}
	if v.CopyUp != nil {
		return false, nil
	}
	if v.CopyingUp {
		// A copy started and its process died (we hold the lock it held): what is in the volume
		// is a partial copy, not user data. Start again from an empty volume.
		if err := emptyDir(s.DataPath(name)); err != nil {
			return fail(err)
		}
	}

	src, err := openImageDir(rootfs, target)
	if err != nil || src == nil {
		if err != nil {
			return fail(err)
		}
		return false, nil
	}
	defer src.Close()
	dst, err := os.OpenFile(s.DataPath(name), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fail(err)
	}
	defer dst.Close()
	names, err := readDirNames(int(dst.Fd()))
	if err != nil {
		return fail(err)
	}
	if len(names) > 0 {
		return false, nil
	}

	// Mark the copy as started first, so that a copy cut short by a crash is recognised as such.
	if err := s.update(name, func(v *Volume) bool { v.CopyingUp = true; return true }); err != nil {
		return fail(err)
	}
	c := &copier{ctx: ctx, dstRoot: dst, links: map[fileID]linkRef{}, after: s.afterCopyEntry}
	err = c.copyDir(int(src.Fd()), int(dst.Fd()), "")
	if err == nil {
		err = c.copyRootAttrs(int(src.Fd()), int(dst.Fd()), s.DataPath(name))
	}
	if err != nil {
		// Leave the volume empty again, so that the next attempt copies from scratch instead of
		// finding a half copy and keeping it as user data.
		err = errors.Join(err, emptyDir(s.DataPath(name)))
		return fail(errors.Join(err, s.update(name, func(v *Volume) bool { v.CopyingUp = false; return true })))
	}
	err = s.update(name, func(v *Volume) bool {
		v.CopyingUp = false
		v.CopyUp = &CopyUp{At: s.now().UTC(), Target: target, Container: containerID}
		return true
	})
	if err != nil {
		return fail(err)
	}
	return true, nil
}

// openImageDir opens target inside rootfs as a directory, or returns nil when there is nothing
// to copy (missing, or not a directory).
func openImageDir(rootfs, target string) (*os.File, error) {
	h, err := pathrs.OpenInRoot(rootfs, target)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
			return nil, nil
		}
		return nil, fmt.Errorf("open in rootfs %s: %w", rootfs, err)
	}
	defer h.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(h.Fd()), &st); err != nil {
		return nil, &os.PathError{Op: "fstat", Path: h.Name(), Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil, nil
	}
	f, err := pathrs.Reopen(h, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("open in rootfs %s: %w", rootfs, err)
	}
	return f, nil
}

func readDirNames(fd int) ([]string, error) {
	dup, err := unix.Dup(fd)
	if err != nil {
		return nil, &os.SyscallError{Syscall: "dup", Err: err}
	}
	f := os.NewFile(uintptr(dup), "dir")
	defer f.Close()
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return f.Readdirnames(-1)
}

func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("clean up partial copy: %w", err)
	}
	var errs []error
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			errs = append(errs, fmt.Errorf("clean up partial copy: %w", err))
		}
	}
	return errors.Join(errs...)
}

type fileID struct{ dev, ino uint64 }

// linkRef is the first copy of a hard-linked file: where it is below the volume's root and which
// inode it got, so that a later link to it can check it is still that file.
type linkRef struct {
	rel string
	dst fileID
}

// copier copies a tree between two directory descriptors. It never follows a symlink and never
// opens anything by an absolute path, so neither the image nor a container writing into the
// volume can redirect it.
type copier struct {
	ctx     context.Context
	dstRoot *os.File
	links   map[fileID]linkRef // hard-linked files already copied, by source inode
	after   func()             // see Store.afterCopyEntry
}

func (c *copier) copyDir(src, dst int, rel string) error {
	names, err := readDirNames(src)
	if err != nil {
		return fmt.Errorf("read %s: %w", "/"+rel, err)
	}
	for _, name := range names {
		if err := c.ctx.Err(); err != nil {
			return err
		}
		if err := c.copyEntry(src, dst, name, filepath.Join(rel, name)); err != nil {
			return err
		}
		if c.after != nil {
			c.after()
		}
	}
	return nil
}

func (c *copier) copyEntry(src, dst int, name, rel string) error {
	pathErr := func(op string, err error) error { return &os.PathError{Op: op, Path: "/" + rel, Err: err} }
	var st unix.Stat_t
	if err := unix.Fstatat(src, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return pathErr("lstat", err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if err := unix.Mkdirat(dst, name, 0o700); err != nil {
			return pathErr("mkdir", err)
		}
		sfd, err := unix.Openat(src, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return pathErr("open", err)
		}
		defer unix.Close(sfd)
		dfd, err := unix.Openat(dst, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return pathErr("open", err)
		}
		defer unix.Close(dfd)
		if err := c.copyDir(sfd, dfd, rel); err != nil {
			return err
		}
		if err := fdAttrs(sfd, dfd, &st); err != nil {
			return pathErr("set attributes", err)
		}
	case unix.S_IFREG:
		id := fileID{uint64(st.Dev), st.Ino}
		if first, ok := c.links[id]; ok && st.Nlink > 1 {
			if err := c.link(first, dst, name); err != nil {
				return pathErr("link", err)
			}
			return nil
		}
		dstID, err := copyFile(src, dst, name, &st)
		if err != nil {
			return pathErr("copy", err)
		}
		if st.Nlink > 1 {
			c.links[id] = linkRef{rel: rel, dst: dstID}
		}
	case unix.S_IFLNK:
		target, err := readlinkat(src, name)
		if err != nil {
			return pathErr("readlink", err)
		}
		if err := unix.Symlinkat(target, dst, name); err != nil {
			return pathErr("symlink", err)
		}
		if err := unix.Fchownat(dst, name, int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return pathErr("lchown", err)
		}
		if err := pathXattrs(src, dst, name); err != nil {
			return pathErr("xattrs", err)
		}
	case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO:
		if err := unix.Mknodat(dst, name, st.Mode, int(st.Rdev)); err != nil {
			return pathErr("mknod", err)
		}
		if err := nodeAttrs(dst, name, &st); err != nil {
			return pathErr("set attributes", err)
		}
		if err := pathXattrs(src, dst, name); err != nil {
			return pathErr("xattrs", err)
		}
	default:
		return nil // sockets belong to a process, not to the image; Docker's copy skips them too
	}
	// Times last, after the content (and for directories their children) is in place.
	ts := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(dst, name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return pathErr("utimes", err)
	}
	return nil
}

// link makes name in dst a hard link to the first copy. The first copy is found again inside the
// volume (pathrs-lite, so a symlink a running container put in its way cannot lead out of the
// volume) and must still be the inode copied, else the volume changed under the copy.
func (c *copier) link(first linkRef, dst int, name string) error {
	h, err := pathrs.OpenatInRoot(c.dstRoot, first.rel)
	if err != nil {
		return err
	}
	defer h.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(h.Fd()), &st); err != nil {
		return &os.SyscallError{Syscall: "fstat", Err: err}
	}
	if (fileID{uint64(st.Dev), st.Ino}) != first.dst {
		return fmt.Errorf("/%s changed in the volume during the copy", first.rel)
	}
	return unix.Linkat(unix.AT_FDCWD, fmt.Sprintf("/proc/self/fd/%d", h.Fd()), dst, name, unix.AT_SYMLINK_FOLLOW)
}

func copyFile(src, dst int, name string, st *unix.Stat_t) (fileID, error) {
	sfd, err := unix.Openat(src, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fileID{}, err
	}
	sf := os.NewFile(uintptr(sfd), name)
	defer sf.Close()
	dfd, err := unix.Openat(dst, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fileID{}, err
	}
	df := os.NewFile(uintptr(dfd), name)
	defer df.Close()
	if _, err := io.Copy(df, sf); err != nil {
		return fileID{}, err
	}
	if err := fdAttrs(sfd, dfd, st); err != nil {
		return fileID{}, err
	}
	var dstSt unix.Stat_t
	if err := unix.Fstat(dfd, &dstSt); err != nil {
		return fileID{}, &os.SyscallError{Syscall: "fstat", Err: err}
	}
	return fileID{uint64(dstSt.Dev), dstSt.Ino}, df.Close()
}

// fdAttrs gives dst the owner, mode and extended attributes of src. The mode is set after the
// owner because chown clears the set-user-ID and set-group-ID bits.
func fdAttrs(src, dst int, st *unix.Stat_t) error {
	if err := unix.Fchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return &os.SyscallError{Syscall: "fchown", Err: err}
	}
	if err := unix.Fchmod(dst, st.Mode&0o7777); err != nil {
		return &os.SyscallError{Syscall: "fchmod", Err: err}
	}
	return fdXattrs(src, dst)
}

// nodeAttrs gives a device node or fifo just made by mknod its owner and mode. It works on an
// O_PATH descriptor of the node, checked to still be a node: chmod by name would follow a symlink
// that a container writing into the volume swapped in, and chmod a host file.
func nodeAttrs(dir int, name string, st *unix.Stat_t) error {
	fd, err := unix.Openat(dir, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var got unix.Stat_t
	if err := unix.Fstat(fd, &got); err != nil {
		return &os.SyscallError{Syscall: "fstat", Err: err}
	}
	if got.Mode&unix.S_IFMT != st.Mode&unix.S_IFMT {
		return errors.New("replaced in the volume during the copy")
	}
	if err := unix.Fchownat(fd, "", int(st.Uid), int(st.Gid), unix.AT_EMPTY_PATH); err != nil {
		return &os.SyscallError{Syscall: "fchownat", Err: err}
	}
	// The magic link names the inode opened above, whatever happens to name meanwhile.
	if err := unix.Chmod(fmt.Sprintf("/proc/self/fd/%d", fd), st.Mode&0o7777); err != nil {
		return &os.SyscallError{Syscall: "chmod", Err: err}
	}
	return nil
}

// copyRootAttrs gives the volume's top directory the owner, mode, xattrs and times of the image's
// directory, as Docker does, so that a non-root service can write where the image let it.
func (c *copier) copyRootAttrs(src, dst int, dstPath string) error {
	var st unix.Stat_t
	if err := unix.Fstat(src, &st); err != nil {
		return &os.SyscallError{Syscall: "fstat", Err: err}
	}
	if err := fdAttrs(src, dst, &st); err != nil {
		return fmt.Errorf("set attributes of %s: %w", dstPath, err)
	}
	tv := []unix.Timeval{unix.NsecToTimeval(unix.TimespecToNsec(st.Atim)), unix.NsecToTimeval(unix.TimespecToNsec(st.Mtim))}
	if err := unix.Futimes(dst, tv); err != nil {
		return &os.PathError{Op: "utimes", Path: dstPath, Err: err}
	}
	return nil
}

func readlinkat(dir int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dir, name, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

// Extended attributes are copied where the filesystems allow: the volume may live on a filesystem
// without xattr support, and trusted.* or security.* names may be refused; neither fails the copy.
func ignorableXattrErr(err error) bool {
	return errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) ||
		errors.Is(err, unix.ENODATA) || errors.Is(err, unix.E2BIG) || errors.Is(err, unix.ERANGE)
}

func fdXattrs(src, dst int) error {
	return copyXattrs(
		func(b []byte) (int, error) { return unix.Flistxattr(src, b) },
		func(n string, b []byte) (int, error) { return unix.Fgetxattr(src, n, b) },
		func(n string, v []byte) error { return unix.Fsetxattr(dst, n, v, 0) },
	)
}

// pathXattrs copies the xattrs of an entry that cannot be opened (symlink, device node) through
// its parent's descriptor; the l* calls do not follow the entry itself.
func pathXattrs(srcDir, dstDir int, name string) error {
	sp := fmt.Sprintf("/proc/self/fd/%d/%s", srcDir, name)
	dp := fmt.Sprintf("/proc/self/fd/%d/%s", dstDir, name)
	return copyXattrs(
		func(b []byte) (int, error) { return unix.Llistxattr(sp, b) },
		func(n string, b []byte) (int, error) { return unix.Lgetxattr(sp, n, b) },
		func(n string, v []byte) error { return unix.Lsetxattr(dp, n, v, 0) },
	)
}

func copyXattrs(list func([]byte) (int, error), get func(string, []byte) (int, error), set func(string, []byte) error) error {
	size, err := list(nil)
	if err != nil || size == 0 {
		if err != nil && !ignorableXattrErr(err) {
			return err
		}
		return nil
	}
	buf := make([]byte, size)
	n, err := list(buf)
	if err != nil {
		if ignorableXattrErr(err) {
			return nil
		}
		return err
	}
	for _, name := range splitNul(buf[:n]) {
		vsize, err := get(name, nil)
		if err != nil {
			if ignorableXattrErr(err) {
				continue
			}
			return err
		}
		val := make([]byte, vsize)
		vn, err := get(name, val)
		if err != nil {
			if ignorableXattrErr(err) {
				continue
			}
			return err
		}
		if err := set(name, val[:vn]); err != nil && !ignorableXattrErr(err) {
			return fmt.Errorf("set xattr %s: %w", name, err)
		}
	}
	return nil
}

func splitNul(b []byte) []string {
	var out []string
	start := 0
	for i, c := range b {
		if c == 0 {
			if i > start {
				out = append(out, string(b[start:i]))
			}
			start = i + 1
		}
	}
	return out
}
