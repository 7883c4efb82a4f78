package image

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/stackrun/stack/internal/testutil"
)

// testImage builds an image from layer tarballs (plain or gzip'd).
func testImage(t testing.TB, arch string, cfg v1.Config, layers ...[]byte) v1.Image {
	t.Helper()
	img, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{OS: "linux", Architecture: arch,
		RootFS: v1.RootFS{Type: "layers"}, Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range layers {
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			t.Fatal(err)
		}
	}
	return img
}

// memRegistry serves an in-memory registry on 127.0.0.1 (plain HTTP) and returns its host:port.
// wrap, when set, wraps the handler (to corrupt responses).
func memRegistry(t testing.TB, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	var h http.Handler = registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func push(t testing.TB, ref string, img v1.Image) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
}

// counter counts progress events by status.
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) add(p Progress) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p.Status == StatusDownloading {
		return
	}
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[p.Status]++
}

func (c *counter) get(s string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[s]
}

func (c *counter) reset() { c.mu.Lock(); c.n = nil; c.mu.Unlock() }

func openStore(t testing.TB) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "images"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var (
	baseLayer = func(t testing.TB) []byte {
		return testutil.Gzip(t, testutil.LayerTar(t, E{Name: "bin/"}, E{Name: "bin/tool", Body: "base", Mode: 0o755}))
	}
	appLayer = func(t testing.TB, body string) []byte {
		return testutil.Gzip(t, testutil.LayerTar(t, E{Name: "app/"}, E{Name: "app/main", Body: body}))
	}
)

func TestPullSharesLayersAndSkipsPresentBlobs(t *testing.T) {
	host := memRegistry(t, nil)
	base := baseLayer(t)
	push(t, host+"/a:1", testImage(t, "amd64", v1.Config{}, base, appLayer(t, "a")))
	push(t, host+"/b:1", testImage(t, "amd64", v1.Config{}, base, appLayer(t, "b")))
	s := openStore(t)
	var c counter
	ctx := context.Background()

	a, err := s.Pull(ctx, host+"/a:1", PullOptions{Progress: c.add})
	if err != nil {
		t.Fatal(err)
	}
	if c.get(StatusDownloaded) != 2 || c.get(StatusUnpacked) != 2 {
		t.Fatalf("first pull: %v, want 2 downloads and 2 unpacks", c.n)
	}
	c.reset()
	b, err := s.Pull(ctx, host+"/b:1", PullOptions{Progress: c.add})
	if err != nil {
		t.Fatal(err)
	}
	if c.get(StatusDownloaded) != 1 || c.get(StatusExists) != 1 || c.get(StatusUnpacked) != 1 || c.get(StatusReused) != 1 {
		t.Fatalf("second pull sharing the base: %v, want 1 download, 1 present, 1 unpack, 1 reuse", c.n)
	}
	if a.Layers[0].ChainID != b.Layers[0].ChainID {
		t.Fatal("base layer chain IDs differ")
	}
	c.reset()
	if _, err := s.Pull(ctx, host+"/a:1", PullOptions{Progress: c.add}); err != nil {
		t.Fatal(err)
	}
	if c.get(StatusDownloaded) != 0 || c.get(StatusUnpacked) != 0 {
		t.Fatalf("re-pull: %v, want nothing downloaded or unpacked", c.n)
	}
	got, err := s.Get(host + "/a:1")
	if err != nil || got.ID != a.ID {
		t.Fatalf("Get = %v, %v", got, err)
	}
	lower, err := s.LowerDirs(a)
	if err != nil {
		t.Fatal(err)
	}
	if body, err := os.ReadFile(filepath.Join(lower[0], "app/main")); err != nil || string(body) != "a" {
		t.Errorf("top layer app/main = %q, %v", body, err)
	}
	if body, err := os.ReadFile(filepath.Join(lower[1], "bin/tool")); err != nil || string(body) != "base" {
		t.Errorf("base layer bin/tool = %q, %v", body, err)
	}
}

func TestPullSelectsPlatform(t *testing.T) {
	host := memRegistry(t, nil)
	amd := testImage(t, "amd64", v1.Config{Cmd: []string{"amd"}}, appLayer(t, "amd"))
	arm := testImage(t, "arm64", v1.Config{Cmd: []string{"arm"}}, appLayer(t, "arm"))
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}},
	)
	r, _ := name.ParseReference(host + "/multi:1")
	if err := remote.WriteIndex(r, idx); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ platform, cmd string }{{"linux/amd64", "amd"}, {"linux/arm64", "arm"}, {"", "amd"}} {
		s := openStore(t)
		img, err := s.Pull(context.Background(), host+"/multi:1", PullOptions{Platform: c.platform})
		if err != nil {
			t.Fatalf("platform %q: %v", c.platform, err)
		}
		cfg, err := s.Config(img)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Config.Cmd[0] != c.cmd {
			t.Errorf("platform %q: got image with Cmd %v", c.platform, cfg.Config.Cmd)
		}
		idxDigest, _ := idx.Digest()
		if len(img.RepoDigests) != 1 || !strings.HasSuffix(img.RepoDigests[0], "@"+idxDigest.String()) {
			t.Errorf("repo digests = %v, want the index digest %s", img.RepoDigests, idxDigest)
		}
	}
	s := openStore(t)
	if _, err := s.Pull(context.Background(), host+"/multi:1", PullOptions{Platform: "linux/s390x"}); err == nil {
		t.Error("pull for a platform the index lacks succeeded")
	}
}

// A registry that serves a tampered layer blob: the pull fails, nothing is stored under that
// digest, no temp file stays, and a later pull from an honest registry works.
func TestPullRefusesCorruptBlob(t *testing.T) {
	layer := appLayer(t, "honest")
	img := testImage(t, "amd64", v1.Config{}, layer)
	ld, _ := img.LayerByDiffID(mustDiffID(t, img))
	d, _ := ld.Digest()
	evil := memRegistry(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/blobs/"+d.String()) {
				bad := appLayer(t, "evil!!")
				w.Header().Set("Content-Length", strconv.Itoa(len(bad)))
				w.Write(bad)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	push(t, evil+"/x:1", img)
	s := openStore(t)
	_, err := s.Pull(context.Background(), evil+"/x:1", PullOptions{})
	if err == nil {
		t.Fatal("pull of a tampered blob succeeded")
	}
	t.Logf("refused: %v", err)
	if s.HasBlob(d.String()) {
		t.Error("tampered blob stored")
	}
	assertNoTemp(t, s)
	honest := memRegistry(t, nil)
	push(t, honest+"/x:1", img)
	if _, err := s.Pull(context.Background(), honest+"/x:1", PullOptions{}); err != nil {
		t.Fatalf("pull after a refused one: %v", err)
	}
}

func mustDiffID(t testing.TB, img v1.Image) v1.Hash {
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	return cfg.RootFS.DiffIDs[0]
}

func assertNoTemp(t testing.TB, s *Store) {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(s.Root(), tmpDir))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("temp file left: %s", e.Name())
	}
}

func TestPutBlobVerifiesDigest(t *testing.T) {
	s := openStore(t)
	want := sha256Digest([]byte("right"))
	if _, err := s.putBlob(want, strings.NewReader("wrong"), nil); !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("err = %v, want ErrDigestMismatch", err)
	}
	if s.HasBlob(want) {
		t.Fatal("mismatching blob stored")
	}
	assertNoTemp(t, s)
	if _, err := s.putBlob("sha256:../../etc/passwd", strings.NewReader("x"), nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("path-like digest: err = %v", err)
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	s := openStore(t)
	host := memRegistry(t, nil)
	push(t, host+"/rt:1", testImage(t, "amd64", v1.Config{Env: []string{"A=1"}}, baseLayer(t), appLayer(t, "rt")))
	img, err := s.Pull(context.Background(), host+"/rt:1", PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "rt.tar")
	f, err := os.OpenFile(archive, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Save(context.Background(), f, host+"/rt:1"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	s2 := openStore(t)
	loaded, err := s2.Load(context.Background(), archive, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(loaded) != 1 || loaded[0].ID != img.ID {
		t.Fatalf("loaded %v, want image %s", loaded, img.ID)
	}
	for i, l := range loaded[0].Layers {
		if l.Digest != img.Layers[i].Digest || l.DiffID != img.Layers[i].DiffID {
			t.Errorf("layer %d: %s/%s, want %s/%s", i, l.Digest, l.DiffID, img.Layers[i].Digest, img.Layers[i].DiffID)
		}
	}
	if got, err := s2.Get(host + "/rt:1"); err != nil || got.ID != img.ID {
		t.Errorf("loaded image not tagged: %v %v", got, err)
	}
}

func TestRemoveFreesUnsharedLayers(t *testing.T) {
	s := openStore(t)
	host := memRegistry(t, nil)
	push(t, host+"/a:1", testImage(t, "amd64", v1.Config{}, baseLayer(t), appLayer(t, "a")))
	push(t, host+"/b:1", testImage(t, "amd64", v1.Config{}, baseLayer(t), appLayer(t, "b")))
	ctx := context.Background()
	a, err := s.Pull(ctx, host+"/a:1", PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Pull(ctx, host+"/b:1", PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	inUse := map[string]bool{b.ID: true}
	s.InUse = func(id string) bool { return inUse[id] }
	if _, err := s.Remove(host+"/b:1", false); !errors.Is(err, ErrInUse) {
		t.Fatalf("remove of an image in use: err = %v", err)
	}
	if _, err := s.Remove(host+"/a:1", false); err != nil {
		t.Fatal(err)
	}
	if s.HasBlob(a.Layers[1].Digest) || dirExists(t, s, a.Layers[1].ChainID) {
		t.Error("a's own layer survived its image")
	}
	if !s.HasBlob(a.Layers[0].Digest) || !dirExists(t, s, a.Layers[0].ChainID) {
		t.Error("shared base layer freed while b uses it")
	}
	// Forced removal of an image in use only untags it; prune keeps it while in use.
	if _, err := s.Remove(host+"/b:1", true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(host + "/b:1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("tag survived forced removal: %v", err)
	}
	if _, err := s.Prune(); err != nil {
		t.Fatal(err)
	}
	if !dirExists(t, s, b.Layers[1].ChainID) {
		t.Error("prune freed a layer of an image in use")
	}
	delete(inUse, b.ID)
	rep, err := s.Prune()
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Images) != 1 || rep.Layers != 2 {
		t.Errorf("prune report %+v, want 1 image and 2 layers", rep)
	}
	for _, d := range []string{layersDir, blobsDir, recordsDir, tmpDir} {
		if ents, _ := os.ReadDir(filepath.Join(s.Root(), d)); len(ents) != 0 {
			t.Errorf("%s not empty after removing every image: %d entries", d, len(ents))
		}
	}
}

func dirExists(t testing.TB, s *Store, chain string) bool {
	p, err := s.layerPath(chain)
	if err != nil {
		t.Fatal(err)
	}
	_, err = os.Stat(p)
	return err == nil
}

func TestTagGetAndImport(t *testing.T) {
	s := openStore(t)
	rootfs := filepath.Join(t.TempDir(), "rootfs.tar")
	if err := os.WriteFile(rootfs, testutil.LayerTar(t, E{Name: "etc/"}, E{Name: "etc/hostname", Body: "imported"}), 0o600); err != nil {
		t.Fatal(err)
	}
	img, err := s.Import(context.Background(), rootfs, "imported:v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Tag("imported:v1", "localhost:5000/team/app:2"); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"imported:v1", "docker.io/library/imported:v1", "localhost:5000/team/app:2", img.ID, ShortID(img.ID)} {
		got, err := s.Get(ref)
		if err != nil || got.ID != img.ID {
			t.Errorf("Get(%q) = %v, %v", ref, got, err)
		}
	}
	if _, err := s.Get("nothere:1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get of a missing image: %v", err)
	}
	// Removing one of two tags keeps the image.
	if _, err := s.Remove("imported:v1", false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("localhost:5000/team/app:2"); err != nil {
		t.Errorf("image gone after removing one of its tags: %v", err)
	}
	list, _ := s.List()
	if len(list) != 1 || len(list[0].RepoTags) != 1 {
		t.Errorf("list = %+v", list)
	}
}
