package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/stackrun/stack/engine"
	"github.com/stackrun/stack/runtime/monitor"
)

func psCommand() *cli.Command {
	return &cli.Command{
		Name:  "ps",
		Usage: "list the project's containers with status, ports, addresses and live resource use",
		Description: `Reads the records on disk: the stack file is not needed when -p names the project.

Examples:
   stack ps
   stack ps -a --format json`,
		Flags: append(stackFileFlags(false),
			&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "also show stopped containers"},
			&cli.StringFlag{Name: "format", Usage: "table or json", Value: "table"},
			&cli.BoolFlag{Name: "services", Usage: "print the services that have containers"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print container ids only"},
		),
		Action: runPs,
	}
}

// psEntry is one line of `stack ps`; its JSON shape (version 1) is documented here:
// name, id, service, number, image, state (running, exited, restarting, created,
// unsupervised), status (human), exit_code, health, ports, addresses, memory and cpu use,
// restart_count (restarts made by the policy), restarts (the last few: at, delay in ns,
// exit_code), started_at and finished_at of the last run,
// pid (the container's init) and monitor_pid.
type psEntry struct {
	Name        string   `json:"name"`
	ID          string   `json:"id"`
	Service     string   `json:"service"`
	Number      int      `json:"number"`
	Image       string   `json:"image"`
	State       string   `json:"state"`
	Status      string   `json:"status"`
	ExitCode    int      `json:"exit_code"`
	Health      string   `json:"health,omitempty"`
	Ports       []string `json:"ports,omitempty"`
	Addresses   []string `json:"addresses,omitempty"`
	MemoryBytes uint64   `json:"memory_bytes,omitempty"`
	MemoryLimit uint64   `json:"memory_limit,omitempty"`
	CPUSeconds  float64  `json:"cpu_seconds,omitempty"`

	RestartCount int                    `json:"restart_count"`
	Restarts     []monitor.RestartEvent `json:"restarts,omitempty"`
	StartedAt    time.Time              `json:"started_at,omitzero"`
	FinishedAt   time.Time              `json:"finished_at,omitzero"`
	Pid          int                    `json:"pid,omitempty"`
	MonitorPid   int                    `json:"monitor_pid,omitempty"`
}

func runPs(c *cli.Context) error {
	p, err := openProject(c, false)
	if err != nil {
		return err
	}
	recs, err := p.eng.Records()
	if err != nil {
		return err
	}
	var rows []psEntry
	for _, r := range recs {
		e := psEntry{Name: r.Name, ID: r.ID, Service: r.Service, Number: r.Number, Image: r.Image}
		st, err := p.host.Status(r.ID)
		switch {
		case err != nil:
			e.State, e.Status = "created", "created"
		default:
			e.State, e.Status, e.ExitCode = describe(st, time.Now())
			if st.Health != nil {
				e.Health = st.Health.Status
			}
			e.RestartCount, e.Restarts = st.RestartCount, st.Restarts
			e.StartedAt, e.FinishedAt = st.StartedAt, st.FinishedAt
			if e.State == "running" || e.State == "unsupervised" {
				e.Pid = st.ContainerPid
			}
			if !st.Unsupervised && !st.State.Final() {
				e.MonitorPid = st.MonitorPid
			}
		}
		if !c.Bool("all") && e.State != "running" && e.State != "restarting" && e.State != "unsupervised" {
			continue
		}
		if b, err := p.host.Networks.Bindings(r.ID); err == nil {
			for _, x := range b {
				e.Ports = append(e.Ports, x.String())
			}
		}
		if atts, err := p.host.Networks.Attachments(r.ID); err == nil {
			for _, a := range atts {
				e.Addresses = append(e.Addresses, a.IPv4.String())
			}
		}
		if e.State == "running" {
			if s, err := p.host.ContainerRuntime(r.ID).Stats(c.Context, r.ID); err == nil {
				e.MemoryBytes, e.MemoryLimit, e.CPUSeconds = s.MemoryUsage, s.MemoryLimit, float64(s.CPUUsageNanos)/1e9
			}
		}
		rows = append(rows, e)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Name < rows[j].Name })
	w := c.App.Writer
	switch {
	case c.Bool("quiet"):
		for _, r := range rows {
			fmt.Fprintln(w, r.ID)
		}
	case c.Bool("services"):
		seen := map[string]bool{}
		for _, r := range rows {
			if !seen[r.Service] {
				seen[r.Service] = true
				fmt.Fprintln(w, r.Service)
			}
		}
	case c.String("format") == "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"version": 1, "project": p.name, "containers": rows})
	default:
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tSERVICE\tIMAGE\tSTATUS\tPORTS\tIP\tMEM\tCPU")
		for _, r := range rows {
			mem := "-"
			if r.MemoryBytes > 0 {
				mem = humanSize(int64(r.MemoryBytes))
				if r.MemoryLimit > 0 {
					mem += " / " + humanSize(int64(r.MemoryLimit))
				}
			}
			cpu := "-"
			if r.CPUSeconds > 0 {
				cpu = fmt.Sprintf("%.2fs", r.CPUSeconds)
			}
			status := r.Status
			if r.Health != "" {
				status += " (" + r.Health + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Service, r.Image, status,
				strings.Join(r.Ports, ", "), strings.Join(r.Addresses, ", "), mem, cpu)
		}
		return tw.Flush()
	}
	return nil
}

// describe turns a monitor record into ps's state, human status and exit code.
func describe(st *monitor.Status, now time.Time) (state, status string, exit int) {
	switch {
	case st.Unsupervised:
		return "unsupervised", "running (unsupervised: its monitor is gone; stack up restores it)", 0
	case st.State == monitor.StateRunning:
		return "running", "running " + ago(now, st.StartedAt), 0
	case st.State == monitor.StateRestarting:
		return "restarting", fmt.Sprintf("restarting (%d) %s", st.ExitCode, ago(now, st.FinishedAt)), st.ExitCode
	case st.State == monitor.StateCreated:
		return "created", "created", 0
	}
	why := fmt.Sprintf("exited (%d)", st.ExitCode)
	if st.OOMKilled {
		why = fmt.Sprintf("exited (%d, OOM-killed)", st.ExitCode)
	}
	return "exited", why + " " + ago(now, st.FinishedAt), st.ExitCode
}

func writeJSONLine(w io.Writer, v any) {
	b, _ := json.Marshal(v)
	w.Write(append(b, '\n'))
}

func seconds(n int) time.Duration { return time.Duration(n) * time.Second }

var _ = engine.Record{}
