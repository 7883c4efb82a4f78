package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/stackrun/stack/volumes"
)

func volumeCommand() *cli.Command {
	projectFlag := &cli.StringFlag{Name: "project", Usage: "only volumes of this project"}
	return &cli.Command{
		Name:  "volume",
		Usage: "manage volumes (ls, inspect, rm, prune, create)",
		Subcommands: []*cli.Command{
			{
				Name:    "ls",
				Aliases: []string{"list"},
				Usage:   "list volumes",
				Flags: []cli.Flag{
					projectFlag,
					&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "only names"},
					&cli.StringFlag{Name: "format", Value: "table", Usage: "table or json"},
				},
				Action: volumeLs,
			},
			{
				Name:      "inspect",
				Usage:     "show volume records as JSON",
				ArgsUsage: "VOLUME...",
				Action:    volumeInspect,
			},
			{
				Name:      "rm",
				Aliases:   []string{"remove"},
				Usage:     "remove volumes and their data; refuses volumes in use",
				ArgsUsage: "VOLUME...",
				Flags: []cli.Flag{
					&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "also remove volumes recorded as in use (their containers must be gone); missing volumes are no error"},
				},
				Action: volumeRm,
			},
			{
				Name:  "prune",
				Usage: "remove anonymous volumes not in use (with --all, named ones too)",
				Flags: []cli.Flag{
					projectFlag,
					&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "also named volumes: the data of every stack that is down"},
					&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "do not ask for confirmation"},
				},
				Action: volumePrune,
			},
			{
				Name:      "create",
				Usage:     "create a volume (e.g. one a stack file declares external)",
				ArgsUsage: "[VOLUME]",
				Flags: []cli.Flag{
					&cli.StringSliceFlag{Name: "label", Aliases: []string{"l"}, Usage: "label KEY=VALUE"},
				},
				Action: volumeCreate,
			},
		},
	}
}

func openVolumes(c *cli.Context) (*volumes.Store, error) {
	return volumes.Open(filepath.Join(c.String("root"), volumes.Dir))
}

func volumeLs(c *cli.Context) error {
	s, err := openVolumes(c)
	if err != nil {
		return err
	}
	all, err := s.List()
	if err != nil {
		return err
	}
	project := c.String("project")
	vols := all[:0]
	for _, v := range all {
		if project == "" || v.Project == project {
			vols = append(vols, v)
		}
	}
	w := c.App.Writer
	switch {
	case c.Bool("quiet"):
		for _, v := range vols {
			fmt.Fprintln(w, v.Name)
		}
		return nil
	case c.String("format") == "json":
		if vols == nil {
			vols = []*volumes.Volume{}
		}
		return writeJSON(c, vols)
	case c.String("format") != "table":
		return usageError{fmt.Errorf("volume ls: unknown --format %q (table or json)", c.String("format"))}
	}
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "NAME\tDRIVER\tPROJECT\tUSERS\tCREATED")
	for _, v := range vols {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", v.Name, v.Driver, v.Project, len(v.Users), v.Created.Format("2006-01-02 15:04:05"))
	}
	return tw.Flush()
}

func writeJSON(c *cli.Context, v any) error {
	enc := json.NewEncoder(c.App.Writer)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func volumeInspect(c *cli.Context) error {
	if c.NArg() == 0 {
		return usageError{errors.New("volume inspect: name at least one volume")}
	}
	s, err := openVolumes(c)
	if err != nil {
		return err
	}
	out := []*volumes.Volume{}
	var errs []error
	for _, name := range c.Args().Slice() {
		v, err := s.Inspect(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, v)
	}
	if err := writeJSON(c, out); err != nil {
		return err
	}
	return errors.Join(errs...)
}

func volumeRm(c *cli.Context) error {
	if c.NArg() == 0 {
		return usageError{errors.New("volume rm: name at least one volume")}
	}
	s, err := openVolumes(c)
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range c.Args().Slice() {
		if err := s.Remove(name, c.Bool("force")); err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintln(c.App.Writer, name)
	}
	return errors.Join(errs...)
}

func volumePrune(c *cli.Context) error {
	s, err := openVolumes(c)
	if err != nil {
		return err
	}
	project, all := c.String("project"), c.Bool("all")
	if !c.Bool("force") {
		what := "anonymous volumes"
		if all {
			what = "volumes, named ones included,"
		}
		if project != "" {
			what += " of project " + project
		}
		fmt.Fprintf(c.App.Writer, "This removes all %s not used by a container, with their data. Continue? [y/N] ", what)
		line, _ := bufio.NewReader(c.App.Reader).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
			fmt.Fprintln(c.App.Writer)
			return errors.New("volume prune: not confirmed (use --force to skip the question)")
		}
	}
	// Named volumes hold the data of stacks that are down; like Docker, prune leaves them unless
	// asked.
	removed, err := s.Prune(func(v *volumes.Volume) bool {
		return (all || v.Anonymous) && (project == "" || v.Project == project)
	})
	for _, name := range removed {
		fmt.Fprintln(c.App.Writer, name)
	}
	return err
}

func volumeCreate(c *cli.Context) error {
	if c.NArg() > 1 {
		return usageError{errors.New("volume create: at most one name")}
	}
	labels := map[string]string{}
	for _, l := range c.StringSlice("label") {
		k, v, _ := strings.Cut(l, "=")
		if k == "" {
			return usageError{fmt.Errorf("volume create: label %q: want KEY=VALUE", l)}
		}
		labels[k] = v
	}
	name := c.Args().First()
	if name == "" {
		var err error
		if name, err = volumes.RandomName(); err != nil {
			return err
		}
	}
	s, err := openVolumes(c)
	if err != nil {
		return err
	}
	v, err := s.Ensure(c.Context, volumes.Spec{Name: name, Labels: labels})
	if err != nil {
		return err
	}
	fmt.Fprintln(c.App.Writer, v.Name)
	return nil
}
