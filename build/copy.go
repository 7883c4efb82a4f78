package build

import (
	"archive/tar"
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// owner says who owns what a COPY writes: set (--chown, or the context's root) or kept from
// the source (--from another stage).
type owner struct {
	set      bool
	uid, gid int
	chmod    *uint32 // --chmod, for files and directories
}

// copyPath copies the source entry rel into rootfs at dest (absolute in the container). A
// directory's contents go into dest; a file goes to dest/<name> when destDir, else to dest.
func copyPath(src *source, rel, rootfs, dest string, destDir bool, o owner) error {
	top, err := src.path(rel)
	if err != nil {
		return err
	}
	fi, err := os.Stat(top)
	if err != nil {
		fi, err = os.Lstat(top)
		if err != nil {
			return err
		}
	}
	target := dest
	if !fi.IsDir() && destDir {
		target = path.Join(dest, path.Base(rel))
	}
	if fi.IsDir() {
		if err := mkdirAllIn(rootfs, dest, o); err != nil {
			return err
		}
	} else if err := mkdirAllIn(rootfs, path.Dir(target), o); err != nil {
		return err
	}
	var dirs []dirMeta
	err = src.walk(top, rel, func(p, r string, fi fs.FileInfo) error {
		t := target
		if r != rel {
			t = path.Join(target, strings.TrimPrefix(r, rel+"/"))
			if rel == "." {
				t = path.Join(target, r)
			}
			if err := mkdirAllIn(rootfs, path.Dir(t), o); err != nil {
				return err
			}
		}
		host, err := securejoin.SecureJoin(rootfs, t)
		if err != nil {
			return err
		}
		d, err := copyEntry(p, host, fi, src.context, o)
		if d != nil {
			dirs = append(dirs, *d)
		}
		if err != nil {
			return fmt.Errorf("copy %s to %s: %w", r, t, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Directory times last: writing into a directory changes its mtime.
	for i := len(dirs) - 1; i >= 0; i-- {
		ts := []unix.Timespec{unix.NsecToTimespec(dirs[i].mtime), unix.NsecToTimespec(dirs[i].mtime)}
		_ = unix.UtimesNanoAt(unix.AT_FDCWD, dirs[i].path, ts, unix.AT_SYMLINK_NOFOLLOW)
	}
	return nil
}

type dirMeta struct {
	path  string
	mtime int64
}

// copyEntry copies one entry (not a directory's contents) to host, a path inside the rootfs
// whose parent exists and resolves inside it.
func copyEntry(p, host string, fi fs.FileInfo, fromContext bool, o owner) (*dirMeta, error) {
	st, _ := fi.Sys().(*syscall.Stat_t)
	uid, gid := o.uid, o.gid
	if !o.set && !fromContext && st != nil {
		uid, gid = int(st.Uid), int(st.Gid)
	}
	mode := uint32(fi.Mode().Perm())
	if st != nil {
		mode = st.Mode & 0o7777
	}
	if o.chmod != nil {
		mode = *o.chmod
	}
	if old, err := os.Lstat(host); err == nil && !(old.IsDir() && fi.IsDir()) {
		if err := os.RemoveAll(host); err != nil {
			return nil, err
		}
	}
	var dm *dirMeta
	switch {
	case fi.IsDir():
		if err := os.Mkdir(host, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		dm = &dirMeta{host, fi.ModTime().UnixNano()}
	case fi.Mode()&fs.ModeSymlink != 0:
		t, err := os.Readlink(p)
		if err != nil {
			return nil, err
		}
		if err := os.Symlink(t, host); err != nil {
			return nil, err
		}
		return nil, os.Lchown(host, uid, gid)
	case fi.Mode().IsRegular():
		if err := copyFile(p, host); err != nil {
			return nil, err
		}
	default:
		return nil, nil // sockets, devices and fifos are not build content
	}
	if err := os.Lchown(host, uid, gid); err != nil {
		return dm, err
	}
	if err := unix.Fchmodat(unix.AT_FDCWD, host, mode, 0); err != nil {
		return dm, &os.PathError{Op: "chmod", Path: host, Err: err}
	}
	if dm == nil {
		ts := []unix.Timespec{unix.NsecToTimespec(fi.ModTime().UnixNano()), unix.NsecToTimespec(fi.ModTime().UnixNano())}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, host, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return nil, &os.PathError{Op: "utimes", Path: host, Err: err}
		}
	}
	return dm, nil
}

func copyFile(src, dst string) error {
	in, err := os.OpenFile(src, os.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// mkdirAllIn creates dir (absolute in the container) and its missing parents inside rootfs,
// each component resolved inside it; new directories are 0755 and owned per o.
func mkdirAllIn(rootfs, dir string, o owner) error {
	cur := "/"
	for _, c := range strings.Split(strings.Trim(path.Clean("/"+dir), "/"), "/") {
		if c == "" {
			continue
		}
		cur = path.Join(cur, c)
		host, err := securejoin.SecureJoin(rootfs, cur)
		if err != nil {
			return err
		}
		fi, err := os.Stat(host)
		if err == nil {
			if !fi.IsDir() {
				return fmt.Errorf("%s is not a directory", cur)
			}
			continue
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err := os.Mkdir(host, 0o755); err != nil {
			return err
		}
		if err := os.Chmod(host, 0o755); err != nil {
			return err
		}
		if o.set {
			if err := os.Lchown(host, o.uid, o.gid); err != nil {
				return err
			}
		}
	}
	return nil
}

// archiveKind reports whether the file at p is a tar archive ADD extracts (plain, gzip or
// zstd: what the store's safe unpacker reads), and names a compression it cannot read.
func archiveKind(p string) (bool, string, error) {
	f, err := os.Open(p)
	if err != nil {
		return false, "", err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	head, _ := br.Peek(6)
	var r io.Reader = br
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return false, "", nil
		}
		defer zr.Close()
		r = zr
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br)
		if err != nil {
			return false, "", nil
		}
		defer zr.Close()
		r = zr
	case bytes.HasPrefix(head, []byte("BZh")):
		return false, "bzip2", nil
	case bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return false, "xz", nil
	}
	_, err = tar.NewReader(r).Next()
	return err == nil, "", nil
}
