package main

import (
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/stackrun/stack/engine/local"
	"github.com/stackrun/stack/runtime/runtimecli"
)

// runtimeCommand is `stack runtime`: the container runtime on its own, with runc's command
// shape (runtime/runtimecli, which cmd/stack-runtime serves as a binary of its own).
func runtimeCommand() *cli.Command {
	return runtimecli.Command(runtimecli.Options{
		DefaultRoot: func(c *cli.Context) string { return filepath.Join(c.String("run-root"), "runtime") },
		Helper:      local.ShimPath,
	})
}

// parseSignal, statusError and attachConsole are the runtime command line's, shared with
// kill, exec and run.
var (
	parseSignal   = runtimecli.ParseSignal
	attachConsole = runtimecli.AttachConsole
)

type statusError = runtimecli.StatusError
