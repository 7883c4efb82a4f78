package main

import "github.com/stackrun/stack/runtime/monitor"

// hiddenModes maps a hidden argv[1] to its entry point. Entries never return. They are not
// listed in --help; they are how stack re-executes itself as a container's init or monitor.
var hiddenModes = map[string]func(){
	monitor.Mode: func() { monitor.Main(nil) },
}

func runHiddenMode(args []string) {
	if len(args) < 2 {
		return
	}
	if entry, ok := hiddenModes[args[1]]; ok {
		entry()
	}
}
