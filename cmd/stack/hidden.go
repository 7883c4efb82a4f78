package main

import (
	"github.com/stackrun/stack/runtime"
	"github.com/stackrun/stack/runtime/builtin"
	"github.com/stackrun/stack/runtime/monitor"
	_ "github.com/stackrun/stack/runtime/nsenter" // joins a container's namespaces for exec, before Go starts
)

// hiddenModes maps a hidden argv[1] to its entry point. Entries never return. They are not
// listed in --help; they are how stack re-executes itself as a container's init or monitor.
var hiddenModes = map[string]func(){
	runtime.InitArg: runtime.InitMain,
	runtime.ExecArg: runtime.ExecMain,
	monitor.Mode:    func() { monitor.Main(builtin.New) },
}

func runHiddenMode(args []string) {
	if len(args) < 2 {
		return
	}
	if entry, ok := hiddenModes[args[1]]; ok {
		entry()
	}
}
