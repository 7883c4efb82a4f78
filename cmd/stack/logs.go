package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/stackrun/stack/engine"
	"github.com/stackrun/stack/runtime/monitor"
	"github.com/stackrun/stack/runtime/monitor/logfile"
)

func logsCommand() *cli.Command {
	return &cli.Command{
		Name:      "logs",
		Usage:     "show the output of the project's containers, interleaved by time",
		ArgsUsage: "[SERVICE...]",
		Description: `Examples:
   stack logs --tail 20 web
   stack logs -f               # follow, across restarts; ends when the containers stop`,
		Flags: append(withoutAlias(stackFileFlags(false), "f"),
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep printing new output"},
			&cli.IntFlag{Name: "tail", Aliases: []string{"n"}, Usage: "only the last N lines of each container (0: all)"},
			&cli.StringFlag{Name: "since", Usage: "only lines after this time (RFC 3339) or this long ago (10m)"},
			&cli.BoolFlag{Name: "timestamps", Aliases: []string{"t"}, Usage: "show timestamps"},
			&cli.BoolFlag{Name: "no-color", Usage: "no colored prefixes"},
			&cli.BoolFlag{Name: "no-log-prefix", Usage: "no service-N | prefix"},
		),
		Action: func(c *cli.Context) error {
			p, err := openProject(c, false)
			if err != nil {
				return err
			}
			o := logOptions{follow: c.Bool("follow"), tail: c.Int("tail"), timestamps: c.Bool("timestamps"),
				color: !c.Bool("no-color") && isTerminal(os.Stdout), noPrefix: c.Bool("no-log-prefix")}
			if s := c.String("since"); s != "" {
				if d, err := time.ParseDuration(s); err == nil {
					o.since = time.Now().Add(-d)
				} else if o.since, err = time.Parse(time.RFC3339, s); err != nil {
					return usageError{fmt.Errorf("--since %q: want RFC 3339 time or a duration like 10m", s)}
				}
			}
			return followLogs(c.Context, c.App.Writer, p, c.Args().Slice(), o)
		},
	}
}

type logOptions struct {
	follow, timestamps, color, noPrefix bool
	tail                                int
	since                               time.Time
}

var logColors = []string{"\x1b[36m", "\x1b[33m", "\x1b[32m", "\x1b[35m", "\x1b[34m", "\x1b[91m", "\x1b[92m", "\x1b[93m"}

// followLogs prints the logs of the project's containers (of services, or all). Without
// follow it merges every container's lines by time; with follow it prints lines as they come.
func followLogs(ctx context.Context, w io.Writer, p *project, services []string, o logOptions) error {
	recs, err := p.eng.Records()
	if err != nil {
		return err
	}
	var sel []*engine.Record
	for _, r := range recs {
		if len(services) == 0 || slices.Contains(services, r.Service) {
			sel = append(sel, r)
		}
	}
	sort.Slice(sel, func(i, j int) bool { return sel[i].Name < sel[j].Name })
	width := 0
	for _, r := range sel {
		width = max(width, len(prefixOf(r)))
	}
	format := func(i int, r *engine.Record, e logfile.Entry) string {
		line := e.Log
		if o.timestamps {
			line = e.Time.Format(time.RFC3339Nano) + " " + line
		}
		if o.noPrefix {
			return line + "\n"
		}
		pre := fmt.Sprintf("%-*s |", width, prefixOf(r))
		if o.color {
			pre = logColors[i%len(logColors)] + pre + "\x1b[0m"
		}
		return pre + " " + line + "\n"
	}
	var mu sync.Mutex
	var lines []struct {
		t time.Time
		s string
	}
	var wg sync.WaitGroup
	var errs []error
	index := map[string]int{} // container id -> its color and error slot
	active := 0               // followers still reading
	ended := make(chan struct{}, 1)
	read := func(r *engine.Record) { // with mu held
		active++
		i := len(errs)
		index[r.ID] = i
		errs = append(errs, nil)
		width = max(width, len(prefixOf(r)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			stateDir, runDir := p.host.MonitorDirs(r.ID)
			lo := monitor.LogOptions{Tail: o.tail, Since: o.since, Follow: o.follow, StateDir: stateDir, RunDir: runDir,
				Done: func() bool { return containerDone(p, r.ID) }}
			emit := func(e logfile.Entry) error {
				mu.Lock()
				defer mu.Unlock()
				s := format(i, r, e)
				if o.follow {
					_, err := io.WriteString(w, s)
					return err
				}
				lines = append(lines, struct {
					t time.Time
					s string
				}{e.Time, s})
				return nil
			}
			err := readLogs(ctx, o.follow, p, r.ID, func() error {
				return monitor.ReadLogs(ctx, p.host.LogPath(r.ID), lo, emit)
			})
			if os.IsNotExist(err) {
				err = nil // never started: no log yet
			}
			mu.Lock()
			errs[i] = err
			active--
			mu.Unlock()
			select {
			case ended <- struct{}{}:
			default:
			}
		}()
	}
	mu.Lock()
	for _, r := range sel {
		read(r)
	}
	mu.Unlock()
	if o.follow {
		// Containers created meanwhile (a recreate, a scale-up) are followed too. Following
		// ends when every container followed is down, none is new, and no other stack command
		// is converging the project (a recreate in progress would add one).
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
	follow:
		for {
			select {
			case <-ctx.Done():
				break follow
			case <-tick.C:
			case <-ended:
			}
			recs, err := p.eng.Records()
			if err != nil {
				continue
			}
			sort.Slice(recs, func(i, j int) bool { return recs[i].Name < recs[j].Name })
			mu.Lock()
			for _, r := range recs {
				if _, seen := index[r.ID]; !seen && (len(services) == 0 || slices.Contains(services, r.Service)) {
					read(r)
				}
			}
			idle := active == 0
			mu.Unlock()
			if idle && !projectBusy(ctx, p) {
				break follow
			}
		}
	}
	wg.Wait()
	sort.SliceStable(lines, func(i, j int) bool { return lines[i].t.Before(lines[j].t) })
	for _, l := range lines {
		if _, err := io.WriteString(w, l.s); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return errors.Join(errs...)
}

// readLogs runs read; when following, a log file that does not exist yet (a container just
// created by a recreate or a scale-up, not started) is waited for until the container starts
// or is done, instead of ending its follower at once.
func readLogs(ctx context.Context, follow bool, p *project, id string, read func() error) error {
	for {
		err := read()
		if !follow || !os.IsNotExist(err) || containerDone(p, id) {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// containerDone reports whether following container id can end: it was removed, or its
// monitor says it is finally down. One created but not started yet is not done.
func containerDone(p *project, id string) bool {
	st, err := p.host.Status(id)
	switch {
	case errors.Is(err, monitor.ErrNoRecord):
		return false
	case err != nil:
		// No launch record: removed, or not made yet (the engine records a container before
		// creating it). Only the engine's record says which.
		recs, rerr := p.eng.Records()
		if rerr != nil {
			return true
		}
		return !slices.ContainsFunc(recs, func(r *engine.Record) bool { return r.ID == id })
	}
	return st.State.Final()
}

// projectBusy reports whether another stack command holds the project lock (up, down,
// restart at work).
func projectBusy(ctx context.Context, p *project) bool {
	l, err := p.eng.Lock(ctx, engine.LockOptions{NoWait: true})
	if err != nil {
		return errors.Is(err, engine.ErrLocked)
	}
	l.Unlock()
	return false
}

func prefixOf(r *engine.Record) string { return fmt.Sprintf("%s-%d", r.Service, r.Number) }

// withoutAlias drops a short alias from flags: in `stack logs -f`, as in Compose, -f means
// follow; the stack file is then given before the command (stack -f x.yaml logs -f).
func withoutAlias(flags []cli.Flag, alias string) []cli.Flag {
	for _, f := range flags {
		if sf, ok := f.(*cli.StringSliceFlag); ok {
			sf.Aliases = slices.DeleteFunc(slices.Clone(sf.Aliases), func(a string) bool { return a == alias })
		}
	}
	return flags
}
