// Command stack-monitor is the per-container monitor and nothing else: the one process that
// stays alive for every container, so it is kept to the monitor's own code, pure Go and linked
// statically (make build sets CGO_ENABLED=0): no C library, none of the runtime's
// dependencies, no CLI. It runs stack's own runtime through stack-shim's runtime helper
// (monitor.Config.RuntimeHelper). stack starts it when it lies next to the stack binary and
// falls back to stack-shim, then to itself, which hold the monitor too.
package main

import (
	"fmt"
	"os"
	"runtime"

	"github.com/stackrun/stack/runtime/monitor"
)

// The monitor re-executes itself once set up (runtime/monitor's handOver), which only the
// main thread may do cleanly: lock the main goroutine to it from the start.
func init() { runtime.LockOSThread() }

func main() {
	if len(os.Args) > 1 && os.Args[1] == monitor.Mode {
		monitor.Main() // never returns
	}
	fmt.Fprintln(os.Stderr, "stack-monitor is started by stack itself, one per container; run stack instead")
	os.Exit(2)
}
