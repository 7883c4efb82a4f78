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
	modes[monitor.Mode] = monitor.Main
	// A monitor runs each operation of stack's runtime in this helper (see monitor.Helper).
	modes[monitor.HelperMode] = builtin.HelperMain
	if entry, ok := modes[args[1]]; ok {
		entry()
	}
}
