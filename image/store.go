package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/stackrun/stack/state"
)

// Store layout under its root:
//
//	blobs/sha256/<hex>      manifests, configs and compressed layers, verified on write
//	layers/<chain hex>/     one unpacked layer: diff/ (the overlay lower dir) and layer.json
//	records/<id hex>.json   one image record per image ID (config digest)
//	tmp/                    downloads and unpacks in progress; renamed into place when complete
//	locks/                  one flock per blob and per layer, serializing work on it
//	store.lock              serializes changes to records
//	gc.lock                 shared by every writer, exclusive for garbage collection
const (
	blobsDir   = "blobs/sha256"
	layersDir  = "layers"
	recordsDir = "records"
	tmpDir     = "tmp"
	locksDir   = "locks"
	layerDiff  = "diff"
	layerMeta  = "layer.json"
)

// concurrentLayers bounds parallel layer downloads and unpacks within one image.
const concurrentLayers = 4

// Store is an image store rooted at one directory. Its methods are safe for concurrent use by
// several processes: the filesystem and flocks carry all shared state.
type Store struct {
	root string
	// InUse, when set, reports whether a container uses the image with this ID; Remove refuses
	// such an image unless forced, and Prune keeps it. The engine sets it from its container
	// records (none exist yet in this package's world).
	InUse func(imageID string) bool
	// Limits caps each unpacked layer.
	Limits Limits
	// privileged: running as root, so owners, devices and whiteouts can be created.
	privileged bool
}

// Image is the record of one image in the store. ID is the config digest.
type Image struct {
	ID                string    `json:"id"`
	ManifestDigest    string    `json:"manifestDigest"`
	ManifestMediaType string    `json:"manifestMediaType"`
	RepoTags          []string  `json:"repoTags,omitempty"`
	RepoDigests       []string  `json:"repoDigests,omitempty"`
	Created           time.Time `json:"created"`
	OS                string    `json:"os"`
	Architecture      string    `json:"architecture"`
	Size              int64     `json:"size"` // unpacked size of all layers
	Layers            []Layer   `json:"layers"`
	Added             time.Time `json:"added"`
}

// Layer is one layer of an image.
type Layer struct {
	Digest    string `json:"digest"` // of the blob as stored (compressed)
	MediaType string `json:"mediaType"`
	Size      int64  `json:"size"` // blob size
	DiffID    string `json:"diffID"`
	ChainID   string `json:"chainID"`
}

// layerRecord is written next to an unpacked layer's diff directory.
type layerRecord struct {
	ChainID string `json:"chainID"`
	DiffID  string `json:"diffID"`
	Size    int64  `json:"size"` // bytes of file content
	Entries int    `json:"entries"`
}

// Open opens (creating if needed) the store at root, normally <state root>/images.
func Open(root string) (*Store, error) {
	for _, d := range []string{blobsDir, layersDir, recordsDir, tmpDir, locksDir} {
		if err := os.MkdirAll(filepath.Join(root, d), state.DirMode); err != nil {
			return nil, fmt.Errorf("open image store %s: %w", root, err)
		}
	}
	return &Store{root: root, privileged: os.Geteuid() == 0}, nil
}

// Root is the store's directory.
func (s *Store) Root() string { return s.root }

// isLowerHex reports whether s is lowercase hex digits, between min and max of them.
func isLowerHex(s string, min, max int) bool {
	if len(s) < min || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// digestHex validates a "sha256:<hex>" digest (it may come from an untrusted manifest and ends
// up in a path) and returns its hex part.
func digestHex(d string) (string, error) {
	h, ok := strings.CutPrefix(d, "sha256:")
	if !ok || !isLowerHex(h, 64, 64) {
		return "", fmt.Errorf("%w: digest %q is not sha256:<64 hex>", ErrInvalid, d)
	}
	return h, nil
}

func (s *Store) blobPath(d string) (string, error) {
	h, err := digestHex(d)
	if err != nil {
		return "", err
	}
	return filepath.Join(s.root, blobsDir, h), nil
}

func (s *Store) layerPath(chainID string) (string, error) {
	h, err := digestHex(chainID)
	if err != nil {
		return "", err
	}
	return filepath.Join(s.root, layersDir, h), nil
}

// HasBlob reports whether the blob with digest d is in the store.
func (s *Store) HasBlob(d string) bool {
	p, err := s.blobPath(d)
	return err == nil && state.Exists(p)
}

// ReadBlob returns the content of a stored blob.
func (s *Store) ReadBlob(d string) ([]byte, error) {
	p, err := s.blobPath(d)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blob %s: %w", d, ErrNotFound)
	}
	return b, err
}

// putBlob stores the content of r as blob want, verifying its digest while writing; a
// mismatch stores nothing. Concurrent writers of the same blob serialize on its lock and the
// second one finds it present. It reports whether it wrote the blob.
func (s *Store) putBlob(want string, r io.Reader, progress func(int64)) (bool, error) {
	p, err := s.blobPath(want)
	if err != nil {
		return false, err
	}
	if state.Exists(p) {
		return false, nil
	}
	l, err := state.WaitLock(filepath.Join(s.root, locksDir, "blob-"+filepath.Base(p)))
	if err != nil {
		return false, err
	}
	defer l.Unlock()
	if state.Exists(p) {
		return false, nil
	}
	f, err := os.CreateTemp(filepath.Join(s.root, tmpDir), "blob-*")
	if err != nil {
		return false, err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	h := sha256.New()
	var w io.Writer = io.MultiWriter(f, h)
	if progress != nil {
		w = io.MultiWriter(w, progressWriter(progress))
	}
	_, err = io.Copy(w, r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return false, fmt.Errorf("write blob %s: %w", want, err)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != want {
		return false, fmt.Errorf("blob %s: %w: content hashes to %s", want, ErrDigestMismatch, got)
	}
	if err := os.Chmod(tmp, state.FileMode); err != nil {
		return false, err
	}
	if err := os.Rename(tmp, p); err != nil {
		return false, err
	}
	return true, nil
}

type progressWriter func(int64)

func (p progressWriter) Write(b []byte) (int, error) { p(int64(len(b))); return len(b), nil }

// putBytes stores b as a blob with digest want (verified).
func (s *Store) putBytes(want string, b []byte) error {
	_, err := s.putBlob(want, strings.NewReader(string(b)), nil)
	return err
}

// Progress is one event of a long operation on one layer. Callbacks receiving it may be called
// from several goroutines at once.
type Progress struct {
	Ref     string // the image being pulled or loaded
	Layer   string // blob digest
	Status  string // one of the Status* values
	Current int64  // bytes so far (StatusDownloading)
	Total   int64  // blob size
}

// Progress statuses.
const (
	StatusExists      = "already exists" // blob present: not downloaded
	StatusDownloading = "downloading"
	StatusDownloaded  = "downloaded"
	StatusUnpacked    = "unpacked"
	StatusReused      = "layer reused" // unpacked layer present: not unpacked again
)

// addOptions says where an image came from and what to call it.
type addOptions struct {
	ref        string   // for progress events
	tags       []string // canonical tag references to point at the image
	repoDigest string   // canonical repo@digest the image was pulled by
	progress   func(Progress)
}

// add stores img: its manifest, config and layer blobs (skipping present ones, fetching the
// others concurrently), each layer unpacked once, then the record.
func (s *Store) add(ctx context.Context, img v1.Image, o addOptions) (*Image, error) {
	gcl, err := sharedLock(filepath.Join(s.root, "gc.lock"))
	if err != nil {
		return nil, err
	}
	defer gcl.Unlock()

	rawManifest, err := img.RawManifest()
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	manifestDigest := sha256Digest(rawManifest)
	m, err := v1.ParseManifest(strings.NewReader(string(rawManifest)))
	if err != nil {
		return nil, fmt.Errorf("%w: parse manifest %s: %w", ErrInvalid, manifestDigest, err)
	}
	rawConfig, err := img.RawConfigFile()
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	if err := s.putBytes(m.Config.Digest.String(), rawConfig); err != nil {
		return nil, fmt.Errorf("store config: %w", err)
	}
	cfg, err := v1.ParseConfigFile(strings.NewReader(string(rawConfig)))
	if err != nil {
		return nil, fmt.Errorf("%w: parse config %s: %w", ErrInvalid, m.Config.Digest, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("%w: manifest %s has %d layers but its config %d diff IDs",
			ErrInvalid, manifestDigest, len(m.Layers), len(cfg.RootFS.DiffIDs))
	}
	if err := s.putBytes(manifestDigest, rawManifest); err != nil {
		return nil, fmt.Errorf("store manifest: %w", err)
	}

	rec := &Image{
		ID:                m.Config.Digest.String(),
		ManifestDigest:    manifestDigest,
		ManifestMediaType: string(m.MediaType),
		Created:           cfg.Created.Time,
		OS:                cfg.OS,
		Architecture:      cfg.Architecture,
		Layers:            make([]Layer, len(m.Layers)),
	}
	if rec.ManifestMediaType == "" {
		if mt, err := img.MediaType(); err == nil {
			rec.ManifestMediaType = string(mt)
		}
	}
	chain := ""
	for i, d := range m.Layers {
		diff := cfg.RootFS.DiffIDs[i].String()
		chain = chainID(chain, diff)
		rec.Layers[i] = Layer{Digest: d.Digest.String(), MediaType: string(d.MediaType), Size: d.Size, DiffID: diff, ChainID: chain}
	}

	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(concurrentLayers)
	sizes := make([]int64, len(rec.Layers))
	for i := range rec.Layers {
		g.Go(func() error {
			n, err := s.ensureLayer(gctx, img, rec.Layers[i], o)
			sizes[i] = n
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for _, n := range sizes {
		rec.Size += n
	}
	if o.repoDigest != "" {
		rec.RepoDigests = []string{o.repoDigest}
	}
	return s.commit(rec, o.tags)
}

// ensureLayer makes the blob and the unpacked directory of one layer present and returns the
// layer's unpacked size.
func (s *Store) ensureLayer(ctx context.Context, img v1.Image, l Layer, o addOptions) (int64, error) {
	ev := func(status string, cur int64) {
		if o.progress != nil {
			o.progress(Progress{Ref: o.ref, Layer: l.Digest, Status: status, Current: cur, Total: l.Size})
		}
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if s.HasBlob(l.Digest) {
		ev(StatusExists, l.Size)
	} else {
		h, err := v1.NewHash(l.Digest)
		if err != nil {
			return 0, err
		}
		layer, err := img.LayerByDigest(h)
		if err != nil {
			return 0, fmt.Errorf("layer %s: %w", l.Digest, err)
		}
		rc, err := layer.Compressed()
		if err != nil {
			return 0, fmt.Errorf("fetch layer %s: %w", l.Digest, err)
		}
		var cur int64
		wrote, err := s.putBlob(l.Digest, ctxReader{ctx, rc}, func(n int64) {
			cur += n
			ev(StatusDownloading, cur)
		})
		rc.Close()
		if err != nil {
			return 0, fmt.Errorf("fetch layer %s: %w", l.Digest, err)
		}
		if wrote {
			ev(StatusDownloaded, cur)
		} else {
			ev(StatusExists, l.Size)
		}
	}
	rec, unpacked, err := s.unpackLayer(l)
	if err != nil {
		return 0, err
	}
	if unpacked {
		ev(StatusUnpacked, l.Size)
	} else {
		ev(StatusReused, l.Size)
	}
	return rec.Size, nil
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// unpackLayer unpacks the stored blob of l into layers/<chain>, unless already there. The
// unpack happens in tmp/ and is renamed into place, so a layer directory that exists is
// complete.
func (s *Store) unpackLayer(l Layer) (layerRecord, bool, error) {
	var rec layerRecord
	dir, err := s.layerPath(l.ChainID)
	if err != nil {
		return rec, false, err
	}
	if err := state.ReadJSON(filepath.Join(dir, layerMeta), &rec); err == nil {
		return rec, false, nil
	}
	lk, err := state.WaitLock(filepath.Join(s.root, locksDir, "layer-"+filepath.Base(dir)))
	if err != nil {
		return rec, false, err
	}
	defer lk.Unlock()
	if err := state.ReadJSON(filepath.Join(dir, layerMeta), &rec); err == nil {
		return rec, false, nil
	}
	blob, err := s.blobPath(l.Digest)
	if err != nil {
		return rec, false, err
	}
	f, err := os.Open(blob)
	if err != nil {
		return rec, false, fmt.Errorf("unpack layer %s: %w", l.Digest, err)
	}
	defer f.Close()
	tmp, err := os.MkdirTemp(filepath.Join(s.root, tmpDir), "unpack-*")
	if err != nil {
		return rec, false, err
	}
	defer os.RemoveAll(tmp) // no-op after the rename
	if err := os.Mkdir(filepath.Join(tmp, layerDiff), 0o755); err != nil {
		return rec, false, err
	}
	st, err := Unpack(f, filepath.Join(tmp, layerDiff), UnpackOptions{Limits: s.Limits, DiffID: l.DiffID, Privileged: s.privileged})
	if err != nil {
		return rec, false, fmt.Errorf("unpack layer %s: %w", l.Digest, err)
	}
	rec = layerRecord{ChainID: l.ChainID, DiffID: l.DiffID, Size: st.Bytes, Entries: st.Entries}
	// Flush the unpacked files before the rename makes the layer look complete: after a power
	// loss a renamed layer must not hold files whose data never reached the disk.
	if err := syncFS(tmp); err != nil {
		return rec, false, err
	}
	if err := state.WriteJSON(filepath.Join(tmp, layerMeta), rec); err != nil {
		return rec, false, err
	}
	if err := os.Rename(tmp, dir); err != nil {
		if errors.Is(err, fs.ErrExist) || errors.Is(err, unix.ENOTEMPTY) {
			// A crashed earlier unpack cannot have left dir (it renames last), but a
			// hand-made leftover without layer.json may exist: replace it.
			if rerr := os.RemoveAll(dir); rerr != nil {
				return rec, false, rerr
			}
			err = os.Rename(tmp, dir)
		}
		if err != nil {
			return rec, false, fmt.Errorf("install layer %s: %w", l.ChainID, err)
		}
	}
	return rec, true, nil
}

// syncFS flushes the filesystem holding dir (syncfs(2)): one call instead of an fsync per
// unpacked file.
func syncFS(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		return &os.PathError{Op: "syncfs", Path: dir, Err: err}
	}
	return nil
}

// chainID is the image-spec chain ID: ChainID(L0) = DiffID(L0), ChainID(Ln) =
// sha256(ChainID(Ln-1) + " " + DiffID(Ln)).
func chainID(parent, diffID string) string {
	if parent == "" {
		return diffID
	}
	return sha256Digest([]byte(parent + " " + diffID))
}

func sha256Digest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// commit writes rec, merged with an existing record of the same ID, and moves tags to it.
func (s *Store) commit(rec *Image, tags []string) (*Image, error) {
	l, err := state.WaitLock(filepath.Join(s.root, "store.lock"))
	if err != nil {
		return nil, err
	}
	defer l.Unlock()
	recs, err := s.records()
	if err != nil {
		return nil, err
	}
	for _, old := range recs {
		if old.ID == rec.ID {
			rec.RepoTags = old.RepoTags
			rec.RepoDigests = union(old.RepoDigests, rec.RepoDigests)
			if !old.Added.IsZero() {
				rec.Added = old.Added
			}
		}
	}
	if rec.Added.IsZero() {
		rec.Added = time.Now().UTC()
	}
	if err := s.moveTags(recs, rec, tags); err != nil {
		return nil, err
	}
	return rec, s.writeRecord(rec)
}

// moveTags points tags at rec, removing them from every other record (caller holds store.lock).
func (s *Store) moveTags(recs []*Image, rec *Image, tags []string) error {
	for _, old := range recs {
		if old.ID == rec.ID {
			continue
		}
		kept := without(old.RepoTags, tags)
		if len(kept) != len(old.RepoTags) {
			old.RepoTags = kept
			if err := s.writeRecord(old); err != nil {
				return err
			}
		}
	}
	rec.RepoTags = union(rec.RepoTags, tags)
	return nil
}

func (s *Store) writeRecord(rec *Image) error {
	h, err := digestHex(rec.ID)
	if err != nil {
		return err
	}
	return state.WriteJSON(filepath.Join(s.root, recordsDir, h+".json"), rec)
}

// records reads every image record, sorted by ID.
func (s *Store) records() ([]*Image, error) {
	ents, err := os.ReadDir(filepath.Join(s.root, recordsDir))
	if err != nil {
		return nil, err
	}
	var out []*Image
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		var rec Image
		if err := state.ReadJSON(filepath.Join(s.root, recordsDir, e.Name()), &rec); err != nil {
			return nil, fmt.Errorf("read image record: %w", err)
		}
		out = append(out, &rec)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// List returns every image in the store, sorted by ID.
func (s *Store) List() ([]*Image, error) { return s.records() }

// Get finds an image by reference (tag or digest, Docker-style short names allowed), by ID
// ("sha256:<hex>"), or by a unique prefix of at least 4 hex digits of its ID.
func (s *Store) Get(ref string) (*Image, error) {
	recs, err := s.records()
	if err != nil {
		return nil, err
	}
	return find(recs, ref)
}

func find(recs []*Image, ref string) (*Image, error) {
	if strings.HasPrefix(ref, "sha256:") {
		for _, r := range recs {
			if r.ID == ref || r.ManifestDigest == ref {
				return r, nil
			}
		}
	}
	if canon, err := canonicalRef(ref); err == nil {
		for _, r := range recs {
			if contains(r.RepoTags, canon) || contains(r.RepoDigests, canon) {
				return r, nil
			}
		}
		// repo@digest also matches the manifest digest under any name
		if d, err := name.NewDigest(canon); err == nil {
			for _, r := range recs {
				if r.ManifestDigest == d.DigestStr() {
					return r, nil
				}
			}
		}
	}
	if len(ref) >= 4 && isLowerHex(ref, 1, 64) {
		var hit *Image
		for _, r := range recs {
			if strings.HasPrefix(strings.TrimPrefix(r.ID, "sha256:"), ref) {
				if hit != nil {
					return nil, fmt.Errorf("image %s: %w: prefix matches several images", ref, ErrInvalid)
				}
				hit = r
			}
		}
		if hit != nil {
			return hit, nil
		}
	}
	return nil, fmt.Errorf("image %s: %w", ref, ErrNotFound)
}

// canonicalRef parses a Docker-style reference ("busybox", "localhost:5000/a:1", "r/a@sha256:…")
// into its full form ("index.docker.io/library/busybox:latest").
func canonicalRef(ref string) (string, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return "", fmt.Errorf("%w: reference %q: %w", ErrInvalid, ref, err)
	}
	return r.Name(), nil
}

// Normalize returns the canonical form of a user's image reference (what records store):
// "redis:7" -> "index.docker.io/library/redis:7".
func Normalize(ref string) (string, error) { return canonicalRef(ref) }

// Refs maps every tag and repo digest in the store, in canonical and in short form
// ("index.docker.io/library/redis:7" and "redis:7"), to the ID of its image.
func (s *Store) Refs() (map[string]string, error) {
	recs, err := s.records()
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, r := range recs {
		for _, t := range append(append([]string{}, r.RepoTags...), r.RepoDigests...) {
			out[t] = r.ID
			out[ShortRef(t)] = r.ID
		}
	}
	return out, nil
}

// ShortRef renders a canonical reference the way users write it (Docker Hub's registry and
// "library/" dropped).
func ShortRef(canon string) string {
	s := strings.TrimPrefix(canon, name.DefaultRegistry+"/")
	return strings.TrimPrefix(s, "library/")
}

// Tag points ref at the image found by src.
func (s *Store) Tag(src, ref string) error {
	canon, err := canonicalRef(ref)
	if err != nil {
		return err
	}
	if _, err := name.NewTag(canon); err != nil {
		return fmt.Errorf("%w: %s is not a tag: %w", ErrInvalid, ref, err)
	}
	l, err := state.WaitLock(filepath.Join(s.root, "store.lock"))
	if err != nil {
		return err
	}
	defer l.Unlock()
	recs, err := s.records()
	if err != nil {
		return err
	}
	img, err := find(recs, src)
	if err != nil {
		return err
	}
	if err := s.moveTags(recs, img, []string{canon}); err != nil {
		return err
	}
	return s.writeRecord(img)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func union(a, b []string) []string {
	out := append([]string(nil), a...)
	for _, x := range b {
		if !contains(out, x) {
			out = append(out, x)
		}
	}
	sort.Strings(out)
	return out
}

func without(a, remove []string) []string {
	var out []string
	for _, x := range a {
		if !contains(remove, x) {
			out = append(out, x)
		}
	}
	return out
}

// Config returns the image config (the JSON blob the image ID names).
func (s *Store) Config(img *Image) (*v1.ConfigFile, error) {
	b, err := s.ReadBlob(img.ID)
	if err != nil {
		return nil, err
	}
	cfg, err := v1.ParseConfigFile(strings.NewReader(string(b)))
	if err != nil {
		return nil, fmt.Errorf("parse config of image %s: %w", img.ID, err)
	}
	return cfg, nil
}

// Inspect is the JSON shape of `stack image inspect`.
type Inspect struct {
	*Image
	Config *v1.ConfigFile `json:"config"`
}
