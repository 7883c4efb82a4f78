package main

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/stackrun/stack/engine"
	"github.com/stackrun/stack/network"
	"github.com/stackrun/stack/spec"
)

func networkCommand() *cli.Command {
	projectFlag := &cli.StringFlag{Name: "project", Usage: "only networks of this project"}
	return &cli.Command{
		Name:        "network",
		Usage:       "manage networks (ls, inspect, create, rm, prune)",
		Description: "Examples:\n   stack network ls\n   stack network inspect shop_default\n   stack network prune",
		Subcommands: []*cli.Command{
			{
				Name:    "ls",
				Aliases: []string{"list"},
				Usage:   "list networks",
				Flags: []cli.Flag{
					projectFlag,
					&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "only names"},
					&cli.StringFlag{Name: "format", Value: "table", Usage: "table or json"},
				},
				Action: networkLs,
			},
			{
				Name:      "inspect",
				Usage:     "show network records (bridge, subnet, attachments) as JSON",
				ArgsUsage: "NETWORK...",
				Action:    networkInspect,
			},
			{
				Name:      "create",
				Usage:     "create a network outside any project (e.g. one a stack file declares external)",
				ArgsUsage: "NETWORK",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "subnet", Usage: "IPv4 CIDR (default: a free /24 of 10.89.0.0/16 or 172.28.0.0/14)"},
					&cli.StringFlag{Name: "gateway", Usage: "gateway address (default: the first address of the subnet)"},
					&cli.BoolFlag{Name: "internal", Usage: "no traffic in or out of the network"},
					&cli.StringSliceFlag{Name: "label", Aliases: []string{"l"}, Usage: "label KEY=VALUE"},
				},
				Action: networkCreate,
			},
			{
				Name:      "rm",
				Aliases:   []string{"remove"},
				Usage:     "remove networks no container is attached to",
				ArgsUsage: "NETWORK...",
				Action:    networkRm,
			},
			{
				Name:  "prune",
				Usage: "remove every network no container is attached to",
				Flags: []cli.Flag{
					projectFlag,
					&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "do not ask for confirmation"},
				},
				Action: networkPrune,
			},
		},
	}
}

func openNetworks(c *cli.Context) *network.Manager {
	log := slog.New(slog.NewTextHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return network.New(filepath.Join(c.String("root"), network.Dir), log)
}

func networkLs(c *cli.Context) error {
	all, err := openNetworks(c).List()
	if err != nil {
		return err
	}
	if p := c.String("project"); p != "" {
		all = slices.DeleteFunc(all, func(n *network.Network) bool { return n.Project != p })
	}
	w := c.App.Writer
	switch {
	case c.Bool("quiet"):
		for _, n := range all {
			fmt.Fprintln(w, n.Name)
		}
		return nil
	case c.String("format") == "json":
		if all == nil {
			all = []*network.Network{}
		}
		return writeJSON(c, all)
	case c.String("format") != "table":
		return usageError{fmt.Errorf("network ls: unknown --format %q (table or json)", c.String("format"))}
	}
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPROJECT\tBRIDGE\tSUBNET\tGATEWAY\tINTERNAL\tCONTAINERS")
	for _, n := range all {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%v\t%d\n", n.Name, n.Project, n.Bridge, n.Subnet, n.Gateway, n.Internal, len(n.Attachments))
	}
	return tw.Flush()
}

func networkInspect(c *cli.Context) error {
	if c.NArg() == 0 {
		return usageError{errors.New("network inspect: name at least one network")}
	}
	m := openNetworks(c)
	out := []*network.Network{}
	var errs []error
	for _, name := range c.Args().Slice() {
		n, err := m.Inspect(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, n)
	}
	if err := writeJSON(c, out); err != nil {
		return err
	}
	return errors.Join(errs...)
}

func networkCreate(c *cli.Context) error {
	if c.NArg() != 1 {
		return usageError{errors.New("network create: name exactly one network")}
	}
	labels := map[string]string{}
	for _, l := range c.StringSlice("label") {
		k, v, _ := strings.Cut(l, "=")
		if k == "" {
			return usageError{fmt.Errorf("network create: label %q: want KEY=VALUE", l)}
		}
		labels[k] = v
	}
	n, err := openNetworks(c).EnsureNetwork(c.Context, network.Spec{Name: c.Args().First(),
		Subnet: c.String("subnet"), Gateway: c.String("gateway"), Internal: c.Bool("internal"), Labels: labels})
	if err != nil {
		return err
	}
	fmt.Fprintln(c.App.Writer, n.Name)
	return nil
}

func networkRm(c *cli.Context) error {
	if c.NArg() == 0 {
		return usageError{errors.New("network rm: name at least one network")}
	}
	m := openNetworks(c)
	var errs []error
	for _, name := range c.Args().Slice() {
		if _, err := m.Inspect(name); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := m.RemoveNetwork(c.Context, name); err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintln(c.App.Writer, name)
	}
	return errors.Join(errs...)
}

func networkPrune(c *cli.Context) error {
	project := c.String("project")
	if !c.Bool("force") {
		what := "all networks no container is attached to"
		if project != "" {
			what = "all networks of project " + project + " no container is attached to"
		}
		fmt.Fprintf(c.App.Writer, "This removes %s. Continue? [y/N] ", what)
		line, _ := bufio.NewReader(c.App.Reader).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
			fmt.Fprintln(c.App.Writer)
			return errors.New("network prune: not confirmed (use --force to skip the question)")
		}
	}
	m := openNetworks(c)
	all, err := m.List()
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range all {
		if len(n.Attachments) > 0 || (project != "" && n.Project != project) {
			continue
		}
		if err := m.RemoveNetwork(c.Context, n.Name); err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintln(c.App.Writer, n.Name)
	}
	return errors.Join(errs...)
}

func portCommand() *cli.Command {
	return &cli.Command{
		Name:        "port",
		Usage:       "print the host address a container port of a service is published on",
		Description: "Examples:\n   stack port web 80\n   stack port --protocol udp --index 2 dns 53",
		ArgsUsage:   "SERVICE PRIVATE_PORT",
		Flags: append(stackFileFlags(false),
			&cli.StringFlag{Name: "protocol", Value: "tcp", Usage: "tcp or udp"},
			&cli.IntFlag{Name: "index", Value: 1, Usage: "replica number of the service's container"},
		),
		Action: runPort,
	}
}

func runPort(c *cli.Context) error {
	if c.NArg() != 2 {
		return usageError{errors.New("port: want SERVICE PRIVATE_PORT")}
	}
	service := c.Args().Get(0)
	private, err := strconv.ParseUint(c.Args().Get(1), 10, 16)
	if err != nil {
		return usageError{fmt.Errorf("port: private port %q: %w", c.Args().Get(1), err)}
	}
	project := c.String("project-name")
	if project == "" {
		st, err := spec.Load(c.Context, loadOptions(c))
		if err != nil {
			return stackFileError(err)
		}
		project = st.Name
	}
	m := openNetworks(c)
	all, err := m.List()
	if err != nil {
		return err
	}
	id := containerOf(all, project, service, c.Int("index"))
	if id == "" {
		return fmt.Errorf("port: no container %d of service %s in project %s is attached to a network", c.Int("index"), service, project)
	}
	bs, err := m.Bindings(id)
	if err != nil {
		return err
	}
	for _, b := range bs {
		if b.ContainerPort == uint16(private) && b.Protocol == c.String("protocol") {
			host := "0.0.0.0"
			if b.HostIP.IsValid() {
				host = b.HostIP.String()
			}
			fmt.Fprintf(c.App.Writer, "%s:%d\n", host, b.HostPort)
			return nil
		}
	}
	return fmt.Errorf("port: %d/%s of service %s is not published", private, c.String("protocol"), service)
}

// containerOf finds the container of a project's service replica: by the engine's labels on
// its attachments when they are recorded, else by the network's project, the service name (the
// first alias) and the container name's "-<number>" suffix.
func containerOf(all []*network.Network, project, service string, number int) string {
	var ids []string
	for _, n := range all {
		for id, a := range n.Attachments {
			if a.Labels != nil {
				if a.Labels[engine.LabelProject] == project && a.Labels[engine.LabelService] == service &&
					a.Labels[engine.LabelNumber] == strconv.Itoa(number) {
					ids = append(ids, id)
				}
				continue
			}
			if n.Project == project && len(a.Aliases) > 0 && a.Aliases[0] == service &&
				strings.HasSuffix(a.Name, "-"+strconv.Itoa(number)) {
				ids = append(ids, id)
			}
		}
	}
	slices.Sort(ids)
	if len(ids) == 0 {
		return ""
	}
	return ids[0]
}
