package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/stackrun/stack/engine"
	"github.com/stackrun/stack/engine/local"
	"github.com/stackrun/stack/planner"
	"github.com/stackrun/stack/runtime"
	"github.com/stackrun/stack/runtime/monitor"
	"github.com/stackrun/stack/runtime/monitor/logfile"
	"github.com/stackrun/stack/spec"
)

func runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "run a one-off command in a new container of a service",
		ArgsUsage: "SERVICE [COMMAND [ARG...]]",
		Description: `The container has the service's image, networks, volumes and environment, no published
ports and no restart policy; it is labelled one-off (io.stackrun.oneoff), so plan and up never
count it as a replica or an orphan. Dependencies are brought up first unless --no-deps.
In the foreground its output is streamed and its exit code becomes stack's; ^C stops it.
With --detach it runs supervised like any container and its name is printed.

Examples:
   stack run --rm web env
   stack run --rm -e DEBUG=1 --entrypoint /bin/sh api -c 'echo $DEBUG'
   stack run -d --name maint worker sleep 600`,
		Flags: append(stackFileFlags(false),
			&cli.BoolFlag{Name: "rm", Usage: "remove the container when it exits"},
			&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "run in the background and print the container name"},
			&cli.StringSliceFlag{Name: "env", Aliases: []string{"e"}, Usage: "KEY=VALUE added to the environment (KEY alone: from stack's environment)"},
			&cli.BoolFlag{Name: "no-deps", Usage: "do not start the services it depends on"},
			&cli.StringFlag{Name: "entrypoint", Usage: "override the entrypoint (split on spaces)"},
			&cli.StringFlag{Name: "name", Usage: "container name (default <project>-<service>-run-<id>)"},
			&cli.StringFlag{Name: "workdir", Aliases: []string{"w"}, Usage: "working directory inside the container"},
			&cli.StringFlag{Name: "user", Aliases: []string{"u"}, Usage: "user (name or uid[:gid])"},
			&cli.StringSliceFlag{Name: "volume", Aliases: []string{"v"}, Usage: "extra mount SOURCE:TARGET[:ro] (an absolute host path, or a volume of the file)"},
			&cli.BoolFlag{Name: "no-tty", Aliases: []string{"T"}, Usage: "do not attach a terminal even when stdin is one"},
		),
		Action: runRun,
	}
}

func runRun(c *cli.Context) error {
	if c.NArg() < 1 {
		return usageError{errors.New("run: want SERVICE [COMMAND...]")}
	}
	if c.Bool("rm") && c.Bool("detach") {
		return usageError{errors.New("run: --rm and --detach exclude each other")}
	}
	p, err := openProject(c, true)
	if err != nil {
		return err
	}
	name := c.Args().First()
	base := p.stack.Services[name]
	if base == nil {
		return fmt.Errorf("run: no service %q in project %s: %w", name, p.name, engine.ErrNotFound)
	}
	s, err := oneOffService(p.stack, base, c)
	if err != nil {
		return err
	}
	ctx := c.Context
	if !c.Bool("no-deps") && len(s.DependsOn) > 0 {
		deps := make([]string, 0, len(s.DependsOn))
		for d := range s.DependsOn {
			deps = append(deps, d)
		}
		sort.Strings(deps)
		if _, err := p.eng.Converge(ctx, p.stack, planner.Options{Services: deps}, engine.ApplyOptions{}, nil); err != nil {
			return fmt.Errorf("run: start dependencies %v: %w", deps, err)
		}
	}
	rec, err := p.eng.CreateOneOff(ctx, engine.OneOff{Stack: p.stack, Service: s, Name: c.String("name")})
	if err != nil {
		return err
	}
	var code int
	if !c.Bool("detach") && !c.Bool("no-tty") && isTerminal(os.Stdin) {
		code, err = runWithTerminal(ctx, p, rec)
		if err = errors.Join(err, removeIf(c.Bool("rm"), p, rec)); err != nil {
			return err
		}
		if code != 0 {
			return statusError(code)
		}
		return nil
	}
	cs := local.Containers{Host: p.host}
	if err := cs.Start(ctx, rec.ID); err != nil {
		return errors.Join(fmt.Errorf("run: start %s: %w", rec.Name, err), removeIf(c.Bool("rm"), p, rec))
	}
	if c.Bool("detach") {
		fmt.Fprintln(c.App.Writer, rec.Name)
		return nil
	}
	code, err = attachOneOff(ctx, p, rec, c.App.Writer, c.App.ErrWriter)
	err = errors.Join(err, removeIf(c.Bool("rm"), p, rec))
	if err != nil {
		return err
	}
	if code != 0 {
		return statusError(code)
	}
	return nil
}

// oneOffService is base with run's overrides: command, entrypoint, environment, workdir,
// user; no published ports, no restart policy, a fresh hash.
func oneOffService(stack *spec.Stack, base *spec.Service, c *cli.Context) (*spec.Service, error) {
	s := *base
	s.Ports = nil
	s.Restart = spec.RestartPolicy{}
	s.ContainerName = ""
	s.Environment = maps.Clone(base.Environment)
	if s.Environment == nil {
		s.Environment = map[string]string{}
	}
	for _, kv := range c.StringSlice("env") {
		k, v, ok := strings.Cut(kv, "=")
		if k == "" {
			return nil, usageError{fmt.Errorf("run: -e %q: want KEY=VALUE", kv)}
		}
		if !ok {
			v = os.Getenv(k)
		}
		s.Environment[k] = v
	}
	if args := c.Args().Slice()[1:]; len(args) > 0 {
		s.Command = args
	}
	if c.IsSet("entrypoint") {
		s.Entrypoint = strings.Fields(c.String("entrypoint"))
		if len(c.Args().Slice()) == 1 {
			s.Command = []string{} // as docker: a new entrypoint drops the old command
		}
	}
	if w := c.String("workdir"); w != "" {
		s.WorkingDir = w
	}
	if u := c.String("user"); u != "" {
		s.User = u
	}
	for _, v := range c.StringSlice("volume") {
		parts := strings.Split(v, ":")
		if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || !strings.HasPrefix(parts[1], "/") || (len(parts) == 3 && parts[2] != "ro" && parts[2] != "rw") {
			return nil, usageError{fmt.Errorf("run: -v %q: want SOURCE:TARGET[:ro]", v)}
		}
		m := spec.Mount{Type: spec.MountVolume, Source: parts[0], Target: parts[1], ReadOnly: len(parts) == 3 && parts[2] == "ro"}
		if strings.HasPrefix(parts[0], "/") || strings.HasPrefix(parts[0], ".") {
			abs, err := filepath.Abs(parts[0])
			if err != nil {
				return nil, err
			}
			m.Type, m.Source, m.CreateHostPath = spec.MountBind, abs, true
		} else if stack.Volumes[parts[0]] == nil {
			return nil, usageError{fmt.Errorf("run: -v %q: no volume %q in the stack file", v, parts[0])}
		}
		s.Mounts = append(append([]spec.Mount(nil), s.Mounts...), m)
	}
	s.Hash = spec.Hash(&s)
	return &s, nil
}

// attachOneOff streams the container's output until it is down for good and returns its exit
// code; an interrupt stops the container first.
func attachOneOff(ctx context.Context, p *project, rec *engine.Record, stdout, stderr io.Writer) (int, error) {
	sigCtx, stop := signal.NotifyContext(ctx, os.Interrupt, unix.SIGTERM)
	defer stop()
	sd, rd := p.host.MonitorDirs(rec.ID)
	go func() {
		<-sigCtx.Done()
		if ctx.Err() == nil {
			_ = local.Containers{Host: p.host}.Stop(context.WithoutCancel(ctx), rec.ID, 10*time.Second)
		}
	}()
	err := monitor.ReadLogs(ctx, p.host.LogPath(rec.ID), monitor.LogOptions{Follow: true, StateDir: sd, RunDir: rd},
		func(e logfile.Entry) error {
			w := stdout
			if e.Stream == "stderr" {
				w = stderr
			}
			_, err := io.WriteString(w, monitor.FormatLine(e, false))
			return err
		})
	if err != nil {
		return 0, fmt.Errorf("run: read output of %s: %w", rec.Name, err)
	}
	st, err := p.host.Status(rec.ID)
	if err != nil {
		return 0, fmt.Errorf("run: status of %s: %w", rec.Name, err)
	}
	return st.ExitCode, nil
}

func removeIf(rm bool, p *project, rec *engine.Record) error {
	if !rm {
		return nil
	}
	ctx := context.Background()
	if err := (local.Containers{Host: p.host}).Stop(ctx, rec.ID, 10*time.Second); err != nil {
		return err
	}
	return p.eng.RemoveOneOff(ctx, rec)
}

// runWithTerminal runs the created one-off in the foreground on a new pty joined to this
// terminal, as its parent (no monitor: it is an interactive session, not a supervised
// container), and returns its exit code. The runtime record is deleted afterwards.
func runWithTerminal(ctx context.Context, p *project, rec *engine.Record) (int, error) {
	rt := p.host.ContainerRuntime(rec.ID)
	ctr, err := rt.Create(ctx, rec.ID, p.host.ContainerDir(rec.ID), runtime.IO{Terminal: true})
	if err != nil {
		return 0, fmt.Errorf("run: create %s: %w", rec.Name, err)
	}
	restore := attachConsole(ctr.Console)
	ex, err := func() (runtime.ExitStatus, error) {
		if err := rt.Start(ctx, rec.ID); err != nil {
			return runtime.ExitStatus{}, err
		}
		return ctr.Wait()
	}()
	restore()
	if ctr.Console != nil {
		ctr.Console.Close()
	}
	err = errors.Join(err, rt.Delete(context.WithoutCancel(ctx), rec.ID, true))
	if err != nil {
		return 0, fmt.Errorf("run %s: %w", rec.Name, err)
	}
	return ex.Code, nil
}
