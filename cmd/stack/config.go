package main

import (
	"github.com/urfave/cli/v2"

	"github.com/stackrun/stack/spec"
)

func configCommand() *cli.Command {
	return &cli.Command{
		Name:  "config",
		Usage: "validate the stack file and print it fully resolved",
		Action: func(c *cli.Context) error {
			p, err := spec.LoadProject(c.Context, loadOptions(c))
			if err != nil {
				return err
			}
			out, err := p.MarshalYAML()
			if err != nil {
				return err
			}
			_, err = c.App.Writer.Write(out)
			return err
		},
	}
}
