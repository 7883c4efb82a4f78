package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// Default limits for one layer. They are far above what real images use and exist so that a
// hostile layer cannot fill the disk or exhaust inodes by claiming absurd sizes.
const (
	DefaultMaxLayerBytes = 64 << 30 // 64 GiB of file content
	DefaultMaxEntries    = 2_000_000
	DefaultMaxNameLen    = 4096 // PATH_MAX
	maxComponentLen      = 255  // NAME_MAX
)

// Whiteout names from the image-spec (layer.md, "Whiteouts").
const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh."
	whiteoutOpaque = ".wh..wh..opq"
	// overlayOpaqueXattr marks a directory whose lower contents overlayfs must hide.
	overlayOpaqueXattr = "trusted.overlay.opaque"
)

// Limits caps what one layer may contain. Zero fields take the Default* values.
type Limits struct {
	MaxBytes   int64 // sum of regular file sizes
	MaxEntries int
	MaxNameLen int // length of an entry's full path
}

func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxLayerBytes
	}
	if l.MaxEntries <= 0 {
		l.MaxEntries = DefaultMaxEntries
	}
	if l.MaxNameLen <= 0 {
		l.MaxNameLen = DefaultMaxNameLen
	}
	return l
}

// UnpackOptions says how to unpack one layer.
type UnpackOptions struct {
	Limits Limits
	// DiffID, when set ("sha256:<hex>"), is the digest the uncompressed tar must have; a
	// mismatch fails the unpack (the caller then discards the directory).
	DiffID string
	// Privileged applies owners, creates device nodes and overlay whiteouts, and sets trusted.*
	// xattrs. It needs root (CAP_CHOWN, CAP_MKNOD, CAP_SYS_ADMIN). Without it owners are left
	// as the caller's, device nodes are skipped, and a whiteout is an error.
	Privileged bool
}

// UnpackStats reports what an unpack did.
type UnpackStats struct {
	Entries int
	Bytes   int64  // regular file content written
	DiffID  string // sha256 of the uncompressed tar
	Skipped int    // device nodes not created (unprivileged)
}

// Unpack extracts one layer (tar, gzip'd tar or zstd'd tar; detected from the content) into
// dir, which must exist and be empty. Every entry is resolved inside dir: absolute names, names
// that climb out with "..", entries whose parent path goes through a symlink, and hard links to
// anything outside the layer are refused with an error wrapping ErrInvalidLayer. Whiteouts are
// converted to overlayfs form: ".wh.NAME" becomes a 0/0 character device NAME and
// ".wh..wh..opq" sets trusted.overlay.opaque=y on its directory.
//
// On error dir holds a partial tree; callers unpack into a temporary directory and rename it
// into place only on success.
func Unpack(r io.Reader, dir string, opts UnpackOptions) (UnpackStats, error) {
	u := &unpacker{root: filepath.Clean(dir), opts: opts, lim: opts.Limits.withDefaults()}
	err := u.run(r)
	return u.stats, err
}

type unpacker struct {
	root  string
	opts  UnpackOptions
	lim   Limits
	stats UnpackStats
	dirs  []dirTime // directory mtimes, applied last (creating children changes them)
}

type dirTime struct {
	path  string
	mtime time.Time
}

func (u *unpacker) run(r io.Reader) error {
	tr, digest, closeFn, err := decompress(r)
	if err != nil {
		return err
	}
	defer closeFn()
	if err := u.entries(tar.NewReader(tr)); err != nil {
		return err
	}
	// Hash the end-of-archive padding too: the diff ID covers the whole uncompressed stream.
	if _, err := io.Copy(io.Discard, tr); err != nil {
		return fmt.Errorf("%w: read layer tail: %w", ErrInvalidLayer, err)
	}
	u.stats.DiffID = "sha256:" + hex.EncodeToString(digest.Sum(nil))
	if u.opts.DiffID != "" && u.opts.DiffID != u.stats.DiffID {
		return fmt.Errorf("%w: uncompressed digest %s does not match the image config's diff ID %s",
			ErrInvalidLayer, u.stats.DiffID, u.opts.DiffID)
	}
	for i := len(u.dirs) - 1; i >= 0; i-- {
		d := u.dirs[i]
		if err := setTimes(d.path, d.mtime); err != nil {
			return err
		}
	}
	return nil
}

// decompress detects gzip or zstd from the magic bytes and returns the uncompressed stream,
// teed into a sha256 for the diff ID.
func decompress(r io.Reader) (io.Reader, hash.Hash, func(), error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, err := br.Peek(4)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, nil, nil, fmt.Errorf("%w: read layer: %w", ErrInvalidLayer, err)
	}
	var plain io.Reader = br
	closeFn := func() {}
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("%w: open gzip stream: %w", ErrInvalidLayer, err)
		}
		plain, closeFn = zr, func() { zr.Close() }
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, nil, nil, fmt.Errorf("%w: open zstd stream: %w", ErrInvalidLayer, err)
		}
		plain, closeFn = zr, zr.Close
	}
	h := sha256.New()
	return io.TeeReader(plain, h), h, closeFn, nil
}

func (u *unpacker) entries(tr *tar.Reader) error {
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: read tar header: %w", ErrInvalidLayer, err)
		}
		u.stats.Entries++
		if u.stats.Entries > u.lim.MaxEntries {
			return fmt.Errorf("%w: more than %d entries", ErrInvalidLayer, u.lim.MaxEntries)
		}
		if err := u.entry(tr, hdr); err != nil {
			return fmt.Errorf("entry %q: %w", hdr.Name, err)
		}
	}
}

// cleanName validates a tar entry name and returns it relative to the layer root ("." for the
// root itself).
func cleanName(name string, maxLen int) (string, error) {
	if len(name) > maxLen {
		return "", fmt.Errorf("%w: name longer than %d bytes", ErrInvalidLayer, maxLen)
	}
	if name == "" {
		return "", fmt.Errorf("%w: empty name", ErrInvalidLayer)
	}
	if strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("%w: absolute path", ErrInvalidLayer)
	}
	if strings.IndexByte(name, 0) >= 0 {
		return "", fmt.Errorf("%w: NUL in name", ErrInvalidLayer)
	}
	p := path.Clean(name)
	if p == ".." || strings.HasPrefix(p, "../") {
		return "", fmt.Errorf("%w: path escapes the layer root", ErrInvalidLayer)
	}
	for _, c := range strings.Split(p, "/") {
		if len(c) > maxComponentLen {
			return "", fmt.Errorf("%w: path component longer than %d bytes", ErrInvalidLayer, maxComponentLen)
		}
	}
	return p, nil
}

func (u *unpacker) entry(tr *tar.Reader, hdr *tar.Header) error {
	rel, err := cleanName(hdr.Name, u.lim.MaxNameLen)
	if err != nil {
		return err
	}
	if rel == "." {
		if hdr.Typeflag != tar.TypeDir {
			return fmt.Errorf("%w: the layer root must be a directory", ErrInvalidLayer)
		}
		return u.metadata(u.root, hdr)
	}
	parent, err := u.parentDir(path.Dir(rel))
	if err != nil {
		return err
	}
	base := path.Base(rel)
	if strings.HasPrefix(base, whiteoutPrefix) {
		return u.whiteout(parent, base)
	}
	target := filepath.Join(parent, base)

	if fi, err := os.Lstat(target); err == nil {
		if !(fi.IsDir() && hdr.Typeflag == tar.TypeDir) {
			if err := os.RemoveAll(target); err != nil {
				return fmt.Errorf("replace existing entry: %w", err)
			}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}

	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := os.Mkdir(target, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	case tar.TypeReg, tar.TypeRegA: //nolint:staticcheck // TypeRegA appears in old layers
		if err := u.regular(tr, hdr, target); err != nil {
			return err
		}
	case tar.TypeSymlink:
		if len(hdr.Linkname) > u.lim.MaxNameLen {
			return fmt.Errorf("%w: symlink target longer than %d bytes", ErrInvalidLayer, u.lim.MaxNameLen)
		}
		// The target is only content: nothing is ever written through a symlink (parentDir
		// refuses to traverse one), so it may point anywhere.
		if err := os.Symlink(hdr.Linkname, target); err != nil {
			return err
		}
	case tar.TypeLink:
		// Hard links share the inode (and its metadata) with their target: nothing more to do.
		return u.hardlink(hdr, target)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		if hdr.Typeflag != tar.TypeFifo && !u.opts.Privileged {
			u.stats.Skipped++
			return nil
		}
		mode := uint32(hdr.Mode & 0o7777)
		switch hdr.Typeflag {
		case tar.TypeChar:
			mode |= unix.S_IFCHR
		case tar.TypeBlock:
			mode |= unix.S_IFBLK
		default:
			mode |= unix.S_IFIFO
		}
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		if err := unix.Mknod(target, mode, int(dev)); err != nil {
			return &os.PathError{Op: "mknod", Path: target, Err: err}
		}
	case tar.TypeXGlobalHeader:
		return nil
	default:
		return fmt.Errorf("%w: unsupported entry type %q", ErrInvalidLayer, hdr.Typeflag)
	}
	return u.metadata(target, hdr)
}

// parentDir returns the host path of the directory rel (relative to the root), creating missing
// directories. It refuses to go through a symlink or a non-directory, and checks that
// securejoin resolves rel to the same place, so no write can be redirected outside the root.
func (u *unpacker) parentDir(rel string) (string, error) {
	if rel == "." {
		return u.root, nil
	}
	cur := u.root
	for _, c := range strings.Split(rel, "/") {
		next := filepath.Join(cur, c)
		fi, err := os.Lstat(next)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := os.Mkdir(next, 0o755); err != nil {
				return "", err
			}
			if err := os.Chmod(next, 0o755); err != nil { // undo the umask
				return "", err
			}
		case err != nil:
			return "", err
		case fi.Mode()&fs.ModeSymlink != 0:
			return "", fmt.Errorf("%w: parent %q is a symlink", ErrInvalidLayer, strings.TrimPrefix(next, u.root+"/"))
		case !fi.IsDir():
			return "", fmt.Errorf("%w: parent %q is not a directory", ErrInvalidLayer, strings.TrimPrefix(next, u.root+"/"))
		}
		cur = next
	}
	sj, err := securejoin.SecureJoin(u.root, rel)
	if err != nil {
		return "", fmt.Errorf("resolve %q in layer: %w", rel, err)
	}
	if sj != cur {
		return "", fmt.Errorf("%w: %q resolves outside its lexical path", ErrInvalidLayer, rel)
	}
	return cur, nil
}

func (u *unpacker) regular(tr *tar.Reader, hdr *tar.Header, target string) error {
	if hdr.Size > u.lim.MaxBytes-u.stats.Bytes {
		return fmt.Errorf("%w: file of %d bytes exceeds the layer limit of %d bytes", ErrInvalidLayer, hdr.Size, u.lim.MaxBytes)
	}
	f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, tr)
	u.stats.Bytes += n
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%w: file content (%d bytes by its header): %w", ErrInvalidLayer, hdr.Size, err)
	}
	if n != hdr.Size {
		return fmt.Errorf("%w: short file: %d of %d bytes", ErrInvalidLayer, n, hdr.Size)
	}
	return nil
}

func (u *unpacker) hardlink(hdr *tar.Header, target string) error {
	if strings.HasPrefix(hdr.Linkname, "/") {
		return fmt.Errorf("%w: hard link to absolute path %q", ErrInvalidLayer, hdr.Linkname)
	}
	rel, err := cleanName(hdr.Linkname, u.lim.MaxNameLen)
	if err != nil {
		return fmt.Errorf("hard link target: %w", err)
	}
	if rel == "." {
		return fmt.Errorf("%w: hard link to the layer root", ErrInvalidLayer)
	}
	parent, err := u.parentDir(path.Dir(rel))
	if err != nil {
		return fmt.Errorf("hard link target: %w", err)
	}
	src := filepath.Join(parent, path.Base(rel))
	fi, err := os.Lstat(src)
	if err != nil {
		return fmt.Errorf("%w: hard link target %q is not in this layer", ErrInvalidLayer, hdr.Linkname)
	}
	if fi.IsDir() {
		return fmt.Errorf("%w: hard link to directory %q", ErrInvalidLayer, hdr.Linkname)
	}
	// linkat without AT_SYMLINK_FOLLOW: a link to a symlink links the symlink itself.
	return os.Link(src, target)
}

func (u *unpacker) whiteout(parent, base string) error {
	if base == whiteoutOpaque {
		if !u.opts.Privileged {
			return fmt.Errorf("opaque directory needs trusted xattrs (root)")
		}
		if err := unix.Lsetxattr(parent, overlayOpaqueXattr, []byte("y"), 0); err != nil {
			return &os.PathError{Op: "setxattr " + overlayOpaqueXattr, Path: parent, Err: err}
		}
		return nil
	}
	if strings.HasPrefix(base, whiteoutMeta) {
		return nil // other AUFS metadata (.wh..wh.plnk, .wh..wh.aufs): meaningless here
	}
	name := strings.TrimPrefix(base, whiteoutPrefix)
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("%w: bad whiteout name", ErrInvalidLayer)
	}
	if !u.opts.Privileged {
		return fmt.Errorf("whiteout needs a 0/0 character device (root)")
	}
	target := filepath.Join(parent, name)
	if err := os.RemoveAll(target); err != nil {
		return err
	}
	if err := unix.Mknod(target, unix.S_IFCHR, 0); err != nil {
		return &os.PathError{Op: "mknod whiteout", Path: target, Err: err}
	}
	return nil
}

// metadata applies owner, xattrs, mode and mtime, in that order: chown clears setuid bits, so
// the mode comes after it.
func (u *unpacker) metadata(target string, hdr *tar.Header) error {
	isLink := hdr.Typeflag == tar.TypeSymlink
	if u.opts.Privileged {
		if err := os.Lchown(target, hdr.Uid, hdr.Gid); err != nil {
			return err
		}
	}
	for k, v := range hdr.PAXRecords {
		attr, ok := strings.CutPrefix(k, "SCHILY.xattr.")
		if !ok {
			continue
		}
		if strings.HasPrefix(attr, "trusted.overlay.") {
			continue // overlayfs' own attributes are stack's to set, never the layer's
		}
		if err := unix.Lsetxattr(target, attr, []byte(v), 0); err != nil {
			if !u.opts.Privileged || isLink {
				continue // unprivileged or on a symlink only user.* may work; best effort
			}
			return &os.PathError{Op: "setxattr " + attr, Path: target, Err: err}
		}
	}
	if !isLink {
		if err := unix.Fchmodat(unix.AT_FDCWD, target, uint32(hdr.Mode&0o7777), 0); err != nil {
			return &os.PathError{Op: "chmod", Path: target, Err: err}
		}
	}
	if hdr.Typeflag == tar.TypeDir {
		u.dirs = append(u.dirs, dirTime{target, hdr.ModTime})
		return nil
	}
	return setTimes(target, hdr.ModTime)
}

func setTimes(p string, mtime time.Time) error {
	ts := unix.NsecToTimespec(mtime.UnixNano())
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "utimes", Path: p, Err: err}
	}
	return nil
}
