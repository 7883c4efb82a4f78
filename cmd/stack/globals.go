package main

import (
	"github.com/urfave/cli/v2"

	"github.com/stackrun/stack/spec"
)

// Default locations of the state root (persistent records) and run root (pids, sockets, locks).
const (
	defaultRoot    = "/var/lib/stack"
	defaultRunRoot = "/run/stack"
)

func globalFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "file", Aliases: []string{"f"}, Usage: "stack file(s); later files override earlier ones", EnvVars: []string{"COMPOSE_FILE"}},
		&cli.StringFlag{Name: "project-name", Aliases: []string{"p"}, Usage: "project name", EnvVars: []string{"COMPOSE_PROJECT_NAME"}},
		&cli.StringFlag{Name: "project-directory", Usage: "project directory (default: the first file's directory)"},
		&cli.StringSliceFlag{Name: "env-file", Usage: "environment file(s) for interpolation (default: .env in the project directory)"},
		&cli.StringSliceFlag{Name: "profile", Usage: "enable a profile", EnvVars: []string{"COMPOSE_PROFILES"}},
		&cli.StringFlag{Name: "root", Usage: "state root", Value: defaultRoot, EnvVars: []string{"STACK_ROOT"}},
		&cli.StringFlag{Name: "run-root", Usage: "root for volatile state (pids, sockets, locks)", Value: defaultRunRoot, EnvVars: []string{"STACK_RUN_ROOT"}},
	}
}

// loadOptions turns the global flags into spec load options.
func loadOptions(c *cli.Context) spec.Options {
	return spec.Options{
		Files:            c.StringSlice("file"),
		ProjectName:      c.String("project-name"),
		ProjectDirectory: c.String("project-directory"),
		EnvFiles:         c.StringSlice("env-file"),
		Profiles:         c.StringSlice("profile"),
	}
}
