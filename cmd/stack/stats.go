package main

import (
	"context"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/stackrun/stack/engine"
	"github.com/stackrun/stack/engine/local"
	"github.com/stackrun/stack/runtime/monitor"
)

func statsCommand() *cli.Command {
	return &cli.Command{
		Name:      "stats",
		Usage:     "show live resource use of running containers: CPU, memory, pids, network and block I/O",
		ArgsUsage: "[SERVICE...]",
		Description: `Streams a refreshed table every --interval until interrupted; --no-stream prints one
reading and exits. CPU % is over the interval, 100% being one full CPU. With --format json
each reading of each container is one JSON line (statsEntry, version 1): name, service, id,
cpu_percent, memory_bytes, memory_limit, memory_percent, pids, pids_limit, net_rx_bytes,
net_tx_bytes, block_read_bytes, block_write_bytes, time.

Examples:
   stack stats --no-stream
   stack stats web --format json`,
		Flags: append(stackFileFlags(false),
			&cli.BoolFlag{Name: "no-stream", Usage: "print one reading and exit"},
			&cli.StringFlag{Name: "format", Usage: "table or json", Value: "table"},
			&cli.DurationFlag{Name: "interval", Usage: "time between readings", Value: time.Second},
		),
		Action: runStats,
	}
}

// statsEntry is one reading of one container; its JSON shape is documented in the command.
type statsEntry struct {
	Name          string    `json:"name"`
	Service       string    `json:"service"`
	ID            string    `json:"id"`
	Time          time.Time `json:"time"`
	CPUPercent    float64   `json:"cpu_percent"`
	MemoryBytes   uint64    `json:"memory_bytes"`
	MemoryLimit   uint64    `json:"memory_limit"`
	MemoryPercent float64   `json:"memory_percent,omitempty"`
	Pids          uint64    `json:"pids"`
	PidsLimit     uint64    `json:"pids_limit,omitempty"`
	NetRx         uint64    `json:"net_rx_bytes"`
	NetTx         uint64    `json:"net_tx_bytes"`
	BlockRead     uint64    `json:"block_read_bytes"`
	BlockWrite    uint64    `json:"block_write_bytes"`
}

func running(s monitor.ContainerState, unsupervised bool) bool {
	return unsupervised || s == monitor.StateRunning
}

func runStats(c *cli.Context) error {
	p, err := openProject(c, false)
	if err != nil {
		return err
	}
	interval := c.Duration("interval")
	if interval <= 0 {
		return usageError{fmt.Errorf("--interval must be positive")}
	}
	prev := map[string]*local.Sample{}
	sample := func() ([]*engine.Record, map[string]*local.Sample, error) {
		recs, err := selectRecords(p, c.Args().Slice())
		if err != nil {
			return nil, nil, err
		}
		var live []*engine.Record
		now := map[string]*local.Sample{}
		for _, r := range recs {
			if st, err := p.host.Status(r.ID); err != nil || !running(st.State, st.Unsupervised) {
				continue
			}
			s, err := p.host.Stats(c.Context, r.ID)
			if err != nil {
				continue // stopped while we looked
			}
			live = append(live, r)
			now[r.ID] = s
		}
		return live, now, nil
	}
	// The first reading only primes the CPU counters.
	if _, prev, err = sample(); err != nil {
		return err
	}
	tty := isTerminal(os.Stdout) && c.String("format") != "json"
	for {
		if err := sleepCtx(c.Context, interval); err != nil {
			return nil
		}
		recs, now, err := sample()
		if err != nil {
			return err
		}
		rows := make([]statsEntry, 0, len(recs))
		for _, r := range recs {
			rows = append(rows, statsRow(r, prev[r.ID], now[r.ID]))
		}
		prev = now
		if err := printStats(c, rows, tty); err != nil {
			return err
		}
		if c.Bool("no-stream") {
			return nil
		}
	}
}

func statsRow(r *engine.Record, a, b *local.Sample) statsEntry {
	e := statsEntry{Name: r.Name, Service: r.Service, ID: r.ID, Time: b.Time.UTC(),
		MemoryBytes: b.MemoryUsage, MemoryLimit: b.MemoryLimit, Pids: b.Pids, PidsLimit: b.PidsLimit,
		NetRx: b.NetRx, NetTx: b.NetTx, BlockRead: b.BlockRead, BlockWrite: b.BlockWrite}
	if a != nil && b.Time.After(a.Time) && b.CPUNanos >= a.CPUNanos {
		e.CPUPercent = float64(b.CPUNanos-a.CPUNanos) / float64(b.Time.Sub(a.Time).Nanoseconds()) * 100
	}
	if b.MemoryLimit > 0 {
		e.MemoryPercent = float64(b.MemoryUsage) / float64(b.MemoryLimit) * 100
	}
	return e
}

func printStats(c *cli.Context, rows []statsEntry, tty bool) error {
	w := c.App.Writer
	if c.String("format") == "json" {
		for _, r := range rows {
			writeJSONLine(w, r)
		}
		return nil
	}
	if tty && !c.Bool("no-stream") {
		fmt.Fprint(w, "\x1b[H\x1b[2J") // home and clear, as top does
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tCPU %\tMEM USAGE / LIMIT\tMEM %\tNET I/O\tBLOCK I/O\tPIDS")
	for _, r := range rows {
		limit, pct := "-", "-"
		if r.MemoryLimit > 0 {
			limit, pct = humanSize(int64(r.MemoryLimit)), fmt.Sprintf("%.2f%%", r.MemoryPercent)
		}
		fmt.Fprintf(tw, "%s\t%.2f%%\t%s / %s\t%s\t%s / %s\t%s / %s\t%d\n", r.Name, r.CPUPercent,
			humanSize(int64(r.MemoryBytes)), limit, pct, humanSize(int64(r.NetRx)), humanSize(int64(r.NetTx)),
			humanSize(int64(r.BlockRead)), humanSize(int64(r.BlockWrite)), r.Pids)
	}
	return tw.Flush()
}

// sleepCtx waits d, or until ctx is done (then it returns ctx's error).
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
