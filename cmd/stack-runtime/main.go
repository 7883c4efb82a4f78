// Command stack-runtime is stack's container runtime as a binary of its own, with runc's command
// shape (stack-runtime [--root DIR] create|start|run|state|kill|delete|exec|list|stats|ps):
// the same code as `stack runtime`, without the stack CLI's dependencies, so it starts in a
// fraction of the time. It is what bench/runtime.sh puts beside runc and crun, and what a tool
// that takes an OCI runtime binary can be given. Its container inits and exec helpers run from
// stack-shim when it lies next to it, from itself otherwise.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/stackrun/stack/runtime"
	_ "github.com/stackrun/stack/runtime/nsenter" // joins a container's namespaces for exec, before Go starts
	"github.com/stackrun/stack/runtime/runtimecli"
)

var version = "dev"

func main() {
	if len(os.Args) > 1 {
		if entry, ok := runtime.HiddenModes()[os.Args[1]]; ok {
			entry() // the container init and the exec helper, when run from this binary
		}
	}
	app := &cli.App{
		Name:    "stack-runtime",
		Usage:   "run single containers from OCI bundles, like runc (stack's runtime)",
		Version: version,
		Flags:   runtimecli.Flags(),
		Commands: runtimecli.Commands(runtimecli.Options{
			DefaultRoot: func(*cli.Context) string { return "/run/stack-runtime" },
			Helper:      func() string { return runtimecli.Sibling("stack-shim") },
		}),
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return runtimecli.UsageError{Err: err}
		},
	}
	if err := app.Run(os.Args); err != nil {
		var q interface{ Quiet() }
		if !errors.As(err, &q) {
			fmt.Fprintln(os.Stderr, "stack-runtime:", err)
		}
		code := 1
		var ec interface{ ExitCode() int }
		if errors.As(err, &ec) {
			code = ec.ExitCode()
		}
		os.Exit(code)
	}
}
