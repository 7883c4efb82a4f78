package volumes

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stackrun/stack/spec"
)

// BenchmarkCopyUp copies an image directory of 2000 small files (20 directories of 100 x 4 KiB)
// and one 32 MiB file into a fresh volume per iteration.
func BenchmarkCopyUp(b *testing.B) {
	rootfs := b.TempDir()
	small := make([]byte, 4<<10)
	var total int64
	for d := range 20 {
		dir := filepath.Join(rootfs, "data", fmt.Sprintf("d%02d", d))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		for f := range 100 {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%03d", f)), small, 0o644); err != nil {
				b.Fatal(err)
			}
			total += int64(len(small))
		}
	}
	big := make([]byte, 32<<20)
	if err := os.WriteFile(filepath.Join(rootfs, "data", "big"), big, 0o644); err != nil {
		b.Fatal(err)
	}
	total += int64(len(big))
	s, err := Open(filepath.Join(b.TempDir(), Dir))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.SetBytes(total)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		name := fmt.Sprintf("v%d", i)
		if _, err := s.Ensure(ctx, Spec{Name: name}); err != nil {
			b.Fatal(err)
		}
		if copied, err := s.CopyUp(ctx, name, rootfs, "/data", "c"); err != nil || !copied {
			b.Fatalf("CopyUp = %v, %v", copied, err)
		}
		b.StopTimer()
		if err := s.Remove(name, true); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// BenchmarkPlan plans a service with ten mounts of each kind.
func BenchmarkPlan(b *testing.B) {
	o := testPlanOptions()
	var mounts []spec.Mount
	for i := range 10 {
		mounts = append(mounts,
			spec.Mount{Type: spec.MountVolume, Source: "data", Target: fmt.Sprintf("/v/%d", i)},
			spec.Mount{Type: spec.MountBind, Source: fmt.Sprintf("./b%d", i), Target: fmt.Sprintf("/b/%d", i), ReadOnly: true},
			spec.Mount{Type: spec.MountTmpfs, Target: fmt.Sprintf("/t/%d", i), TmpfsSize: 1 << 20},
		)
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := Plan(mounts, o); err != nil {
			b.Fatal(err)
		}
	}
}
