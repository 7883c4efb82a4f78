package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/stackrun/stack/engine"
	"github.com/stackrun/stack/engine/local"
	"github.com/stackrun/stack/runtime/monitor"
)

// selectRecords returns the records of the named services (all when none are named).
func selectRecords(p *project, services []string) ([]*engine.Record, error) {
	recs, err := p.eng.Records()
	if err != nil {
		return nil, err
	}
	var out []*engine.Record
	for _, r := range recs {
		if len(services) == 0 || slices.Contains(services, r.Service) {
			out = append(out, r)
		}
	}
	if len(out) == 0 && len(services) > 0 {
		return nil, fmt.Errorf("no containers for %v in project %s", services, p.name)
	}
	return out, nil
}

func stopTimeout(r *engine.Record, flag int) time.Duration {
	if flag >= 0 {
		return seconds(flag)
	}
	if r.Config != nil && r.Config.StopGracePeriod != nil {
		return *r.Config.StopGracePeriod
	}
	return 10 * time.Second
}

// stopServices stops the containers of services (all when none) through their monitors; the
// stop is recorded so restart policies do not undo it. timeout < 0: each service's own.
func stopServices(ctx context.Context, p *project, services []string, timeout int) error {
	recs, err := selectRecords(p, services)
	if err != nil {
		return err
	}
	c := local.Containers{Host: p.host}
	var errs []error
	for _, r := range recs {
		if err := c.Stop(ctx, r.ID, stopTimeout(r, timeout)); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", r.Name, err))
		}
	}
	return errors.Join(errs...)
}

// eachContainer runs fn for every container of the named services (all when none), going on
// after a failure and returning every error.
func eachContainer(c *cli.Context, fn func(local.Containers, *engine.Record) error) error {
	p, err := openProject(c, false)
	if err != nil {
		return err
	}
	recs, err := selectRecords(p, c.Args().Slice())
	if err != nil {
		return err
	}
	cs := local.Containers{Host: p.host}
	var errs []error
	for _, r := range recs {
		if err := fn(cs, r); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.Name, err))
		}
	}
	return errors.Join(errs...)
}

func lifecycleCommands() []*cli.Command {
	timeout := &cli.IntFlag{Name: "timeout", Aliases: []string{"t"}, Usage: "seconds before SIGKILL (default: stop_grace_period)", Value: -1}
	return []*cli.Command{
		{
			Name: "stop", Usage: "stop containers (stop_signal, grace period, then SIGKILL); restart policies do not undo it",
			ArgsUsage: "[SERVICE...]", Flags: append(stackFileFlags(false), timeout),
			Description: "Examples:\n" +
				"   stack stop            # every container of the project\n" +
				"   stack stop -t 1 web   # web, SIGKILL after 1 s",
			Action: func(c *cli.Context) error {
				p, err := openProject(c, false)
				if err != nil {
					return err
				}
				return stopServices(c.Context, p, c.Args().Slice(), c.Int("timeout"))
			},
		},
		{
			Name: "start", Usage: "start existing containers", ArgsUsage: "[SERVICE...]", Flags: stackFileFlags(false),
			Description: "Starts what stop stopped, as it was; up is what applies changes to the file.\n\n" +
				"Examples:\n" +
				"   stack start\n" +
				"   stack start web api",
			Action: func(c *cli.Context) error {
				return eachContainer(c, func(cs local.Containers, r *engine.Record) error { return cs.Start(c.Context, r.ID) })
			},
		},
		{
			Name: "restart", Usage: "restart containers", ArgsUsage: "[SERVICE...]", Flags: append(stackFileFlags(false), timeout),
			Description: "Stops and starts the same containers; changes to the file need up, not restart.\n\n" +
				"Examples:\n" +
				"   stack restart\n" +
				"   stack restart -t 5 api",
			Action: func(c *cli.Context) error {
				return eachContainer(c, func(cs local.Containers, r *engine.Record) error {
					if err := cs.Stop(c.Context, r.ID, stopTimeout(r, c.Int("timeout"))); err != nil {
						return err
					}
					return cs.Start(c.Context, r.ID)
				})
			},
		},
		{
			Name: "kill", Usage: "send a signal to containers (default SIGKILL)", ArgsUsage: "[SERVICE...]",
			Flags: append(stackFileFlags(false), &cli.StringFlag{Name: "signal", Aliases: []string{"s"}, Value: "SIGKILL", Usage: "signal name or number"}),
			Description: "Examples:\n" +
				"   stack kill web\n" +
				"   stack kill -s HUP api   # e.g. to make it reload its configuration",
			Action: func(c *cli.Context) error {
				sig, err := parseSignal(c.String("signal"))
				if err != nil {
					return usageError{fmt.Errorf("--signal: %w", err)}
				}
				return eachContainer(c, func(cs local.Containers, r *engine.Record) error {
					sd, rd := cs.MonitorDirs(r.ID)
					return monitor.Kill(c.Context, sd, rd, sig)
				})
			},
		},
	}
}
