package main

import (
	"github.com/urfave/cli/v2"

	"github.com/stackrun/stack/planner"
)

// pendingChanges is plan's exit code 2 (like terraform plan -detailed-exitcode).
type pendingChanges struct{}

func (pendingChanges) Error() string { return "changes pending" }
func (pendingChanges) ExitCode() int { return exitUsage }
func (pendingChanges) Quiet()        {}

func planCommand() *cli.Command {
	return &cli.Command{
		Name:      "plan",
		Usage:     "show what up would do, and why, without doing it",
		ArgsUsage: "[SERVICE...]",
		Description: `Prints + create, ~ recreate (why), - remove, = unchanged for every resource.
Exit code: 0 when the host matches the file, 2 when changes are pending, 1 on error.

Examples:
   stack plan
   stack plan --format json | jq .actions`,
		Flags: append(append(stackFileFlags(false), planFlags()...),
			&cli.StringFlag{Name: "format", Usage: "text or json", Value: "text"},
			&cli.BoolFlag{Name: "no-start", Usage: "plan creating containers without starting them"},
		),
		Action: func(c *cli.Context) error {
			popts, err := planOptions(c)
			if err != nil {
				return err
			}
			p, err := openProject(c, true)
			if err != nil {
				return err
			}
			obs, err := p.eng.Observe(c.Context)
			if err != nil {
				return err
			}
			pl, err := planner.Compute(p.stack, obs, popts)
			if err != nil {
				return err
			}
			if c.String("format") == "json" {
				err = pl.WriteJSON(c.App.Writer)
			} else {
				err = pl.WriteText(c.App.Writer)
			}
			if err != nil {
				return err
			}
			if !pl.Empty() {
				return pendingChanges{}
			}
			return nil
		},
	}
}
