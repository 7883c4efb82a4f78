package image

import (
	"archive/tar"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"

	"github.com/stackrun/stack/internal/testutil"
)

// These tests are the image issue's acceptance: a real registry (Debian's docker-registry),
// images pushed with skopeo from archives built here, and stack's store pulling them. Root.

func requireRegistryTools(t *testing.T) string {
	t.Helper()
	testutil.RequireRoot(t)
	testutil.RequireBinary(t, "skopeo")
	host, _ := testutil.StartRegistry(t)
	return host
}

// skopeoPush copies an archive or layout (skopeo transport:path) to host/repo:tag.
func skopeoPush(t *testing.T, src, dest string, extra ...string) {
	t.Helper()
	args := append([]string{"--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false"}, extra...)
	out, err := exec.Command("skopeo", append(args, src, "docker://"+dest)...).CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo copy %s %s: %v\n%s", src, dest, err, out)
	}
}

// pushDockerArchive writes img as a docker-archive and pushes it with skopeo (extra: more
// skopeo copy flags, e.g. --format oci).
func pushDockerArchive(t *testing.T, img v1.Image, dest string, extra ...string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "img.tar")
	tag, err := name.NewTag(dest)
	if err != nil {
		t.Fatal(err)
	}
	if err := tarball.WriteToFile(p, tag, img); err != nil {
		t.Fatal(err)
	}
	skopeoPush(t, "docker-archive:"+p, dest, extra...)
}

// The fixture images: a busybox base, then a layer deleting a file and adding /app, then a
// layer making /var/cache opaque. Image B shares the base.
type fixture struct {
	base, delete, opaque, bOnly []byte
	a, b                        v1.Image
}

func newFixture(t *testing.T) fixture {
	var f fixture
	bb := testutil.BusyboxLayer(t)
	// The base: busybox plus files the next layers delete or hide.
	baseExtra := testutil.LayerTar(t,
		E{Name: "bin/ls2", Type: tar.TypeLink, Link: "bin/busybox"},
		E{Name: "bin/suid", Body: "suid", Mode: 0o4755},
		E{Name: "etc/deleteme", Body: "gone soon"},
		E{Name: "etc/mtab", Type: tar.TypeSymlink, Link: "/proc/mounts"},
		E{Name: "home/"},
		E{Name: "home/app/", Mode: 0o700, UID: 1000, GID: 1000},
		E{Name: "home/app/.profile", Body: "export A=1\n", Mode: 0o600, UID: 1000, GID: 1000},
		E{Name: "var/"},
		E{Name: "var/cache/"},
		E{Name: "var/cache/old", Body: "old"},
		E{Name: "var/cache/keep/"},
	)
	// Concatenate the two tars' entries: strip the first's end-of-archive blocks.
	f.base = testutil.Gzip(t, append(bb[:len(bb)-1024], baseExtra...))
	f.delete = testutil.Gzip(t, testutil.LayerTar(t,
		E{Name: "etc/"},
		E{Name: "etc/.wh.deleteme"},
		E{Name: "app/"},
		E{Name: "app/hello", Body: "hello from A\n", Mode: 0o640, UID: 1000, GID: 1000},
	))
	f.opaque = testutil.Zstd(t, testutil.LayerTar(t,
		E{Name: "var/"},
		E{Name: "var/cache/"},
		E{Name: "var/cache/.wh..wh..opq"},
		E{Name: "var/cache/new", Body: "new"},
	))
	f.bOnly = testutil.Gzip(t, testutil.LayerTar(t, E{Name: "b/"}, E{Name: "b/only", Body: "b"}))
	cfg := v1.Config{Cmd: []string{"/bin/sh"}, Env: []string{"PATH=/bin"}}
	f.a = testImage(t, "amd64", cfg, f.base, f.delete, f.opaque)
	f.b = testImage(t, "amd64", cfg, f.base, f.bOnly)
	return f
}

// tree describes every entry under root: type, mode, owner, and content hash or link target.
func tree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		rel, _ := filepath.Rel(root, p)
		desc := fmt.Sprintf("%o %d:%d", uint32(st.Mode)&0o7777, st.Uid, st.Gid)
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			desc = "l -> " + l
		case fi.IsDir():
			desc = "d " + desc
		case fi.Mode().IsRegular():
			b, _ := os.ReadFile(p)
			s := sha256.Sum256(b)
			desc = "f " + desc + " " + hex.EncodeToString(s[:4])
		default:
			desc = fmt.Sprintf("other %v", fi.Mode())
		}
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func fileHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:4])
}

func expectedA(t *testing.T) map[string]string {
	bin, err := os.ReadFile(testutil.RequireBinary(t, "busybox"))
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"bin":               "d 755 0:0",
		"bin/busybox":       "f 755 0:0 " + fileHash(string(bin)),
		"bin/ls2":           "f 755 0:0 " + fileHash(string(bin)),
		"bin/sh":            "l -> busybox",
		"bin/ls":            "l -> busybox",
		"bin/suid":          "f 4755 0:0 " + fileHash("suid"),
		"etc":               "d 755 0:0",
		"etc/passwd":        "f 644 0:0 " + fileHash("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n"),
		"etc/group":         "f 644 0:0 " + fileHash("root:x:0:\napp:x:1000:\n"),
		"etc/mtab":          "l -> /proc/mounts",
		"tmp":               "d 1777 0:0",
		"home":              "d 755 0:0",
		"home/app":          "d 700 1000:1000",
		"home/app/.profile": "f 600 1000:1000 " + fileHash("export A=1\n"),
		"var":               "d 755 0:0",
		"var/cache":         "d 755 0:0",
		"var/cache/new":     "f 644 0:0 " + fileHash("new"),
		"app":               "d 755 0:0",
		"app/hello":         "f 640 1000:1000 " + fileHash("hello from A\n"),
	}
}

func diffTrees(t *testing.T, got, want map[string]string) {
	t.Helper()
	var keys []string
	for k := range got {
		keys = append(keys, k)
	}
	for k := range want {
		if _, ok := got[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if got[k] != want[k] {
			t.Errorf("%s: got %q, want %q", k, got[k], want[k])
		}
	}
}

// countBlobGets counts the registry's GETs of one blob, from its access log.
func countBlobGets(t *testing.T, logPath, digest string) int {
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, `"GET `) && strings.Contains(line, "/blobs/"+digest) {
			n++
		}
	}
	return n
}

// Acceptance 1 and 2: pull from a registry; the rootfs is what the layers mean; a second image
// sharing the base layer neither downloads nor unpacks it again.
func TestRegistryPullRootfsAndSharing(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireBinary(t, "skopeo")
	host, logPath := testutil.StartRegistry(t)
	f := newFixture(t)
	pushDockerArchive(t, f.a, host+"/stk/a:1")
	pushDockerArchive(t, f.b, host+"/stk/b:1", "--format", "oci") // OCI manifest, same blobs
	s := openStore(t)
	ctx := context.Background()
	var c counter
	a, err := s.Pull(ctx, host+"/stk/a:1", PullOptions{Progress: c.add})
	if err != nil {
		t.Fatal(err)
	}
	if c.get(StatusDownloaded) != 3 || c.get(StatusUnpacked) != 3 {
		t.Errorf("pull a: %v", c.n)
	}
	rootfs, cleanup, err := s.MountRootfs(ctx, host+"/stk/a:1", filepath.Join(t.TempDir(), "c1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cleanup() })
	diffTrees(t, tree(t, rootfs), expectedA(t))
	bb, _ := os.Lstat(filepath.Join(rootfs, "bin/busybox"))
	ls2, _ := os.Lstat(filepath.Join(rootfs, "bin/ls2"))
	if !os.SameFile(bb, ls2) {
		t.Error("bin/ls2 is not a hard link of bin/busybox")
	}
	// The layers themselves hold overlay whiteouts.
	lower, _ := s.LowerDirs(a)
	if fi, err := os.Lstat(filepath.Join(lower[1], "etc/deleteme")); err != nil || fi.Mode()&fs.ModeCharDevice == 0 {
		t.Errorf("delete layer: etc/deleteme is %v, %v; want a whiteout device", fi, err)
	}
	buf := make([]byte, 4)
	if n, err := unix.Lgetxattr(filepath.Join(lower[0], "var/cache"), overlayOpaqueXattr, buf); err != nil || string(buf[:n]) != "y" {
		t.Errorf("opaque layer: var/cache xattr %q, %v", buf[:n], err)
	}
	if out, err := exec.Command("chroot", rootfs, "/bin/busybox", "cat", "/app/hello").CombinedOutput(); err != nil || string(out) != "hello from A\n" {
		t.Errorf("busybox in the rootfs: %q, %v", out, err)
	}

	baseDir, _ := s.layerPath(a.Layers[0].ChainID)
	before, _ := os.Stat(filepath.Join(baseDir, layerMeta))
	c.reset()
	b, err := s.Pull(ctx, host+"/stk/b:1", PullOptions{Progress: c.add})
	if err != nil {
		t.Fatal(err)
	}
	if b.Layers[0].ChainID != a.Layers[0].ChainID {
		t.Fatal("b does not share a's base layer")
	}
	if c.get(StatusDownloaded) != 1 || c.get(StatusExists) != 1 || c.get(StatusUnpacked) != 1 || c.get(StatusReused) != 1 {
		t.Errorf("pull b: %v, want 1 downloaded, 1 already present, 1 unpacked, 1 reused\na: %+v\nb: %+v", c.n, a.Layers, b.Layers)
	}
	if n := countBlobGets(t, logPath, a.Layers[0].Digest); n != 1 {
		t.Errorf("registry served the base layer %d times, want 1", n)
	}
	after, _ := os.Stat(filepath.Join(baseDir, layerMeta))
	if !os.SameFile(before, after) || !before.ModTime().Equal(after.ModTime()) {
		t.Error("base layer unpacked again")
	}
	if b.ManifestMediaType != "application/vnd.oci.image.manifest.v1+json" || a.ManifestMediaType != "application/vnd.docker.distribution.manifest.v2+json" {
		t.Errorf("manifest types: a %s, b %s", a.ManifestMediaType, b.ManifestMediaType)
	}
}

// Acceptance 3: hostile layers from a registry are refused, nothing is written outside the
// layer dir, and the store still works.
func TestRegistryRefusesMaliciousLayers(t *testing.T) {
	host := requireRegistryTools(t)
	for _, p := range []string{"/etc/x", "/abs/path"} {
		if _, err := os.Lstat(p); err == nil {
			t.Skipf("%s exists on this host; the escape check would be ambiguous", p)
		}
	}
	wrongDiff := testImage(t, "amd64", v1.Config{}, testutil.Gzip(t, testutil.LayerTar(t, E{Name: "a", Body: "a"})))
	cf, _ := wrongDiff.ConfigFile()
	cf = cf.DeepCopy()
	cf.RootFS.DiffIDs[0] = v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("1", 64)}
	wrongDiff, err := mutate.ConfigFile(wrongDiff, cf)
	if err != nil {
		t.Fatal(err)
	}
	gz := testutil.Gzip(t, testutil.LayerTar(t, E{Name: "a", Body: strings.Repeat("pwned", 4000)}))
	truncated, err := mutate.AppendLayers(empty.Image, static.NewLayer(gz[:len(gz)/2], types.DockerLayer))
	if err != nil {
		t.Fatal(err)
	}
	hostile := map[string]v1.Image{
		"truncated-gzip": truncated,
		"dotdot":         testImage(t, "amd64", v1.Config{}, testutil.LayerTar(t, E{Name: "../../etc/x", Body: "pwned"})),
		"absolute":       testImage(t, "amd64", v1.Config{}, testutil.LayerTar(t, E{Name: "/abs/path", Body: "pwned"})),
		"symlink": testImage(t, "amd64", v1.Config{}, testutil.LayerTar(t,
			E{Name: "root", Type: tar.TypeSymlink, Link: "/"}, E{Name: "root/etc/x", Body: "pwned"})),
		"hardlink": testImage(t, "amd64", v1.Config{}, testutil.LayerTar(t,
			E{Name: "pw", Type: tar.TypeLink, Link: "/etc/passwd"})),
		"diffid": wrongDiff,
		"10gib":  testImage(t, "amd64", v1.Config{}, testutil.LayerTar(t, E{Name: "big", Body: "tiny", ClaimSize: 10 << 30})),
	}
	s := openStore(t)
	names := make([]string, 0, len(hostile))
	for n := range hostile {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if n == "diffid" || n == "truncated-gzip" {
			// skopeo checks diff IDs and refuses to push these; go-containerregistry does not.
			push(t, host+"/evil/"+n+":1", hostile[n])
		} else {
			pushDockerArchive(t, hostile[n], host+"/evil/"+n+":1")
		}
		_, err := s.Pull(context.Background(), host+"/evil/"+n+":1", PullOptions{})
		if !errors.Is(err, ErrInvalidLayer) {
			t.Errorf("%s: err = %v, want ErrInvalidLayer", n, err)
			continue
		}
		t.Logf("%s refused: %v", n, err)
		assertNoTemp(t, s)
		if imgs, _ := s.List(); len(imgs) != 0 {
			t.Errorf("%s: image recorded despite the refusal", n)
		}
		if ents, _ := os.ReadDir(filepath.Join(s.Root(), layersDir)); len(ents) != 0 {
			t.Errorf("%s: %d layer dirs installed", n, len(ents))
		}
	}
	for _, p := range []string{"/etc/x", "/abs/path"} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s written on the host", p)
		}
	}
	filepath.WalkDir(filepath.Dir(s.Root()), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if b, _ := os.ReadFile(p); string(b) == "pwned" {
				t.Errorf("hostile content written at %s", p)
			}
		}
		return nil
	})
	// The store is intact: a good image pulls and mounts.
	f := newFixture(t)
	pushDockerArchive(t, f.a, host+"/stk/a:1")
	if _, err := s.Pull(context.Background(), host+"/stk/a:1", PullOptions{}); err != nil {
		t.Fatalf("pull after refusals: %v", err)
	}
	rootfs, cleanup, err := s.MountRootfs(context.Background(), host+"/stk/a:1", filepath.Join(t.TempDir(), "c"))
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	diffTrees(t, tree(t, rootfs), expectedA(t))
}

// Acceptance 4: save/load round trip keeps the digests; skopeo's docker-archive and
// oci-archive output loads.
func TestRegistryArchives(t *testing.T) {
	host := requireRegistryTools(t)
	f := newFixture(t)
	pushDockerArchive(t, f.a, host+"/stk/a:1")
	ctx := context.Background()
	s := openStore(t)
	a, err := s.Pull(ctx, host+"/stk/a:1", PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	saved := filepath.Join(dir, "saved.tar")
	out, err := os.OpenFile(saved, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Save(ctx, out, host+"/stk/a:1"); err != nil {
		t.Fatal(err)
	}
	out.Close()
	s2 := openStore(t)
	got, err := s2.Load(ctx, saved, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != a.ID {
		t.Fatalf("round trip: loaded %+v, want ID %s", got, a.ID)
	}
	for i := range a.Layers {
		if got[0].Layers[i].Digest != a.Layers[i].Digest || got[0].Layers[i].DiffID != a.Layers[i].DiffID {
			t.Errorf("round trip layer %d differs: %+v vs %+v", i, got[0].Layers[i], a.Layers[i])
		}
	}
	// skopeo reads what stack saved.
	if out, err := exec.Command("skopeo", "--insecure-policy", "inspect", "--raw", "docker-archive:"+saved).CombinedOutput(); err != nil {
		t.Errorf("skopeo inspect of stack's archive: %v\n%s", err, out)
	}
	// skopeo's docker-archive (uncompressed layers, as docker save) and oci-archive load.
	for _, transport := range []string{"docker-archive", "oci-archive"} {
		p := filepath.Join(dir, transport+".tar")
		cmd := exec.Command("skopeo", "--insecure-policy", "copy", "--quiet", "--src-tls-verify=false",
			"docker://"+host+"/stk/a:1", transport+":"+p+":"+host+"/stk/a:1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("skopeo copy to %s: %v\n%s", transport, err, out)
		}
		s3 := openStore(t)
		got, err := s3.Load(ctx, p, LoadOptions{})
		if err != nil {
			t.Fatalf("load %s: %v", transport, err)
		}
		if len(got) != 1 {
			t.Fatalf("%s: loaded %d images", transport, len(got))
		}
		// Converting to OCI, skopeo re-encodes the config (so the ID changes); docker-archive
		// keeps it byte for byte.
		if transport == "docker-archive" && got[0].ID != a.ID {
			t.Errorf("%s: loaded ID %s, want %s", transport, got[0].ID, a.ID)
		}
		for i := range a.Layers {
			if got[0].Layers[i].DiffID != a.Layers[i].DiffID {
				t.Errorf("%s layer %d diff ID %s, want %s", transport, i, got[0].Layers[i].DiffID, a.Layers[i].DiffID)
			}
		}
		if _, err := s3.Get(host + "/stk/a:1"); err != nil {
			t.Errorf("%s: loaded image not tagged: %v", transport, err)
		}
	}
}

// slowProxy forwards to a registry, trickling blob bodies so a pull can be killed midway.
func slowProxy(t *testing.T, host string) string {
	u, _ := url.Parse("http://" + host)
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(r *http.Response) error {
		if strings.Contains(r.Request.URL.Path, "/blobs/") {
			r.Body = slowBody{r.Body}
		}
		return nil
	}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

type slowBody struct{ io.ReadCloser }

func (s slowBody) Read(p []byte) (int, error) {
	if len(p) > 16<<10 {
		p = p[:16<<10]
	}
	time.Sleep(2 * time.Millisecond) // a trickle, not a wait for a condition
	return s.ReadCloser.Read(p)
}

// TestPullHelperProcess is the pull that TestPullKilledMidway kills; it does nothing otherwise.
func TestPullHelperProcess(t *testing.T) {
	args := os.Getenv("STACK_TEST_PULL_HELPER")
	if args == "" {
		t.Skip("helper process for TestPullKilledMidway")
	}
	root, ref, _ := strings.Cut(args, "|")
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pull(context.Background(), ref, PullOptions{}); err != nil {
		t.Fatal(err)
	}
}

// Acceptance 5: kill -9 during a pull, pull again: it completes, the store is consistent, and
// prune leaves no temporary files.
func TestPullKilledMidway(t *testing.T) {
	host := requireRegistryTools(t)
	random := make([]byte, 8<<20)
	rand.Read(random)
	img := testImage(t, "amd64", v1.Config{}, testutil.Gzip(t, testutil.BusyboxLayer(t)),
		testutil.Gzip(t, testutil.LayerTar(t, E{Name: "big", Body: string(random)})))
	pushDockerArchive(t, img, host+"/stk/big:1")
	slow := slowProxy(t, host)
	s := openStore(t)

	cmd := exec.Command(os.Args[0], "-test.run=^TestPullHelperProcess$")
	cmd.Env = append(os.Environ(), "STACK_TEST_PULL_HELPER="+s.Root()+"|"+slow+"/stk/big:1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	// Wait until a download is under way (a temp blob with content), then SIGKILL.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if partialBlob(s) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the helper never started downloading")
		}
		time.Sleep(time.Millisecond)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	killed = true
	if imgs, _ := s.List(); len(imgs) != 0 {
		t.Fatal("killed pull recorded an image")
	}
	// Pull again, directly: it completes.
	got, err := s.Pull(context.Background(), host+"/stk/big:1", PullOptions{})
	if err != nil {
		t.Fatalf("pull after kill -9: %v", err)
	}
	rep, err := s.Prune()
	if err != nil {
		t.Fatal(err)
	}
	if rep.TempFiles == 0 {
		t.Error("prune found no temp file from the killed pull")
	}
	assertNoTemp(t, s)
	// Consistent: every blob hashes to its name, every layer of the image is installed.
	ents, _ := os.ReadDir(filepath.Join(s.Root(), blobsDir))
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(s.Root(), blobsDir, e.Name()))
		if sha256Digest(b) != "sha256:"+e.Name() {
			t.Errorf("blob %s is corrupt", e.Name())
		}
	}
	if _, err := s.LowerDirs(got); err != nil {
		t.Error(err)
	}
	lower, _ := s.LowerDirs(got)
	if fi, err := os.Stat(filepath.Join(lower[0], "big")); err != nil || fi.Size() != int64(len(random)) {
		t.Errorf("big file: %v, %v", fi, err)
	}
}

func partialBlob(s *Store) bool {
	ents, _ := os.ReadDir(filepath.Join(s.Root(), tmpDir))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "blob-") {
			if fi, err := e.Info(); err == nil && fi.Size() > 0 {
				return true
			}
		}
	}
	return false
}
