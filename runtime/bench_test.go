package runtime_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stackrun/stack/internal/testutil"
	"github.com/stackrun/stack/runtime/runtimetest"
)

// BenchmarkRunTrue is create + start + wait + delete of a container running `true`, in
// process (no CLI start-up): the runtime's own cost. bench/runtime.sh compares the CLI with
// runc and crun.
func BenchmarkRunTrue(b *testing.B) {
	testutil.RequireRoot(b)
	r := newRuntimeB(b)
	bundle := runtimetest.NewBundle(b, "true")
	dir := bundle.Write(b)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		id := fmt.Sprintf("bench-%d", i)
		c, err := r.Create(ctx, id, dir, runtimeIO())
		if err != nil {
			b.Fatal(err)
		}
		if err := r.Start(ctx, id); err != nil {
			b.Fatal(err)
		}
		if _, err := c.Wait(); err != nil {
			b.Fatal(err)
		}
		if err := r.Delete(ctx, id, false); err != nil {
			b.Fatal(err)
		}
	}
}
