package main

import (
	"github.com/stackrun/stack/runtime"
	"github.com/stackrun/stack/runtime/builtin"
	"github.com/stackrun/stack/runtime/monitor"
	_ "github.com/stackrun/stack/runtime/nsenter" // joins a container's namespaces for exec, before Go starts
)

// runHiddenMode hands a hidden argv[1] to its entry point. Entries never return. They are not
// listed in --help; they are how stack re-executes itself as a container's init or monitor.
// cmd/stack-shim holds the same modes without the CLI (see its doc comment).
func runHiddenMode(args []string) {
	if len(args) < 2 {
		return
	}
	modes := runtime.HiddenModes()
	// The monitor runs each operation of stack's runtime in a helper (builtin.HelperMain) so
	// that none of it stays in the monitor's memory.
	modes[monitor.Mode] = func() { monitor.Main(builtin.Spawning("/proc/self/exe")) }
	modes[builtin.HelperMode] = builtin.HelperMain
	if entry, ok := modes[args[1]]; ok {
		entry()
	}
}
