// Command minimal is a binary that holds nothing but the monitor: BenchmarkMonitorMemory
// builds it to show what a monitor costs without the package initialisation of the whole
// stack binary (compose-go, jsonschema, ...).
package main

import (
	"fmt"
	"os"

	"github.com/stackrun/stack/runtime/monitor"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == monitor.Mode {
		monitor.Main(nil)
	}
	fmt.Fprintln(os.Stderr, "minimal: only runs as a monitor")
	os.Exit(2)
}
