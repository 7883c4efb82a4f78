package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/stackrun/stack/engine"
	"github.com/stackrun/stack/engine/local"
)

func inspectCommand() *cli.Command {
	return &cli.Command{
		Name:      "inspect",
		Usage:     "print everything stack knows about containers, as JSON",
		ArgsUsage: "CONTAINER|SERVICE...",
		Description: `Each argument is a container name, a container id (or a unique prefix of at least 4
characters) or a service name (all its containers). The output is a JSON array of objects
(engine/local.ContainerInfo, version 1): config (the resolved service), state, process,
mounts, networks with addresses, published ports, cgroup paths, monitor pid, log path, bundle,
rootfs and upper dir.

Examples:
   stack inspect web
   stack inspect myapp-web-1 | jq '.[0].networks'`,
		Flags: stackFileFlags(false),
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return usageError{errors.New("inspect: want CONTAINER or SERVICE")}
			}
			p, err := openProject(c, false)
			if err != nil {
				return err
			}
			recs, err := findContainers(p, c.Args().Slice())
			if err != nil {
				return err
			}
			out := make([]*local.ContainerInfo, 0, len(recs))
			for _, r := range recs {
				ci, err := p.host.Inspect(c.Context, r)
				if err != nil {
					return fmt.Errorf("inspect %s: %w", r.Name, err)
				}
				out = append(out, ci)
			}
			enc := json.NewEncoder(c.App.Writer)
			enc.SetIndent("", "  ")
			return enc.Encode(out)
		},
	}
}

// findContainers resolves each argument to the records it names: a container name, an id or
// id prefix (4+ characters, unique), or a service (all its containers, one-offs included).
func findContainers(p *project, args []string) ([]*engine.Record, error) {
	recs, err := p.eng.Records()
	if err != nil {
		return nil, err
	}
	var out []*engine.Record
	seen := map[string]bool{}
	add := func(r *engine.Record) {
		if !seen[r.ID] {
			seen[r.ID] = true
			out = append(out, r)
		}
	}
	for _, a := range args {
		var match []*engine.Record
		for _, r := range recs {
			if r.Name == a || r.ID == a || r.Service == a {
				match = append(match, r)
			}
		}
		if len(match) == 0 && len(a) >= 4 {
			for _, r := range recs {
				if strings.HasPrefix(r.ID, a) {
					match = append(match, r)
				}
			}
			if len(match) > 1 {
				return nil, usageError{fmt.Errorf("container id prefix %q is ambiguous in project %s", a, p.name)}
			}
		}
		if len(match) == 0 {
			return nil, fmt.Errorf("no container or service %q in project %s: %w", a, p.name, engine.ErrNotFound)
		}
		for _, r := range match {
			add(r)
		}
	}
	return out, nil
}
