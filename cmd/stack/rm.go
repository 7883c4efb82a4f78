package main

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/stackrun/stack/engine/local"
	"github.com/stackrun/stack/runtime/monitor"
)

func rmCommand() *cli.Command {
	return &cli.Command{
		Name:      "rm",
		Usage:     "remove stopped containers of services (one-off containers included)",
		ArgsUsage: "[SERVICE...]",
		Description: `Running containers are left alone (and named) unless --stop stops them first. stack
never asks for confirmation: --force is accepted for Compose compatibility. A removed
replica is created again by the next up.

Examples:
   stack rm
   stack rm -s worker`,
		Flags: append(stackFileFlags(false),
			&cli.BoolFlag{Name: "force", Usage: "do not ask for confirmation (stack never asks; -f is the stack file)"},
			&cli.BoolFlag{Name: "stop", Aliases: []string{"s"}, Usage: "stop the containers first"},
			&cli.IntFlag{Name: "timeout", Aliases: []string{"t"}, Usage: "with --stop: seconds before SIGKILL", Value: -1},
		),
		Action: func(c *cli.Context) error {
			p, err := openProject(c, false)
			if err != nil {
				return err
			}
			recs, err := selectRecords(p, c.Args().Slice())
			if err != nil {
				return err
			}
			cs := local.Containers{Host: p.host}
			var errs []error
			removed := 0
			for _, r := range recs {
				st, err := p.host.Status(r.ID)
				live := err == nil && (st.Unsupervised || !st.State.Final() && st.State != monitor.StateCreated)
				if live && !c.Bool("stop") {
					fmt.Fprintf(c.App.ErrWriter, "%s is running: not removed (stop it, or use --stop)\n", r.Name)
					continue
				}
				if live {
					if err := cs.Stop(c.Context, r.ID, stopTimeout(r, c.Int("timeout"))); err != nil {
						errs = append(errs, fmt.Errorf("stop %s: %w", r.Name, err))
						continue
					}
				}
				if err := p.eng.RemoveOneOff(c.Context, r); err != nil {
					errs = append(errs, err)
					continue
				}
				removed++
				fmt.Fprintln(c.App.Writer, "removed", r.Name)
			}
			if removed == 0 && len(errs) == 0 {
				fmt.Fprintln(c.App.ErrWriter, "no stopped containers")
			}
			return errors.Join(errs...)
		},
	}
}
