package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/urfave/cli/v2"
)

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "show the stack version and build information",
		Action: func(c *cli.Context) error {
			fmt.Fprintf(c.App.Writer, "stack %s\n", version)
			fmt.Fprintf(c.App.Writer, "go: %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
			if bi, ok := debug.ReadBuildInfo(); ok {
				for _, s := range bi.Settings {
					if s.Key == "vcs.revision" || s.Key == "vcs.time" {
						fmt.Fprintf(c.App.Writer, "%s: %s\n", s.Key, s.Value)
					}
				}
			}
			return nil
		},
	}
}
