package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/stackrun/stack/engine"
	"github.com/stackrun/stack/planner"
)

func downCommand() *cli.Command {
	return &cli.Command{
		Name:  "down",
		Usage: "stop and remove the project's containers and networks (and volumes with -v)",
		Description: `Works from the records on disk, so the stack file is not needed when -p names the project.

--rmi local removes, after the containers, the images stack built and tagged itself (services
with build: and no image:); --rmi all every image the project's services use. An image that
containers of another project still use is kept, with a warning naming them.

Examples:
   stack down           # the project of ./stack.yaml (or compose.yaml)
   stack down -v        # also its named volumes
   stack down --rmi all # also the images of its services
   stack -p shop down   # without the file`,
		Flags: append(stackFileFlags(false),
			&cli.BoolFlag{Name: "volumes", Aliases: []string{"v"}, Usage: "also remove named volumes of the project"},
			&cli.BoolFlag{Name: "remove-orphans", Usage: "also remove containers of services no longer in the file"},
			&cli.IntFlag{Name: "timeout", Aliases: []string{"t"}, Usage: "seconds to wait for each container to stop before killing it (default: its stop_grace_period)", Value: -1},
			&cli.StringFlag{Name: "rmi", Usage: "also remove images of the services: local (built by stack, no image:) or all"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print nothing but errors"},
			&cli.StringFlag{Name: "progress", Usage: "progress output: plain or json", Value: "plain"},
		),
		Action: func(c *cli.Context) error {
			rmi := c.String("rmi")
			if rmi != "" && rmi != planner.RemoveImagesLocal && rmi != planner.RemoveImagesAll {
				return usageError{fmt.Errorf("--rmi %q: want local or all", rmi)}
			}
			p, err := openProject(c, false)
			if err != nil {
				return err
			}
			ctx, stop, _, prog := hostSession(c)
			defer stop()
			prog.warn = c.App.ErrWriter
			opts := engine.ApplyOptions{OnEvent: prog.event}
			if t := c.Int("timeout"); t >= 0 {
				opts.StopTimeout = seconds(t)
			}
			_, err = p.eng.Converge(ctx, p.stack, planner.Options{Down: true, RemoveVolumes: c.Bool("volumes"), RemoveOrphans: true, RemoveImages: rmi}, opts,
				func(pl *planner.Plan) error {
					if pl.Empty() {
						prog.line(fmt.Sprintf("nothing to remove for project %s", p.name))
					}
					return nil
				})
			return err
		},
	}
}
