package runtime_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/stackrun/stack/runtime"
	_ "github.com/stackrun/stack/runtime/nsenter"
)

// TestMain hands off to the runtime's hidden modes first, as cmd/stack does, so the test
// binary can re-execute itself as a container's init or exec helper.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		if entry, ok := runtime.HiddenModes()[os.Args[1]]; ok {
			entry()
		}
	}
	if len(os.Args) == 6 && os.Args[1] == createHelperArg {
		// Stands in for `stack runtime create`: create, then exit leaving the init waiting.
		r := runtime.New(runtime.Options{Root: os.Args[2], CgroupParent: os.Args[3]})
		if _, err := r.Create(context.Background(), os.Args[4], os.Args[5], runtime.IO{}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// createHelperArg re-executes the test binary as a create-only command: ROOT PARENT ID BUNDLE.
const createHelperArg = "__test_create"
