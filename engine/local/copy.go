package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// containerRoot is the directory through which container id's files are reached: its init's
// root (/proc/PID/root, the rootfs with every mount of the container, volumes included) while
// it runs, else its rootfs mount (image and upper layer only).
func (h *Host) containerRoot(id string) (string, error) {
	if st, err := h.Status(id); err == nil && st.ContainerPid > 0 && (st.Unsupervised || !st.State.Final()) {
		root := "/proc/" + strconv.Itoa(st.ContainerPid) + "/root"
		if _, err := os.Stat(root); err == nil {
			return root, nil
		}
	}
	rootfs := h.Rootfs(id)
	if !mounted(rootfs) {
		return "", fmt.Errorf("container %s: its rootfs is not mounted (start it first)", id)
	}
	return rootfs, nil
}

// openRoot opens the container's root as an O_PATH directory handle; every path of the
// container is resolved below it, as the container would resolve it (symlinks included), and
// never outside it.
func (h *Host) openRoot(id string) (*os.File, error) {
	root, err := h.containerRoot(id)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open root of container %s: %w", id, err)
	}
	return f, nil
}

// CopyOut copies src, a path in container id, to dst on the host, like cp -a: a directory is
// copied with its contents, symlinks are copied as symlinks, modes and owners are kept. When
// dst is an existing directory, src is copied into it under its base name. Every step inside
// the container works on file descriptors resolved below its root, so a symlink in the
// container (even one to /) never reaches a file of the host.
func (h *Host) CopyOut(ctx context.Context, id, src, dst string) error {
	root, err := h.openRoot(id)
	if err != nil {
		return err
	}
	defer root.Close()
	if err := copyOut(ctx, root, src, dst); err != nil {
		return fmt.Errorf("copy from container %s: %w", id, err)
	}
	return nil
}

// copyOut copies src, resolved below the directory handle root, to the host path dst.
func copyOut(ctx context.Context, root *os.File, src, dst string) error {
	handle, err := pathrs.OpenatInRoot(root, src)
	if err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	defer handle.Close()
	if st, err := os.Stat(dst); err == nil && st.IsDir() {
		base := filepath.Base(filepath.Clean("/" + src))
		if base == "/" {
			base = "."
		}
		dst = filepath.Join(dst, base)
	}
	if err := copyOutHandle(ctx, handle, dst); err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	return nil
}

// copyOutHandle copies the object of the O_PATH handle h to the host path dst.
func copyOutHandle(ctx context.Context, h *os.File, dst string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(h.Fd()), &st); err != nil {
		return &os.PathError{Op: "fstat", Path: h.Name(), Err: err}
	}
	mode := os.FileMode(st.Mode & 0o7777)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if err := os.Mkdir(dst, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
		dir, err := pathrs.Reopen(h, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC)
		if err != nil {
			return err
		}
		names, err := dir.Readdirnames(-1)
		if err != nil {
			dir.Close()
			return err
		}
		for _, name := range names {
			fd, err := unix.Openat(int(dir.Fd()), name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				dir.Close()
				return &os.PathError{Op: "openat", Path: name, Err: err}
			}
			child := os.NewFile(uintptr(fd), filepath.Join(h.Name(), name))
			err = copyOutHandle(ctx, child, filepath.Join(dst, name))
			child.Close()
			if err != nil {
				dir.Close()
				return err
			}
		}
		dir.Close()
	case unix.S_IFREG:
		in, err := pathrs.Reopen(h, unix.O_RDONLY|unix.O_CLOEXEC)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		if err := out.Close(); err != nil {
			return err
		}
	case unix.S_IFLNK:
		target, err := readlinkHandle(h)
		if err != nil {
			return err
		}
		os.Remove(dst)
		if err := os.Symlink(target, dst); err != nil {
			return err
		}
		return os.Lchown(dst, int(st.Uid), int(st.Gid))
	default:
		return nil // devices, fifos and sockets are not copied, as with docker cp
	}
	if err := os.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	return os.Chmod(dst, mode)
}

// readlinkHandle reads the target of the symlink an O_PATH|O_NOFOLLOW handle refers to.
func readlinkHandle(h *os.File) (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(int(h.Fd()), "", buf)
	if err != nil {
		return "", &os.PathError{Op: "readlink", Path: h.Name(), Err: err}
	}
	return string(buf[:n]), nil
}

// CopyIn copies the host path src into container id at dst, like cp -a: when dst is an
// existing directory in the container, src goes into it under its base name; otherwise dst's
// parent must exist and src is copied as dst. The container's paths are resolved below its
// root (see CopyOut); an existing symlink at a destination is replaced, never followed.
func (h *Host) CopyIn(ctx context.Context, id, src, dst string) error {
	root, err := h.openRoot(id)
	if err != nil {
		return err
	}
	defer root.Close()
	if err := copyIn(ctx, root, src, dst); err != nil {
		return fmt.Errorf("copy into container %s: %w", id, err)
	}
	return nil
}

// copyIn copies the host path src to dst, resolved below the directory handle root.
func copyIn(ctx context.Context, root *os.File, src, dst string) error {
	if _, err := os.Lstat(src); err != nil {
		return err
	}
	clean := filepath.Clean("/" + dst)
	name := ""
	dirPath := clean
	if d, err := pathrs.OpenatInRoot(root, clean); err == nil {
		var st unix.Stat_t
		isDir := unix.Fstat(int(d.Fd()), &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR
		d.Close()
		if isDir && !strings.HasSuffix(src, "/.") {
			name = filepath.Base(filepath.Clean(src))
		}
	}
	if name == "" && !strings.HasSuffix(src, "/.") {
		dirPath, name = filepath.Dir(clean), filepath.Base(clean)
	}
	dirH, err := pathrs.OpenatInRoot(root, dirPath)
	if err != nil {
		return fmt.Errorf("%s: %w", dirPath, err)
	}
	dir, err := pathrs.Reopen(dirH, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC)
	dirH.Close()
	if err != nil {
		return fmt.Errorf("%s is not a directory: %w", dirPath, err)
	}
	defer dir.Close()
	if name == "" || name == "/" {
		// src/. : the contents of src go into dst itself.
		err = copyInChildren(ctx, src, dir)
	} else {
		err = copyInAt(ctx, src, dir, name)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", dst, err)
	}
	return nil
}

func copyInChildren(ctx context.Context, src string, dir *os.File) error {
	ents, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := copyInAt(ctx, filepath.Join(src, e.Name()), dir, e.Name()); err != nil {
			return err
		}
	}
	return nil
}

// copyInAt copies host path src to name in the container directory dir, with *at calls only.
func copyInAt(ctx context.Context, src string, dir *os.File, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return &os.PathError{Op: "lstat", Path: src, Err: err}
	}
	dfd := int(dir.Fd())
	perm := st.Mode & 0o7777
	// Whatever is at name and is not what we make is replaced; a symlink is removed, never
	// followed.
	var cur unix.Stat_t
	exists := unix.Fstatat(dfd, name, &cur, unix.AT_SYMLINK_NOFOLLOW) == nil
	want := st.Mode & unix.S_IFMT
	if exists && cur.Mode&unix.S_IFMT != want {
		if err := removeAt(dfd, name, cur.Mode&unix.S_IFMT == unix.S_IFDIR); err != nil {
			return err
		}
		exists = false
	}
	switch want {
	case unix.S_IFDIR:
		if !exists {
			if err := unix.Mkdirat(dfd, name, 0o700); err != nil {
				return &os.PathError{Op: "mkdirat", Path: name, Err: err}
			}
		}
		fd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return &os.PathError{Op: "openat", Path: name, Err: err}
		}
		sub := os.NewFile(uintptr(fd), name)
		defer sub.Close()
		if err := copyInChildren(ctx, src, sub); err != nil {
			return err
		}
		return setAttrs(fd, st.Uid, st.Gid, perm)
	case unix.S_IFREG:
		in, err := os.Open(src)
		if err != nil {
			return err
		}
		defer in.Close()
		fd, err := unix.Openat(dfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return &os.PathError{Op: "openat", Path: name, Err: err}
		}
		out := os.NewFile(uintptr(fd), name)
		defer out.Close()
		if _, err := io.Copy(out, in); err != nil {
			return err
		}
		return setAttrs(fd, st.Uid, st.Gid, perm)
	case unix.S_IFLNK:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		if exists {
			if err := unix.Unlinkat(dfd, name, 0); err != nil {
				return &os.PathError{Op: "unlinkat", Path: name, Err: err}
			}
		}
		if err := unix.Symlinkat(target, dfd, name); err != nil {
			return &os.PathError{Op: "symlinkat", Path: name, Err: err}
		}
		return unix.Fchownat(dfd, name, int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW)
	}
	return nil // devices, fifos and sockets are not copied
}

func setAttrs(fd int, uid, gid, perm uint32) error {
	if err := unix.Fchown(fd, int(uid), int(gid)); err != nil {
		return os.NewSyscallError("fchown", err)
	}
	return os.NewSyscallError("fchmod", unix.Fchmod(fd, perm))
}

// removeAt removes name from dirfd: a file or symlink with unlinkat, a directory with its
// contents (walked with *at calls, so no symlink inside is followed).
func removeAt(dirfd int, name string, isDir bool) error {
	if !isDir {
		return os.NewSyscallError("unlinkat", unix.Unlinkat(dirfd, name, 0))
	}
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "openat", Path: name, Err: err}
	}
	d := os.NewFile(uintptr(fd), name)
	ents, err := d.ReadDir(-1)
	if err == nil {
		for _, e := range ents {
			if err = removeAt(fd, e.Name(), e.IsDir()); err != nil {
				break
			}
		}
	}
	d.Close()
	if err != nil {
		return err
	}
	return os.NewSyscallError("unlinkat", unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR))
}
