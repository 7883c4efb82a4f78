package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v2"

	"github.com/stackrun/stack/image"
	"github.com/stackrun/stack/runtime"
)

func execCommand() *cli.Command {
	return &cli.Command{
		Name:      "exec",
		Usage:     "run a command inside a running container of a service; its exit code is passed through",
		ArgsUsage: "SERVICE COMMAND [ARG...]",
		Description: `Examples:
   stack exec web ps
   stack exec -it db sh
   stack exec -u nobody -w /tmp -e DEBUG=1 --index 2 worker env`,
		Flags: append(stackFileFlags(false),
			&cli.BoolFlag{Name: "interactive", Aliases: []string{"i"}, Usage: "keep stdin open (always on; accepted for Compose compatibility)"},
			&cli.BoolFlag{Name: "tty", Aliases: []string{"t"}, Usage: "allocate a pseudo-terminal"},
			&cli.StringFlag{Name: "user", Aliases: []string{"u"}, Usage: "user (name or uid[:gid], resolved in the container)"},
			&cli.StringFlag{Name: "workdir", Aliases: []string{"w"}, Usage: "working directory inside the container"},
			&cli.StringSliceFlag{Name: "env", Aliases: []string{"e"}, Usage: "KEY=VALUE added to the environment"},
			&cli.IntFlag{Name: "index", Usage: "which replica of the service", Value: 1},
		),
		Action: runExec,
	}
}

func runExec(c *cli.Context) error {
	if c.NArg() < 2 {
		return usageError{errors.New("exec: want SERVICE COMMAND [ARG...]")}
	}
	service := c.Args().First()
	p, err := openProject(c, false)
	if err != nil {
		return err
	}
	recs, err := selectRecords(p, []string{service})
	if err != nil {
		return err
	}
	var id, name string
	for _, r := range recs {
		if r.Number == c.Int("index") {
			id, name = r.ID, r.Name
		}
	}
	if id == "" {
		return fmt.Errorf("service %s has no container number %d", service, c.Int("index"))
	}
	rt := p.host.ContainerRuntime(id)
	st, err := rt.State(c.Context, id)
	if err != nil {
		return fmt.Errorf("exec in %s: the container is not running (%w)", name, err)
	}
	cfg, _, err := runtime.LoadBundle(st.Bundle)
	if err != nil {
		return err
	}
	proc := *cfg.Process
	proc.Args = c.Args().Slice()[1:]
	proc.Terminal = false
	proc.Env = append(append([]string(nil), proc.Env...), c.StringSlice("env")...)
	if w := c.String("workdir"); w != "" {
		proc.Cwd = w
	}
	if u := c.String("user"); u != "" {
		usr, err := image.ResolveUser(filepath.Join(st.Bundle, cfg.Root.Path), u)
		if err != nil {
			return fmt.Errorf("exec in %s: --user: %w", name, err)
		}
		proc.User = specs.User{UID: usr.UID, GID: usr.GID, AdditionalGids: usr.AdditionalGids}
	}
	stdio := runtime.IO{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	var restore func()
	if c.Bool("tty") {
		master, slave, err := runtime.OpenPty(nil)
		if err != nil {
			return err
		}
		defer master.Close()
		defer slave.Close()
		stdio = runtime.IO{Stdin: slave, Stdout: slave, Stderr: slave, Terminal: true}
		restore = attachConsole(master)
	}
	code, err := rt.Exec(c.Context, id, &proc, stdio)
	if restore != nil {
		slave := stdio.Stdin
		slave.Close()
		restore()
	}
	if err != nil {
		return fmt.Errorf("exec in %s: %w", name, err)
	}
	if code != 0 {
		return statusError(code)
	}
	return nil
}
