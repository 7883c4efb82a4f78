package image

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/stackrun/stack/state"
)

// storeImage is a stored image seen as a go-containerregistry image (for save and push).
type storeImage struct {
	s   *Store
	rec *Image
}

var _ partial.CompressedImageCore = storeImage{}

func (i storeImage) RawConfigFile() ([]byte, error) { return i.s.ReadBlob(i.rec.ID) }
func (i storeImage) RawManifest() ([]byte, error)   { return i.s.ReadBlob(i.rec.ManifestDigest) }
func (i storeImage) MediaType() (types.MediaType, error) {
	return types.MediaType(i.rec.ManifestMediaType), nil
}

func (i storeImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	for _, l := range i.rec.Layers {
		if l.Digest == h.String() {
			return storeBlob{i.s, l}, nil
		}
	}
	if h.String() == i.rec.ID {
		return storeBlob{i.s, Layer{Digest: i.rec.ID}}, nil
	}
	return nil, fmt.Errorf("blob %s of image %s: %w", h, i.rec.ID, ErrNotFound)
}

type storeBlob struct {
	s *Store
	l Layer
}

func (b storeBlob) Digest() (v1.Hash, error) { return v1.NewHash(b.l.Digest) }
func (b storeBlob) Size() (int64, error)     { return b.l.Size, nil }
func (b storeBlob) MediaType() (types.MediaType, error) {
	return types.MediaType(b.l.MediaType), nil
}
func (b storeBlob) Compressed() (io.ReadCloser, error) {
	p, err := b.s.blobPath(b.l.Digest)
	if err != nil {
		return nil, err
	}
	return os.Open(p)
}

// V1 returns a stored image as a go-containerregistry image.
func (s *Store) V1(img *Image) (v1.Image, error) {
	return partial.CompressedToImage(storeImage{s, img})
}

// Save writes the images named by refs to w as one docker-archive (the `docker save` format).
func (s *Store) Save(ctx context.Context, w io.Writer, refs ...string) error {
	m := map[name.Reference]v1.Image{}
	for _, ref := range refs {
		rec, err := s.Get(ref)
		if err != nil {
			return fmt.Errorf("save: %w", err)
		}
		img, err := s.V1(rec)
		if err != nil {
			return err
		}
		var r name.Reference
		if canon, err := canonicalRef(ref); err == nil && contains(rec.RepoTags, canon) {
			r, _ = name.NewTag(canon)
		} else if r, err = name.NewDigest("stack.invalid/untagged@" + rec.ManifestDigest); err != nil {
			// Asked for by ID or digest: saved without RepoTags; the digest reference only
			// keys the map.
			return err
		}
		m[r] = img
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := tarball.MultiRefWrite(m, w); err != nil {
		return fmt.Errorf("save: write archive: %w", err)
	}
	return nil
}

// LoadOptions says how to load an archive.
type LoadOptions struct {
	Platform string // for OCI archives holding indexes; empty means DefaultPlatform
	Progress func(Progress)
}

// Load reads a docker-archive (`docker save`, skopeo docker-archive:) or an OCI image archive
// (oci-layout + index.json + blobs/) from path and stores every image in it under the tags it
// carries.
func (s *Store) Load(ctx context.Context, archive string, opts LoadOptions) ([]*Image, error) {
	kind, err := archiveKind(archive)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", archive, err)
	}
	var out []*Image
	switch kind {
	case "docker":
		out, err = s.loadDocker(ctx, archive, opts)
	default:
		out, err = s.loadOCI(ctx, archive, opts)
	}
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", archive, err)
	}
	return out, nil
}

func archiveKind(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	oci := false
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", fmt.Errorf("%w: not a tar archive: %w", ErrInvalid, err)
		}
		switch path.Clean(h.Name) {
		case "manifest.json":
			return "docker", nil
		case "index.json":
			oci = true
		}
	}
	if oci {
		return "oci", nil
	}
	return "", fmt.Errorf("%w: neither manifest.json (docker-archive) nor index.json (OCI archive) found", ErrInvalid)
}

func (s *Store) loadDocker(ctx context.Context, p string, opts LoadOptions) ([]*Image, error) {
	opener := func() (io.ReadCloser, error) { return os.Open(p) }
	m, err := tarball.LoadManifest(opener)
	if err != nil {
		return nil, err
	}
	var out []*Image
	for _, d := range m {
		var tag *name.Tag
		var tags []string
		for _, rt := range d.RepoTags {
			t, err := name.NewTag(rt)
			if err != nil {
				return nil, fmt.Errorf("%w: tag %q in archive: %w", ErrInvalid, rt, err)
			}
			if tag == nil {
				tag = &t
			}
			tags = append(tags, t.Name())
		}
		if tag == nil && len(m) > 1 {
			return nil, fmt.Errorf("%w: archive holds several images and one has no tag", ErrInvalid)
		}
		img, err := tarball.Image(opener, tag)
		if err != nil {
			return nil, err
		}
		rec, err := s.add(ctx, img, addOptions{ref: p, tags: tags, progress: opts.Progress})
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, nil
}

func (s *Store) loadOCI(ctx context.Context, p string, opts LoadOptions) ([]*Image, error) {
	gcl, err := sharedLock(filepath.Join(s.root, "gc.lock")) // keeps prune off our temp dir
	if err != nil {
		return nil, err
	}
	defer gcl.Unlock()
	dir, err := os.MkdirTemp(filepath.Join(s.root, tmpDir), "oci-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := extractOCI(p, dir); err != nil {
		return nil, err
	}
	lp, err := layout.FromPath(dir)
	if err != nil {
		return nil, err
	}
	idx, err := lp.ImageIndex()
	if err != nil {
		return nil, err
	}
	plat := opts.Platform
	if plat == "" {
		plat = DefaultPlatform()
	}
	want, err := v1.ParsePlatform(plat)
	if err != nil {
		return nil, fmt.Errorf("%w: platform %q: %w", ErrInvalid, plat, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var out []*Image
	for _, d := range im.Manifests {
		var tags []string
		for _, key := range []string{"io.containerd.image.name", "org.opencontainers.image.ref.name"} {
			if n := d.Annotations[key]; n != "" {
				if t, err := name.NewTag(n, name.StrictValidation); err == nil {
					tags = []string{t.Name()}
					break
				}
			}
		}
		img, err := ociImage(idx, d, *want)
		if err != nil {
			return nil, err
		}
		rec, err := s.add(ctx, img, addOptions{ref: p, tags: tags, progress: opts.Progress})
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, nil
}

// ociImage resolves an index entry to an image, descending into nested indexes by platform.
func ociImage(idx v1.ImageIndex, d v1.Descriptor, want v1.Platform) (v1.Image, error) {
	if !d.MediaType.IsIndex() {
		return idx.Image(d.Digest)
	}
	child, err := idx.ImageIndex(d.Digest)
	if err != nil {
		return nil, err
	}
	im, err := child.IndexManifest()
	if err != nil {
		return nil, err
	}
	for _, c := range im.Manifests {
		if c.Platform != nil && c.Platform.Satisfies(want) {
			return ociImage(child, c, want)
		}
	}
	return nil, fmt.Errorf("%w: no image for platform %s in index %s", ErrNotFound, want, d.Digest)
}

// extractOCI copies the few files an OCI archive may hold into dir, refusing any other name:
// the archive is untrusted, and only these names are ever opened.
func extractOCI(p, dir string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), state.DirMode); err != nil {
		return err
	}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: read archive: %w", ErrInvalid, err)
		}
		n := path.Clean(h.Name)
		if h.Typeflag != tar.TypeReg || !(n == "index.json" || n == "oci-layout" || isOCIBlobName(n)) {
			continue
		}
		out, err := os.OpenFile(filepath.Join(dir, filepath.FromSlash(n)), os.O_WRONLY|os.O_CREATE|os.O_EXCL, state.FileMode)
		if err != nil {
			return err
		}
		_, err = io.Copy(out, tr)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
}

// Import makes a single-layer image from a rootfs tarball (plain or gzip'd), like
// `docker import`, and tags it ref.
func (s *Store) Import(ctx context.Context, rootfsTar, ref string) (*Image, error) {
	var tags []string
	if ref != "" {
		t, err := name.NewTag(ref)
		if err != nil {
			return nil, fmt.Errorf("%w: import as %q: %w", ErrInvalid, ref, err)
		}
		tags = []string{t.Name()}
	}
	layer, err := tarball.LayerFromFile(rootfsTar)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", rootfsTar, err)
	}
	base, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{
		OS: "linux", Architecture: runtime.GOARCH,
		Created: v1.Time{Time: time.Now().UTC().Truncate(time.Second)},
		RootFS:  v1.RootFS{Type: "layers"},
	})
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", rootfsTar, err)
	}
	rec, err := s.add(ctx, img, addOptions{ref: rootfsTar, tags: tags})
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", rootfsTar, err)
	}
	return rec, nil
}

// isOCIBlobName reports whether n is blobs/sha256/<64 lowercase hex digits>.
func isOCIBlobName(n string) bool {
	h, ok := strings.CutPrefix(n, "blobs/sha256/")
	return ok && isLowerHex(h, 64, 64)
}
