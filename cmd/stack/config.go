package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/stackrun/stack/spec"
)

func configCommand() *cli.Command {
	return &cli.Command{
		Name:  "config",
		Usage: "validate the stack file and print it fully resolved",
		Description: "Prints the merged, interpolated and normalized stack file (like `docker compose config`),\n" +
			"or every problem in it with file:line:col. Exit code 0: valid, 1: invalid, 2: usage.",
		Flags: append(stackFileFlags(false),
			&cli.StringFlag{Name: "format", Value: "yaml", Usage: "output format: yaml or json"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "only validate, print nothing"},
			&cli.BoolFlag{Name: "services", Usage: "print the service names, one per line"},
			&cli.BoolFlag{Name: "volumes", Usage: "print the volume names, one per line"},
			&cli.StringFlag{Name: "hash", Usage: "print the config hash of services (comma-separated names, or \"*\")"},
			&cli.BoolFlag{Name: "supported-keys", Usage: "print which Compose keys stack supports, as a Markdown table"},
		),
		Action: runConfig,
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return usageError{err}
		},
	}
}

func runConfig(c *cli.Context) error {
	w := c.App.Writer
	if c.Bool("supported-keys") {
		resp, err := askLoader(c.Context, spec.LoaderRequest{Op: spec.LoaderOpSupportedKeys})
		if err != nil {
			return err
		}
		_, err = w.Write(resp.Output)
		return err
	}
	format := c.String("format")
	if format != "yaml" && format != "json" {
		return usageError{fmt.Errorf("--format %q: must be yaml or json", format)}
	}
	printing := !c.Bool("quiet") && !c.Bool("services") && !c.Bool("volumes") && !c.IsSet("hash")
	op := spec.LoaderOpLoad
	if printing {
		op = spec.LoaderOpProject
	}
	resp, err := askLoader(c.Context, spec.LoaderRequest{Op: op, Options: loadOptions(c), Format: format})
	if err != nil {
		return stackFileError(err)
	}
	if resp.Loaded == nil || resp.Loaded.Stack == nil {
		return fmt.Errorf("stack-load answered without a stack")
	}
	st := resp.Loaded.Stack
	for _, warn := range st.Warnings {
		fmt.Fprintf(c.App.ErrWriter, "warning: %s\n", warn)
	}
	switch {
	case c.Bool("quiet"):
		return nil
	case c.Bool("services"):
		for _, name := range st.ServiceNames() {
			fmt.Fprintln(w, name)
		}
		return nil
	case c.Bool("volumes"):
		for _, name := range sortedNames(st.Volumes) {
			fmt.Fprintln(w, name)
		}
		return nil
	case c.IsSet("hash"):
		names := strings.Split(c.String("hash"), ",")
		if c.String("hash") == "*" {
			names = st.ServiceNames()
		}
		for _, name := range names {
			svc, ok := st.Services[strings.TrimSpace(name)]
			if !ok {
				return fmt.Errorf("config --hash: no service %q in the stack", name)
			}
			fmt.Fprintf(w, "%s %s\n", svc.Name, svc.Hash)
		}
		return nil
	}
	out := resp.Output
	if _, err := w.Write(out); err != nil {
		return err
	}
	if format == "json" && len(out) > 0 && out[len(out)-1] != '\n' {
		_, err = io.WriteString(w, "\n")
	}
	return err
}

// stackFileError prefixes the list of problems of an invalid stack file so that each problem
// starts its own line (file:line:col first, as editors and CI annotations expect).
func stackFileError(err error) error {
	var ps spec.Problems
	if errors.As(err, &ps) {
		noun := "problem"
		if len(ps) > 1 {
			noun = "problems"
		}
		return fmt.Errorf("invalid stack file, %d %s:\n%w", len(ps), noun, err)
	}
	return err
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
