package image

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"golang.org/x/sys/unix"

	"github.com/stackrun/stack/state"
)

// What a Dockerfile build needs from the store: a lock that keeps garbage collection away while
// a build holds layers no image references yet, scratch space, the diff of an overlay upper dir
// stored as a layer, and an image committed from a config and layers.

const buildCacheDir = "buildcache"

// Hold keeps garbage collection from running until release is called, so layers a build has
// written but not yet committed to an image survive a concurrent `image rm` or `prune`.
func (s *Store) Hold() (release func() error, err error) {
	l, err := sharedLock(filepath.Join(s.root, "gc.lock"))
	if err != nil {
		return nil, err
	}
	return l.Unlock, nil
}

// TempDir creates a directory in the store's scratch space (on the store's filesystem, so
// overlay upper and work dirs can live there). Prune empties the scratch space, but only while
// nobody Holds the store.
func (s *Store) TempDir(pattern string) (string, error) {
	return os.MkdirTemp(filepath.Join(s.root, tmpDir), pattern)
}

// BuildCacheDir is where builds keep their step cache: it belongs to the store so the cache
// lives as long as the layers it names.
func (s *Store) BuildCacheDir() string { return filepath.Join(s.root, buildCacheDir) }

// HasLayers reports whether every layer's blob and unpacked directory is present.
func (s *Store) HasLayers(layers []Layer) bool {
	for _, l := range layers {
		if !s.HasBlob(l.Digest) {
			return false
		}
		p, err := s.layerPath(l.ChainID)
		if err != nil || !state.Exists(filepath.Join(p, layerMeta)) {
			return false
		}
	}
	return true
}

// AddDiff stores the overlay upper directory dir as a layer on top of the layer with chain ID
// parent ("" for the first layer): written as an OCI layer tar (overlay whiteouts become .wh.
// entries, opaque directories .wh..wh..opq), gzip'd, content-addressed, and unpacked like a
// pulled layer. empty reports a dir without changes; then nothing is stored.
func (s *Store) AddDiff(ctx context.Context, dir, parent string) (l Layer, empty bool, err error) {
	f, err := os.CreateTemp(filepath.Join(s.root, tmpDir), "diff-*")
	if err != nil {
		return l, false, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	blobHash, diffHash := sha256.New(), sha256.New()
	zw := gzip.NewWriter(io.MultiWriter(f, blobHash))
	n, err := WriteDiff(io.MultiWriter(zw, diffHash), dir)
	if err == nil {
		err = zw.Close()
	}
	if err != nil {
		return l, false, fmt.Errorf("write layer from %s: %w", dir, err)
	}
	if n == 0 {
		return l, true, nil
	}
	if err := ctx.Err(); err != nil {
		return l, false, err
	}
	size, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return l, false, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return l, false, err
	}
	diffID := "sha256:" + hex.EncodeToString(diffHash.Sum(nil))
	l = Layer{
		Digest:    "sha256:" + hex.EncodeToString(blobHash.Sum(nil)),
		MediaType: string(types.OCILayer),
		Size:      size,
		DiffID:    diffID,
		ChainID:   chainID(parent, diffID),
	}
	if _, err := s.putBlob(l.Digest, f, nil); err != nil {
		return l, false, fmt.Errorf("store layer from %s: %w", dir, err)
	}
	if _, _, err := s.unpackLayer(l); err != nil {
		return l, false, err
	}
	return l, false, nil
}

// WriteDiff writes the overlay upper directory dir to w as an uncompressed OCI layer tar and
// returns the number of entries. A 0/0 character device (overlayfs' whiteout) becomes an empty
// ".wh.NAME" file, a directory with trusted.overlay.opaque=y gets a ".wh..wh..opq" entry, and
// overlayfs' own trusted.overlay.* attributes are left out. Entries are in lexical order, so
// the same tree gives the same tar.
func WriteDiff(w io.Writer, dir string) (int, error) {
	tw := tar.NewWriter(w)
	links := map[uint64]string{} // inode -> first name, for hard links
	n := 0
	err := walkSorted(dir, "", func(rel string, fi fs.FileInfo) error {
		full := filepath.Join(dir, rel)
		st, _ := fi.Sys().(*syscall.Stat_t)
		if fi.Mode()&fs.ModeSocket != 0 {
			return nil // a socket left by a RUN step is no content (tar has no type for it)
		}
		if fi.Mode()&fs.ModeCharDevice != 0 && st != nil && st.Rdev == 0 {
			n++
			return tw.WriteHeader(&tar.Header{
				Name:     filepath.ToSlash(filepath.Join(filepath.Dir(rel), whiteoutPrefix+filepath.Base(rel))),
				Typeflag: tar.TypeReg, Mode: 0o600, ModTime: fi.ModTime(), Format: tar.FormatPAX,
			})
		}
		link := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			t, err := os.Readlink(full)
			if err != nil {
				return err
			}
			link = t
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		hdr.Name = filepath.ToSlash(rel)
		if fi.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uname, hdr.Gname = "", ""
		hdr.Format = tar.FormatPAX
		hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
		if st != nil {
			hdr.Uid, hdr.Gid = int(st.Uid), int(st.Gid)
			if fi.Mode().IsRegular() && st.Nlink > 1 {
				if first, ok := links[st.Ino]; ok {
					hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
				} else {
					links[st.Ino] = hdr.Name
				}
			}
		}
		opaque := false
		xattrs, err := listXattrs(full)
		if err != nil {
			return err
		}
		for _, k := range xattrs {
			v, err := getXattr(full, k)
			if err != nil {
				return err
			}
			if k == overlayOpaqueXattr {
				opaque = fi.IsDir() && string(v) == "y"
				continue
			}
			if strings.HasPrefix(k, "trusted.overlay.") {
				continue
			}
			if hdr.PAXRecords == nil {
				hdr.PAXRecords = map[string]string{}
			}
			hdr.PAXRecords["SCHILY.xattr."+k] = string(v)
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		n++
		if hdr.Typeflag == tar.TypeReg {
			f, err := os.OpenFile(full, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, io.LimitReader(f, hdr.Size))
			f.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", rel, err)
			}
		}
		if opaque {
			n++
			return tw.WriteHeader(&tar.Header{
				Name: filepath.ToSlash(filepath.Join(rel, whiteoutOpaque)), Typeflag: tar.TypeReg,
				Mode: 0o600, ModTime: fi.ModTime(), Format: tar.FormatPAX,
			})
		}
		return nil
	})
	if err != nil {
		return n, err
	}
	return n, tw.Close()
}

// walkSorted calls fn for every entry below dir (not dir itself) in lexical order, parents
// before children, without following symlinks.
func walkSorted(dir, rel string, fn func(rel string, fi fs.FileInfo) error) error {
	ents, err := os.ReadDir(filepath.Join(dir, rel))
	if err != nil {
		return err
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
	for _, e := range ents {
		r := filepath.Join(rel, e.Name())
		fi, err := e.Info()
		if err != nil {
			return err
		}
		if err := fn(r, fi); err != nil {
			return err
		}
		if fi.IsDir() {
			if err := walkSorted(dir, r, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

func listXattrs(p string) ([]string, error) {
	buf := make([]byte, 1024)
	for {
		sz, err := unix.Llistxattr(p, buf)
		if errors.Is(err, unix.ERANGE) {
			buf = make([]byte, len(buf)*4)
			continue
		}
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		if err != nil {
			return nil, &os.PathError{Op: "llistxattr", Path: p, Err: err}
		}
		var out []string
		for _, k := range strings.Split(string(buf[:sz]), "\x00") {
			if k != "" {
				out = append(out, k)
			}
		}
		sort.Strings(out)
		return out, nil
	}
}

func getXattr(p, k string) ([]byte, error) {
	buf := make([]byte, 256)
	for {
		sz, err := unix.Lgetxattr(p, k, buf)
		if errors.Is(err, unix.ERANGE) {
			buf = make([]byte, len(buf)*4)
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "lgetxattr " + k, Path: p, Err: err}
		}
		return buf[:sz], nil
	}
}

// CommitImage stores an image made of cfg and layers (all already in the store, e.g. from
// AddDiff or another image): cfg's rootfs diff IDs are set from layers, the config and an OCI
// manifest are written as blobs, and the record is tagged with tags (Docker-style references).
func (s *Store) CommitImage(cfg *v1.ConfigFile, layers []Layer, tags []string) (*Image, error) {
	var canon []string
	for _, t := range tags {
		c, err := canonicalRef(t)
		if err != nil {
			return nil, err
		}
		canon = append(canon, c)
	}
	c := *cfg
	c.RootFS = v1.RootFS{Type: "layers", DiffIDs: make([]v1.Hash, len(layers))}
	m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, Layers: make([]v1.Descriptor, len(layers))}
	rec := &Image{
		ManifestMediaType: string(types.OCIManifestSchema1),
		Created:           c.Created.Time,
		OS:                c.OS,
		Architecture:      c.Architecture,
		Layers:            append([]Layer(nil), layers...),
	}
	for i, l := range layers {
		diff, err := v1.NewHash(l.DiffID)
		if err != nil {
			return nil, fmt.Errorf("%w: layer diff ID %q: %w", ErrInvalid, l.DiffID, err)
		}
		d, err := v1.NewHash(l.Digest)
		if err != nil {
			return nil, fmt.Errorf("%w: layer digest %q: %w", ErrInvalid, l.Digest, err)
		}
		c.RootFS.DiffIDs[i] = diff
		m.Layers[i] = v1.Descriptor{MediaType: types.MediaType(l.MediaType), Size: l.Size, Digest: d}
		var lr layerRecord
		p, err := s.layerPath(l.ChainID)
		if err != nil {
			return nil, err
		}
		if err := state.ReadJSON(filepath.Join(p, layerMeta), &lr); err != nil {
			return nil, fmt.Errorf("layer %s: %w", l.Digest, ErrNotFound)
		}
		rec.Size += lr.Size
	}
	rawCfg, err := json.Marshal(&c)
	if err != nil {
		return nil, err
	}
	rec.ID = sha256Digest(rawCfg)
	if err := s.putBytes(rec.ID, rawCfg); err != nil {
		return nil, fmt.Errorf("store config: %w", err)
	}
	cd, _ := v1.NewHash(rec.ID)
	m.Config = v1.Descriptor{MediaType: types.OCIConfigJSON, Size: int64(len(rawCfg)), Digest: cd}
	rawManifest, err := json.Marshal(&m)
	if err != nil {
		return nil, err
	}
	rec.ManifestDigest = sha256Digest(rawManifest)
	if err := s.putBytes(rec.ManifestDigest, rawManifest); err != nil {
		return nil, fmt.Errorf("store manifest: %w", err)
	}
	return s.commit(rec, canon)
}
