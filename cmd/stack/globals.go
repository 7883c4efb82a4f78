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
	return append(stackFileFlags(true),
		&cli.StringFlag{Name: "root", Usage: "state root", Value: defaultRoot, EnvVars: []string{"STACK_ROOT"}},
		&cli.StringFlag{Name: "run-root", Usage: "root for volatile state (pids, sockets, locks)", Value: defaultRunRoot, EnvVars: []string{"STACK_RUN_ROOT"}},
	)
}

// stackFileFlags are the flags that say which stack file to load. They are global, as in
// Compose (stack -f x.yaml config), and repeated on each command that loads the file so that
// stack config -f x.yaml works too; the command's own value wins (see loadOptions). Only the
// global set reads the COMPOSE_* environment variables.
func stackFileFlags(global bool) []cli.Flag {
	env := func(name string) []string {
		if global {
			return []string{name}
		}
		return nil
	}
	return []cli.Flag{
		// COMPOSE_FILE is read by spec (through compose-go), which splits it on ':' (or
		// COMPOSE_PATH_SEPARATOR) as Compose does; urfave/cli would split it on ','.
		&cli.StringSliceFlag{Name: "file", Aliases: []string{"f"}, Usage: "stack file(s); later files override earlier ones (default: $COMPOSE_FILE, then stack.yaml, compose.yaml, ...)"},
		&cli.StringFlag{Name: "project-name", Aliases: []string{"p"}, Usage: "project name", EnvVars: env("COMPOSE_PROJECT_NAME")},
		&cli.StringFlag{Name: "project-directory", Usage: "project directory (default: the first file's directory)"},
		&cli.StringSliceFlag{Name: "env-file", Usage: "environment file(s) for interpolation (default: .env in the project directory)"},
		&cli.StringSliceFlag{Name: "profile", Usage: "enable a profile", EnvVars: env("COMPOSE_PROFILES")},
	}
}

// loadOptions turns the stack file flags into spec load options: a flag given to the command
// wins over the same global flag.
func loadOptions(c *cli.Context) spec.Options {
	// The outermost context with an App holds the global flags (urfave/cli adds an empty one
	// above it).
	root := c
	for _, l := range c.Lineage() {
		if l.App != nil {
			root = l
		}
	}
	local := map[string]bool{}
	for _, n := range c.LocalFlagNames() {
		local[n] = true
	}
	from := func(name string) *cli.Context {
		if c != root && local[name] {
			return c
		}
		return root
	}
	return spec.Options{
		Files:            from("file").StringSlice("file"),
		ProjectName:      from("project-name").String("project-name"),
		ProjectDirectory: from("project-directory").String("project-directory"),
		EnvFiles:         from("env-file").StringSlice("env-file"),
		Profiles:         from("profile").StringSlice("profile"),
		Loader:           loadWithLoader,
	}
}
