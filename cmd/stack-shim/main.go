// Command stack-shim is stack's lean companion binary: it holds only the hidden modes stack
// re-executes itself in (the container init, the exec helper, the runtime helper a monitor runs
// each operation of stack's runtime in, and the monitor itself) and none of the CLI, so the
// processes that start every container and every exec do not pay for the CLI's dependencies
// (compose-go's schema, the registry client, ...): a faster start. Monitors run from
// cmd/stack-monitor, which holds less still; this binary is their fallback. stack uses it when
// it lies next to the stack binary (make build puts it there) and falls back to itself
// otherwise.
package main

import (
	"fmt"
	"os"

	"github.com/stackrun/stack/runtime"
	"github.com/stackrun/stack/runtime/builtin"
	"github.com/stackrun/stack/runtime/monitor"
	_ "github.com/stackrun/stack/runtime/nsenter" // joins a container's namespaces for exec, before Go starts
)

func main() {
	modes := runtime.HiddenModes()
	modes[monitor.Mode] = monitor.Main
	// A monitor runs each operation of stack's runtime in this helper (see monitor.Helper).
	modes[monitor.HelperMode] = builtin.HelperMain
	if len(os.Args) > 1 {
		if entry, ok := modes[os.Args[1]]; ok {
			entry() // never returns
		}
	}
	fmt.Fprintln(os.Stderr, "stack-shim is started by stack itself (monitor, container init, exec); run stack instead")
	os.Exit(2)
}
