// Command stack is a daemonless, declarative, Compose-style multi-container orchestrator.
//
// This package holds only the CLI: flags, subcommands and output. Each subcommand lives in its
// own file, turns its flags into a typed options value and calls one function in engine, spec or
// runtime.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"
)

// Exit codes shared by every command.
const (
	exitFailure = 1
	exitUsage   = 2
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	// Hidden modes (container init, monitor) are dispatched here, before urfave/cli parses
	// anything; see hiddenModes in hidden.go. They never return.
	runHiddenMode(os.Args)

	app := newApp()
	if err := app.Run(os.Args); err != nil {
		var q quietError
		if !errors.As(err, &q) {
			fmt.Fprintln(os.Stderr, "stack:", err)
		}
		os.Exit(exitCode(err))
	}
}

func newApp() *cli.App {
	return &cli.App{
		Name:                   "stack",
		Usage:                  "run multi-container applications from a Compose file, without a daemon",
		Description:            rootDescription,
		Version:                version,
		EnableBashCompletion:   true,
		UseShortOptionHandling: true,
		Flags:                  globalFlags(),
		Commands:               commands(),
		ExitErrHandler:         func(*cli.Context, error) {}, // main reports errors once
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return usageError{err}
		},
	}
}

// commands lists every registered subcommand. Only commands that really work are here.
func commands() []*cli.Command {
	return append([]*cli.Command{
		applyCommand(),
		buildCommand(),
		commitCommand(),
		completionCommand(),
		configCommand(),
		cpCommand(),
		downCommand(),
		eventsCommand(),
		execCommand(),
		exportCommand(),
		withRegistryCommands(imageCommand()),
		infoCommand(),
		inspectCommand(),
		logsCommand(),
		networkCommand(),
		planCommand(),
		portCommand(),
		psCommand(),
		pullCommand(),
		pushCommand(),
		rmCommand(),
		runCommand(),
		statsCommand(),
		runtimeCommand(),
		topCommand(),
		upCommand(),
		versionCommand(),
		volumeCommand(),
	}, lifecycleCommands()...)
}

// usageError marks a command-line mistake (exit code 2).
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

// quietError is an outcome the command already reported (plan's "changes pending"): main
// exits with its code and prints nothing more.
type quietError interface{ Quiet() }

// exitCoder lets a command choose its exit code (e.g. plan: 2 when changes are pending).
type exitCoder interface{ ExitCode() int }

func exitCode(err error) int {
	var ue usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	var ec exitCoder
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	return exitFailure
}
