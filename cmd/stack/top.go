package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/stackrun/stack/engine/local"
)

func topCommand() *cli.Command {
	return &cli.Command{
		Name:      "top",
		Usage:     "show the processes of running containers, as seen from the host",
		ArgsUsage: "[SERVICE...]",
		Description: `Lists every process in each running container's cgroup with host pids, read from /proc.
The JSON form (--format json) is an array of {name, service, id, processes}, each process an
engine/local.Process.

Examples:
   stack top
   stack top web --format json`,
		Flags: append(stackFileFlags(false),
			&cli.StringFlag{Name: "format", Usage: "table or json", Value: "table"},
		),
		Action: func(c *cli.Context) error {
			p, err := openProject(c, false)
			if err != nil {
				return err
			}
			recs, err := selectRecords(p, c.Args().Slice())
			if err != nil {
				return err
			}
			type entry struct {
				Name      string          `json:"name"`
				Service   string          `json:"service"`
				ID        string          `json:"id"`
				Processes []local.Process `json:"processes"`
			}
			out := []entry{}
			for _, r := range recs {
				if st, err := p.host.Status(r.ID); err != nil || !running(st.State, st.Unsupervised) {
					continue
				}
				procs, err := p.host.Top(c.Context, r.ID)
				if err != nil {
					continue // stopped while we looked
				}
				out = append(out, entry{Name: r.Name, Service: r.Service, ID: r.ID, Processes: procs})
			}
			w := c.App.Writer
			if c.String("format") == "json" {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				return enc.Encode(out)
			}
			for i, e := range out {
				if i > 0 {
					fmt.Fprintln(w)
				}
				fmt.Fprintln(w, e.Name)
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "PID\tPPID\tUID\tSTAT\tTIME\tRSS\tCMD")
				for _, pr := range e.Processes {
					fmt.Fprintf(tw, "%d\t%d\t%d\t%s\t%s\t%s\t%s\n", pr.Pid, pr.PPid, pr.UID, pr.State, pr.CPUTime, humanSize(pr.RSS), pr.Command)
				}
				if err := tw.Flush(); err != nil {
					return err
				}
			}
			return nil
		},
	}
}
