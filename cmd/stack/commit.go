package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/stackrun/stack/image"
)

func commitCommand() *cli.Command {
	return &cli.Command{
		Name:      "commit",
		Usage:     "make an image from a container's changes",
		ArgsUsage: "SERVICE|CONTAINER REF",
		Description: `The container's own layer (every file it added, changed or removed, read from its overlay
upper directory) becomes one new layer on top of its image's layers, which are shared. The
image gets a history entry (-m) and the config changes of -c, Dockerfile style. Volumes are
not part of the container's layer. The new image's id is printed.

Examples:
   stack commit web myweb:patched -m "hotfix"
   stack commit -c 'CMD ["/app", "web"]' -c 'ENV MODE=debug' web myweb:debug`,
		Flags: append(stackFileFlags(false),
			&cli.StringFlag{Name: "message", Aliases: []string{"m"}, Usage: "commit message (history comment)"},
			&cli.StringFlag{Name: "author", Aliases: []string{"a"}, Usage: "author"},
			&cli.GenericFlag{Name: "change", Aliases: []string{"c"}, Value: &repeated{}, Usage: "Dockerfile instruction to apply (CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE, STOPSIGNAL)"},
			&cli.IntFlag{Name: "index", Usage: "which replica of the service", Value: 1},
		),
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return usageError{errors.New("commit: want SERVICE|CONTAINER REF")}
			}
			p, err := openProject(c, false)
			if err != nil {
				return err
			}
			rec, _, ok, err := containerPath(p, c.Args().First()+":/", c.Int("index"))
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("commit: no service or container %q in project %s", c.Args().First(), p.name)
			}
			base, err := p.host.ImageID(rec.ID)
			if err != nil {
				return fmt.Errorf("commit %s: its image: %w", rec.Name, err)
			}
			img, err := p.host.Images.Commit(c.Context, base, p.host.UpperDir(rec.ID), image.CommitOptions{
				Ref: c.Args().Get(1), Message: c.String("message"), Author: c.String("author"), Changes: *c.Generic("change").(*repeated),
				CreatedBy: "stack commit " + rec.Name,
			})
			if err != nil {
				return err
			}
			fmt.Fprintln(c.App.Writer, img.ID)
			return nil
		},
	}
}

// repeated collects every value of a repeated flag as given: unlike a string slice flag it
// does not split on commas, which Dockerfile instructions contain (CMD ["a", "b"]).
type repeated []string

func (r *repeated) Set(v string) error { *r = append(*r, v); return nil }
func (r *repeated) String() string     { return strings.Join(*r, "\n") }
