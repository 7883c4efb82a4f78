package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/stackrun/stack/image"
)

// withRegistryCommands adds `stack image push` and `stack image search` to the image command.
func withRegistryCommands(img *cli.Command) *cli.Command {
	img.Subcommands = append(img.Subcommands, &cli.Command{
		Name: "push", Usage: "push an image to its registry; blobs the registry has are not sent again", ArgsUsage: "REF",
		Flags: []cli.Flag{insecureFlag, &cli.StringFlag{Name: "format", Usage: "text or json", Value: "text"}},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usageError{errors.New("image push takes exactly one reference")}
			}
			s, err := openImages(c)
			if err != nil {
				return err
			}
			return pushImages(c, s, []string{c.Args().First()})
		},
	}, &cli.Command{
		Name: "search", Usage: "list a registry's repositories whose name contains TERM, with their tags", ArgsUsage: "[TERM]",
		Description: "Uses the registry's catalog API (GET /v2/_catalog); registries that do not offer it answer with an error.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "registry", Usage: "registry host[:port]", Required: true},
			insecureFlag, &cli.StringFlag{Name: "format", Usage: "table or json", Value: "table"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 1 {
				return usageError{errors.New("image search takes at most one term")}
			}
			res, err := image.Search(c.Context, c.String("registry"), c.Args().First(), c.StringSlice("insecure-registry"), nil)
			if err != nil {
				return err
			}
			if c.String("format") == "json" {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			tw := tabwriter.NewWriter(c.App.Writer, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tTAGS")
			for _, r := range res {
				fmt.Fprintf(tw, "%s\t%s\n", r.Name, strings.Join(r.Tags, ", "))
			}
			return tw.Flush()
		},
	})
	return img
}

func pushCommand() *cli.Command {
	return &cli.Command{
		Name:      "push",
		Usage:     "push the images of services to their registries",
		ArgsUsage: "[SERVICE...]",
		Description: `Pushes each named service's image (all services when none) under its image: name.
Registries on localhost are reached over plain HTTP; others need --insecure-registry for that.
Credentials come from the docker config (~/.docker/config.json, credential helpers).

Examples:
   stack push
   stack push web --insecure-registry registry.lan:5000`,
		Flags: append(stackFileFlags(false), insecureFlag, &cli.StringFlag{Name: "format", Usage: "text or json", Value: "text"}),
		Action: func(c *cli.Context) error {
			p, err := openProject(c, true)
			if err != nil {
				return err
			}
			names := c.Args().Slice()
			if len(names) == 0 {
				for n := range p.stack.Services {
					names = append(names, n)
				}
				sort.Strings(names)
			}
			var refs []string
			seen := map[string]bool{}
			for _, n := range names {
				s := p.stack.Services[n]
				if s == nil {
					return fmt.Errorf("push: no service %q in project %s", n, p.name)
				}
				if s.Image != "" && !seen[s.Image] {
					seen[s.Image] = true
					refs = append(refs, s.Image)
				}
			}
			return pushImages(c, p.host.Images, refs)
		},
	}
}

func pushImages(c *cli.Context, s *image.Store, refs []string) error {
	var errs []error
	for _, ref := range refs {
		rep, err := s.Push(c.Context, ref, image.PushOptions{Insecure: c.StringSlice("insecure-registry")})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if c.String("format") == "json" {
			b, _ := json.Marshal(rep)
			fmt.Fprintln(c.App.Writer, string(b))
			continue
		}
		fmt.Fprintf(c.App.Writer, "pushed %s@%s (%d blobs uploaded)\n", rep.Ref, rep.ManifestDigest, len(rep.Uploaded))
	}
	return errors.Join(errs...)
}
