package image

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

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
			// Mounting again (a later command) finds the mount instead of stacking another.
			again, _, err := s.MountRootfs(context.Background(), "deep", cdir)
			if err != nil || again != rootfs {
				t.Fatalf("second MountRootfs = %q, %v", again, err)
			}
			if n := countMounts(t, rootfs); n != 1 {
				t.Errorf("%d mounts on the rootfs, want 1", n)
			}
			if err := UnmountRootfs(cdir); err != nil {
				t.Fatal(err)
			}
			if n := countMounts(t, rootfs); n != 0 {
				t.Errorf("rootfs still mounted after UnmountRootfs (%d)", n)
			}
			if err := cleanup(); err != nil {
				t.Errorf("cleanup after unmount: %v", err)
			}
			if err := UnmountRootfs(filepath.Join(t.TempDir(), "never")); err != nil {
				t.Errorf("UnmountRootfs of a dir never mounted: %v", err)
			}
		})
	}
}

func countMounts(t *testing.T, p string) int {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == p {
			n++
		}
	}
	return n
}

// BenchmarkMountRootfs5Layers measures rootfs preparation (dirs + overlay mount + unmount)
// for a 5-layer image. Root only.
func BenchmarkMountRootfs5Layers(b *testing.B) {
	testutil.RequireRoot(b)
	s, _ := storeWithLayers(b, 5)
	base := b.TempDir()
	times := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cdir := filepath.Join(base, fmt.Sprint(i))
		t0 := time.Now()
		_, cleanup, err := s.MountRootfs(context.Background(), "deep", cdir)
		if err != nil {
			b.Fatal(err)
		}
		times = append(times, time.Since(t0))
		b.StopTimer()
		if err := cleanup(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	b.ReportMetric(float64(times[len(times)/2].Microseconds()), "median-µs")
}
