package build_test

import (
	"os"
	"testing"

	"github.com/stackrun/stack/runtime"
	_ "github.com/stackrun/stack/runtime/nsenter"
)

// TestMain hands off to the runtime's hidden modes first, as cmd/stack does: RUN steps start
// containers whose init is this test binary re-executed.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		if entry, ok := runtime.HiddenModes()[os.Args[1]]; ok {
			entry()
		}
	}
	os.Exit(m.Run())
}
