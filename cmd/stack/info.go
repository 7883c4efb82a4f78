package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/stackrun/stack/engine/local"
)

func infoCommand() *cli.Command {
	return &cli.Command{
		Name:  "info",
		Usage: "show the host as stack sees it: kernel, cgroups, storage, counts, runtime",
		Description: `The JSON form (--format json) is engine/local.HostInfo, version 1.

Examples:
   stack info
   stack info --format json`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "format", Usage: "text or json", Value: "text"},
			&cli.StringFlag{Name: "runtime", Usage: "runtime to report (builtin, or a runc-compatible binary)"},
		},
		Action: func(c *cli.Context) error {
			log := slog.New(slog.NewTextHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: slog.LevelWarn}))
			h, err := local.Open(c.String("root"), c.String("run-root"), log)
			if err != nil {
				return fmt.Errorf("open state root: %w", err)
			}
			if rt := c.String("runtime"); rt != "" {
				h.Runtime = rt
			}
			hi, err := h.Info(c.Context)
			if err != nil {
				return fmt.Errorf("info: %w", err)
			}
			w := c.App.Writer
			if c.String("format") == "json" {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				return enc.Encode(hi)
			}
			fmt.Fprintf(w, "Kernel:          %s %s (%s)\n", hi.OS, hi.Kernel, hi.Architecture)
			fmt.Fprintf(w, "Hostname:        %s\n", hi.Hostname)
			fmt.Fprintf(w, "CPUs:            %d\n", hi.CPUs)
			fmt.Fprintf(w, "Memory:          %s\n", humanSize(int64(hi.MemoryBytes)))
			fmt.Fprintf(w, "Cgroups:         v%d (%s driver)\n", hi.CgroupVersion, hi.CgroupDriver)
			fmt.Fprintf(w, "Runtime:         %s\n", hi.Runtime)
			fmt.Fprintf(w, "Storage root:    %s (%s: images %s, containers %s, volumes %s)\n", hi.StorageRoot,
				humanSize(hi.StorageBytes), humanSize(hi.ImagesBytes), humanSize(hi.ContainersBytes), humanSize(hi.VolumesBytes))
			fmt.Fprintf(w, "Run root:        %s\n", hi.RunRoot)
			fmt.Fprintf(w, "Images:          %d\n", hi.Images)
			fmt.Fprintf(w, "Containers:      %d (%d running)\n", hi.Containers, hi.Running)
			fmt.Fprintf(w, "Networks:        %d\n", hi.Networks)
			fmt.Fprintf(w, "Volumes:         %d\n", hi.Volumes)
			fmt.Fprintf(w, "Projects:        %s\n", strings.Join(hi.Projects, ", "))
			return nil
		},
	}
}
