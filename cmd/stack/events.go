package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/stackrun/stack/events"
)

func eventsCommand() *cli.Command {
	return &cli.Command{
		Name:      "events",
		Usage:     "print the project's container events (create, start, die, oom, health_status, restart, destroy)",
		ArgsUsage: "[SERVICE...]",
		Description: `Reads the event journal under the state root, which commands and monitors append to,
then keeps printing new events until interrupted or until --until. --since and --until take
an RFC 3339 time, a Unix time in seconds, a duration before now (10m) or "now".
With --format json each event is one JSON line (events.Event, version 1): time, type, id,
name, project, service, exit_code (die), signal (die), health (health_status).

Examples:
   stack events --since 1h --until now
   stack events web --format json`,
		Flags: append(stackFileFlags(false),
			&cli.StringFlag{Name: "since", Usage: "show events at or after this time"},
			&cli.StringFlag{Name: "until", Usage: "stop at this time (default: follow until interrupted)"},
			&cli.StringFlag{Name: "format", Usage: "text or json", Value: "text"},
		),
		Action: runEvents,
	}
}

func runEvents(c *cli.Context) error {
	now := time.Now()
	since, err := parseEventTime(c.String("since"), now)
	if err != nil {
		return usageError{fmt.Errorf("--since: %w", err)}
	}
	until, err := parseEventTime(c.String("until"), now)
	if err != nil {
		return usageError{fmt.Errorf("--until: %w", err)}
	}
	p, err := openProject(c, false)
	if err != nil {
		return err
	}
	services := c.Args().Slice()
	w := c.App.Writer
	asJSON := c.String("format") == "json"
	return events.Follow(c.Context, events.Path(c.String("root")), since, until, 0, func(ev events.Event) {
		if ev.Project != p.name || (len(services) > 0 && !slices.Contains(services, ev.Service)) {
			return
		}
		if asJSON {
			writeJSONLine(w, ev)
			return
		}
		var attrs []string
		if ev.ExitCode != nil {
			attrs = append(attrs, "exit_code="+strconv.Itoa(*ev.ExitCode))
		}
		if ev.Signal != 0 {
			attrs = append(attrs, "signal="+strconv.Itoa(ev.Signal))
		}
		if ev.Health != "" {
			attrs = append(attrs, "health="+ev.Health)
		}
		attrs = append(attrs, "service="+ev.Service, "id="+ev.ID[:min(12, len(ev.ID))])
		fmt.Fprintf(w, "%s container %s %s (%s)\n", ev.Time.Format(time.RFC3339Nano), ev.Type, ev.Name, strings.Join(attrs, ", "))
	})
}

// parseEventTime reads --since/--until: "" (no bound), "now", an RFC 3339 time, Unix seconds,
// or a duration before now.
func parseEventTime(s string, now time.Time) (time.Time, error) {
	switch {
	case s == "":
		return time.Time{}, nil
	case s == "now":
		return now, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		return time.Unix(0, int64(n*1e9)), nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a time (RFC 3339, Unix seconds, a duration like 10m, or now)", s)
}
