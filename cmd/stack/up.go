package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/stackrun/stack/engine"
	"github.com/stackrun/stack/network"
	"github.com/stackrun/stack/planner"
	"github.com/stackrun/stack/runtime/monitor"
)

func upCommand() *cli.Command {
	return &cli.Command{
		Name:      "up",
		Usage:     "create and start the stack's containers so the host matches the stack file",
		ArgsUsage: "[SERVICE...] | FILE",
		Description: `Computes the plan (what stack plan prints), prints it, and applies exactly it.
A second up with nothing changed does nothing.

up FILE, where FILE is a plan saved by stack plan -out (told by its content, not its name),
applies that plan as stack apply FILE does, attached unless -d; the options that change the
plan come from the file.

Examples:
   stack up -d                       # everything, in the background
   stack up -d --wait web            # web and what it needs, until healthy
   stack up -d --scale worker=3
   stack plan -out p.json; stack up -d p.json`,
		Flags: append(append(stackFileFlags(false), planFlags()...),
			&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "return once started instead of following the logs"},
			&cli.BoolFlag{Name: "wait", Usage: "wait until services are running and healthy (implies -d)"},
			&cli.DurationFlag{Name: "wait-timeout", Usage: "give up --wait after this long", Value: 0},
			&cli.BoolFlag{Name: "no-start", Usage: "create containers without starting them"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print nothing but errors"},
			&cli.StringFlag{Name: "progress", Usage: "progress output: plain or json", Value: "plain"},
			&cli.BoolFlag{Name: "no-wait-lock", Usage: "fail instead of waiting when another command works on the project"},
			&cli.StringFlag{Name: "runtime", Usage: "OCI runtime: builtin, runc, crun or a path", Value: "builtin"},
		),
		Action: runUp,
	}
}

// planFlags are the flags that change the plan, shared by up and plan so that plan shows
// exactly what up with the same flags does.
func planFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "remove-orphans", Usage: "remove containers of services no longer in the file"},
		&cli.BoolFlag{Name: "force-recreate", Usage: "recreate containers even if nothing changed"},
		&cli.BoolFlag{Name: "no-recreate", Usage: "never recreate existing containers"},
		&cli.BoolFlag{Name: "no-deps", Usage: "leave out the named services' dependencies"},
		&cli.StringSliceFlag{Name: "scale", Usage: "SERVICE=N replicas, overriding the file"},
		&cli.StringFlag{Name: "pull", Usage: "pull images: always, missing, never (default: the service's pull_policy)"},
		&cli.BoolFlag{Name: "build", Usage: "build images before starting"},
	}
}

func planOptions(c *cli.Context) (planner.Options, error) {
	o := planner.Options{
		Services: c.Args().Slice(), NoDeps: c.Bool("no-deps"), RemoveOrphans: c.Bool("remove-orphans"),
		ForceRecreate: c.Bool("force-recreate"), NoRecreate: c.Bool("no-recreate"), NoStart: c.Bool("no-start"),
		Build: c.Bool("build"), Pull: c.String("pull"),
	}
	if o.ForceRecreate && o.NoRecreate {
		return o, usageError{fmt.Errorf("--force-recreate and --no-recreate exclude each other")}
	}
	for _, s := range c.StringSlice("scale") {
		name, n, ok := strings.Cut(s, "=")
		v, err := strconv.Atoi(n)
		if !ok || err != nil || v < 0 {
			return o, usageError{fmt.Errorf("--scale %q: want SERVICE=N", s)}
		}
		if o.Scale == nil {
			o.Scale = map[string]int{}
		}
		o.Scale[name] = v
	}
	return o, nil
}

func runUp(c *cli.Context) error {
	// up FILE: an argument that is a saved plan (told by its content) applies it.
	if c.NArg() > 0 && isSavedPlan(c.Args().First()) {
		if c.NArg() > 1 {
			return usageError{fmt.Errorf("up %s: a saved plan takes no service names (it names its own)", c.Args().First())}
		}
		return runSaved(c, c.Args().First(), c.Bool("detach"))
	}
	popts, err := planOptions(c)
	if err != nil {
		return err
	}
	p, err := openProject(c, true)
	if err != nil {
		return err
	}
	for _, s := range popts.Services {
		if p.stack.Services[s] == nil {
			return usageError{fmt.Errorf("no such service: %s%s", s, notAPlan(s))}
		}
	}
	ctx, stop, out, prog := hostSession(c)
	defer stop()
	_, err = p.eng.Converge(ctx, p.stack, popts, engine.ApplyOptions{
		OnEvent: prog.event, Lock: engine.LockOptions{NoWait: c.Bool("no-wait-lock")},
	}, upReview(p, prog, out))
	if err != nil {
		return err
	}
	return afterUp(ctx, c, p, prog, popts, c.Bool("detach"))
}

// upReview checks the plan's host ports and prints it before up applies it.
func upReview(p *project, prog *progress, out io.Writer) func(*planner.Plan) error {
	return func(pl *planner.Plan) error {
		if err := checkPorts(p, pl); err != nil {
			return err
		}
		if pl.Empty() {
			prog.line("nothing to do: the host matches the stack file")
			return nil
		}
		if prog.json {
			return nil
		}
		return pl.WriteText(out)
	}
}

// afterUp is what up does once the plan is applied: --wait, return when detached, else follow
// the logs until Ctrl-C, which stops the containers.
func afterUp(ctx context.Context, c *cli.Context, p *project, prog *progress, popts planner.Options, detach bool) error {
	if c.Bool("wait") {
		wctx := ctx
		if d := c.Duration("wait-timeout"); d > 0 {
			var cancel context.CancelFunc
			wctx, cancel = context.WithTimeout(ctx, d)
			defer cancel()
		}
		if err := p.eng.WaitReady(wctx, p.stack, popts.Services, 0); err != nil {
			return fmt.Errorf("up --wait: %w%s", err, healthReport(p, popts.Services))
		}
		prog.line("all services are ready")
		return nil
	}
	if detach || popts.NoStart {
		return nil
	}
	// Attached, as Compose: follow the logs; Ctrl-C stops the containers.
	err := followLogs(ctx, c.App.Writer, p, popts.Services, logOptions{follow: true, color: isTerminal(os.Stdout)})
	if ctx.Err() != nil {
		fmt.Fprintln(c.App.ErrWriter, "stopping (Ctrl-C again does not hurry it)...")
		return stopServices(context.WithoutCancel(c.Context), p, popts.Services, 0)
	}
	return err
}

// progress prints engine events as plain lines or JSON lines.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	warn  io.Writer // plain warnings (PhaseWarning); os.Stderr unless set
	json  bool
	start map[string]time.Time
}

// hostSession is what a command that changes the host works with: a context Ctrl-C cancels,
// its output (nowhere with --quiet) and the progress printer writing to it (--progress).
func hostSession(c *cli.Context) (context.Context, context.CancelFunc, io.Writer, *progress) {
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt)
	out := c.App.Writer
	if c.Bool("quiet") {
		out = io.Discard
	}
	return ctx, stop, out, newProgress(out, c.String("progress"))
}

func newProgress(w io.Writer, format string) *progress {
	return &progress{w: w, warn: os.Stderr, json: format == "json", start: map[string]time.Time{}}
}

func (p *progress) line(msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.json {
		writeJSONLine(p.w, map[string]any{"version": 1, "message": msg})
		return
	}
	fmt.Fprintln(p.w, msg)
}

func (p *progress) event(e engine.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.json {
		writeJSONLine(p.w, map[string]any{"version": 1, "time": e.Time, "action": e.Action, "kind": e.Kind.String(),
			"resource": e.Resource, "phase": string(e.Phase), "message": e.Message})
		return
	}
	switch e.Phase {
	case engine.PhaseStarted:
		p.start[e.Action] = e.Time
	case engine.PhaseDone:
		fmt.Fprintf(p.w, " ✔ %-10s %-30s %s\n", e.Kind.Verb(), e.Resource, e.Time.Sub(p.start[e.Action]).Round(time.Millisecond))
	case engine.PhaseFailed:
		fmt.Fprintf(p.w, " ✘ %-10s %-30s %s\n", e.Kind.Verb(), e.Resource, e.Message)
	case engine.PhaseWarning:
		// On stderr, so that --quiet keeps it: something was left that the user asked to go.
		fmt.Fprintf(p.warn, "warning: %s\n", e.Message)
	case engine.PhaseWaiting:
		if e.Message != "" {
			fmt.Fprintf(p.w, " … %-10s %-30s %s\n", e.Kind.Verb(), e.Resource, e.Message)
		}
	}
}

// checkPorts refuses the plan before anything is made when a host port that a new container
// would publish is taken, by any process of the host or another container (the one a
// container replaces excepted): "port 8080 is in use by pid 1234 (nginx)".
func checkPorts(p *project, pl *planner.Plan) error {
	var reqs []network.PortBinding
	var except []string
	for _, a := range pl.Actions {
		if (a.Kind != planner.CreateContainer && a.Kind != planner.RecreateContainer) || a.Service == nil {
			continue
		}
		b, err := network.PortBindings(a.Service)
		if err != nil {
			return err
		}
		reqs = append(reqs, b...)
		if a.Container != "" {
			except = append(except, a.Container)
		}
	}
	if len(reqs) == 0 {
		return nil
	}
	// Containers of the project that stay (unchanged) keep their ports: count them as theirs.
	for _, u := range pl.Unchanged {
		if u.Container != "" {
			except = append(except, u.Container)
		}
	}
	return p.host.Networks.CheckPorts(reqs, except...)
}

// healthReport names each unhealthy container of services (all when none) with the output of
// its last health probe, for the error of up --wait; "" when none is unhealthy.
func healthReport(p *project, services []string) string {
	recs, err := selectRecords(p, services)
	if err != nil {
		return ""
	}
	var b strings.Builder
	for _, r := range recs {
		st, err := p.host.Status(r.ID)
		if err != nil || st.Health == nil || st.Health.Status != monitor.HealthUnhealthy || len(st.Health.Log) == 0 {
			continue
		}
		last := st.Health.Log[len(st.Health.Log)-1]
		fmt.Fprintf(&b, "\n  service %s (%s) is unhealthy; last health check exited %d with output:\n    %s",
			r.Service, r.Name, last.ExitCode, strings.ReplaceAll(strings.TrimSpace(last.Output), "\n", "\n    "))
	}
	return b.String()
}
