package main

import (
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/stackrun/stack/planner"
	"github.com/stackrun/stack/spec"
	"github.com/stackrun/stack/state"
)

// pendingChanges is plan's exit code 2 (like terraform plan -detailed-exitcode).
type pendingChanges struct{}

func (pendingChanges) Error() string { return "changes pending" }
func (pendingChanges) ExitCode() int { return exitUsage }
func (pendingChanges) Quiet()        {}

func planCommand() *cli.Command {
	return &cli.Command{
		Name:      "plan",
		Usage:     "show what up would do, and why, without doing it",
		ArgsUsage: "[SERVICE...]",
		Description: `Prints + create, ~ recreate (why), - remove, = unchanged for every resource.
Exit code: 0 when the host matches the file, 2 when changes are pending, 1 on error.

-out FILE also saves the plan, for stack apply FILE (or stack up FILE) to apply exactly it
later. Applying refuses, changing nothing, when the stack file(s) or the environment they
interpolate resolve to another stack, or when the project's containers, networks, volumes or
the images its services use changed since the plan was made: plan again then. The exit code
is the same with -out (2: a plan with changes was saved). The file is JSON of this shape
(version 1; other versions are refused):

   {"format": "stack-saved-plan", "version": 1, "created": "<RFC 3339>", "project": "demo",
    "source": {"files": [...], "project_directory": "...", "env_files": [...], "profiles": [...]},
    "options": {"services": [...], "no_deps": false, "remove_orphans": false, "force_recreate": false,
                "no_recreate": false, "no_start": false, "build": false, "scale": {}, "pull": ""},
    "desired": {"project": "sha256:...", "service:web": "sha256:...", ...},
    "fingerprint": "sha256:...", "observed": ["container:web:1 ... running ...", ...],
    "plan": {<the shape of --format json>}, "checksum": "sha256:..."}

Examples:
   stack plan
   stack plan --format json | jq .actions
   stack plan -out web.plan; stack apply web.plan`,
		Flags: append(append(stackFileFlags(false), planFlags()...),
			&cli.StringFlag{Name: "format", Usage: "text or json", Value: "text"},
			&cli.BoolFlag{Name: "no-start", Usage: "plan creating containers without starting them"},
			&cli.StringFlag{Name: "out", Usage: "also save the plan to `FILE`, for stack apply FILE"},
		),
		Action: func(c *cli.Context) error {
			popts, err := planOptions(c)
			if err != nil {
				return err
			}
			p, err := openProject(c, true)
			if err != nil {
				return err
			}
			obs, err := p.eng.Observe(c.Context)
			if err != nil {
				return err
			}
			pl, err := planner.Compute(p.stack, obs, popts)
			if err != nil {
				return err
			}
			if c.String("format") == "json" {
				err = pl.WriteJSON(c.App.Writer)
			} else {
				err = pl.WriteText(c.App.Writer)
			}
			if err != nil {
				return err
			}
			if out := c.String("out"); out != "" {
				src, err := planSource(c, p.stack)
				if err != nil {
					return err
				}
				saved, err := planner.NewSaved(pl, p.stack, obs, popts, src, time.Now())
				if err != nil {
					return err
				}
				data, err := saved.Encode()
				if err != nil {
					return err
				}
				if err := state.WriteFile(out, data, 0o600); err != nil {
					return fmt.Errorf("save the plan: %w", err)
				}
				var note io.Writer = c.App.Writer
				if c.String("format") == "json" {
					note = c.App.ErrWriter // stdout holds only the JSON
				}
				fmt.Fprintf(note, "Saved the plan to %s. To apply exactly this plan: stack apply %s\n", out, out)
			}
			if !pl.Empty() {
				return pendingChanges{}
			}
			return nil
		},
	}
}

// planSource records how the stack was loaded, with absolute paths, so that stack apply FILE
// loads the same files from any directory.
func planSource(c *cli.Context, st *spec.Stack) (planner.Source, error) {
	o := loadOptions(c)
	src := planner.Source{ProjectDirectory: st.WorkingDir, Profiles: o.Profiles}
	for _, list := range []struct {
		in  []string
		out *[]string
	}{{st.Files, &src.Files}, {o.EnvFiles, &src.EnvFiles}} {
		for _, f := range list.in {
			a, err := filepath.Abs(f)
			if err != nil {
				return src, fmt.Errorf("save the plan: %w", err)
			}
			*list.out = append(*list.out, a)
		}
	}
	return src, nil
}
