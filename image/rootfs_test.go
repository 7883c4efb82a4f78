package image

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/stackrun/stack/internal/testutil"
)

func TestOverlayPlan(t *testing.T) {
	deep := func(n int, prefix string) []string {
		l := make([]string, n)
		for i := range l {
			l[i] = fmt.Sprintf("%s/layers/%064d/diff", prefix, i)
		}
		return l
	}
	cases := []struct {
		name   string
		o      Overlay
		data   string
		viaFD  bool
		errHas string
	}{
		{"two layers", Overlay{Lower: []string{"/l/top", "/l/base"}, Upper: "/c/upper", Work: "/c/work"},
			"lowerdir=/l/top:/l/base,upperdir=/c/upper,workdir=/c/work", false, ""},
		{"deep image falls back to fds", Overlay{Lower: deep(60, "/var/lib/stack/images"), Upper: "/c/upper", Work: "/c/work"}, "", true, ""},
		{"too deep even with fds", Overlay{Lower: deep(400, "/x"), Upper: "/u", Work: "/w"}, "", false, "exceed a page"},
		{"over the stack limit", Overlay{Lower: deep(501, "/x"), Upper: "/u", Work: "/w"}, "", false, "at most 500"},
		{"no lower", Overlay{Upper: "/u", Work: "/w"}, "", false, "at least one"},
		{"comma in path", Overlay{Lower: []string{"/a,b"}, Upper: "/u", Work: "/w"}, "", false, "must be absolute"},
		{"relative path", Overlay{Lower: []string{"a"}, Upper: "/u", Work: "/w"}, "", false, "must be absolute"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data, viaFD, err := c.o.plan(4096)
			if c.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), c.errHas) {
					t.Fatalf("err = %v, want %q", err, c.errHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if data != c.data || viaFD != c.viaFD {
				t.Errorf("plan = %q, %v; want %q, %v", data, viaFD, c.data, c.viaFD)
			}
			if viaFD {
				fds := make([]int, len(c.o.Lower))
				for i := range fds {
					fds[i] = 10000 + i
				}
				if d := c.o.dataFD(fds); len(d) >= 4096 || !strings.HasPrefix(d, "lowerdir=/proc/self/fd/10000:/proc/self/fd/10001:") {
					t.Errorf("fd data = %q (%d bytes)", d[:80], len(d))
				}
			}
		})
	}
}

// storeWithLayers puts an image of n single-file layers into a fresh store (no registry: the
// image is added from memory) and returns the store and its record.
func storeWithLayers(t testing.TB, n int) (*Store, *Image) {
	t.Helper()
	layers := make([][]byte, n)
	for i := range layers {
		entries := []E{{Name: fmt.Sprintf("l%d/", i)}, {Name: fmt.Sprintf("l%d/f", i), Body: fmt.Sprint(i)}, {Name: "shared", Body: fmt.Sprint(i)}}
		if i == n-1 && n > 1 {
			entries = append(entries, E{Name: ".wh.l0"})
		}
		layers[i] = testutil.Gzip(t, testutil.LayerTar(t, entries...))
	}
	s := openStore(t)
	img, err := s.add(context.Background(), testImage(t, "amd64", v1.Config{}, layers...), addOptions{tags: []string{"index.docker.io/library/deep:latest"}})
	if err != nil {
		t.Fatal(err)
	}
	return s, img
}

func TestMountRootfs(t *testing.T) {
	testutil.RequireRoot(t)
	for _, n := range []int{1, 5, 120} {
		t.Run(fmt.Sprint(n, " layers"), func(t *testing.T) {
			s, _ := storeWithLayers(t, n)
			cdir := filepath.Join(t.TempDir(), "containers", testutil.UniqueName())
			rootfs, cleanup, err := s.MountRootfs(context.Background(), "deep", cdir)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cleanup() })
			b, err := os.ReadFile(filepath.Join(rootfs, "shared"))
			if err != nil || string(b) != fmt.Sprint(n-1) {
				t.Errorf("shared = %q, %v; want the top layer's", b, err)
			}
			if b, err := os.ReadFile(filepath.Join(rootfs, fmt.Sprintf("l%d/f", n/2))); err != nil || string(b) != fmt.Sprint(n/2) {
				t.Errorf("middle layer file = %q, %v", b, err)
			}
			if _, err := os.Stat(filepath.Join(rootfs, "l0")); n > 1 && err == nil {
				t.Error("whiteout of l0 has no effect")
			}
			// Writes go to the container's upper dir, never to the shared layers.
			if err := os.WriteFile(filepath.Join(rootfs, "shared"), []byte("mine"), 0o644); err != nil {
				t.Fatal(err)
			}
			if b, _ := os.ReadFile(filepath.Join(cdir, "upper", "shared")); string(b) != "mine" {
				t.Errorf("upper/shared = %q", b)
			}
			if err := cleanup(); err != nil {
				t.Fatal(err)
			}
			var st unix.Statfs_t
			if err := unix.Statfs(rootfs, &st); err == nil && st.Type == unix.OVERLAYFS_SUPER_MAGIC {
				t.Error("rootfs still mounted after cleanup")
			}
		})
	}
}

// BenchmarkMountRootfs5Layers measures rootfs preparation (dirs + overlay mount + unmount)
// for a 5-layer image. Root only.
func BenchmarkMountRootfs5Layers(b *testing.B) {
	testutil.RequireRoot(b)
	s, _ := storeWithLayers(b, 5)
	base := b.TempDir()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cdir := filepath.Join(base, fmt.Sprint(i))
		_, cleanup, err := s.MountRootfs(context.Background(), "deep", cdir)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := cleanup(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
