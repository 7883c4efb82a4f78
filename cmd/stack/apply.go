package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/urfave/cli/v2"

	"github.com/stackrun/stack/engine"
	"github.com/stackrun/stack/planner"
	"github.com/stackrun/stack/spec"
)

func applyCommand() *cli.Command {
	return &cli.Command{
		Name:      "apply",
		Usage:     "apply a plan saved by stack plan -out, exactly, unless the stack or the host changed since",
		ArgsUsage: "FILE",
		Description: `Loads the stack file(s) the plan was made from (the file names them, with the project,
the project directory, env files and profiles), observes the host, and applies the saved plan
action for action. It refuses, changing nothing, when the stack resolves to something else now
(a file or the environment it interpolates changed), when the project's containers, networks,
volumes or the images its services use changed since the plan was made, or when FILE is not an intact
saved plan of this version (see stack plan --help for its shape). Then plan again.
Returns once the plan is applied, as up -d does.

Examples:
   stack plan -out web.plan          # review it, then:
   stack apply web.plan
   stack apply --wait web.plan`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "wait", Usage: "wait until services are running and healthy"},
			&cli.DurationFlag{Name: "wait-timeout", Usage: "give up --wait after this long", Value: 0},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print nothing but errors"},
			&cli.StringFlag{Name: "progress", Usage: "progress output: plain or json", Value: "plain"},
			&cli.BoolFlag{Name: "no-wait-lock", Usage: "fail instead of waiting when another command works on the project"},
			&cli.StringFlag{Name: "runtime", Usage: "OCI runtime: builtin, runc, crun or a path", Value: "builtin"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usageError{fmt.Errorf("apply takes one argument, the saved plan file (stack plan -out FILE)")}
			}
			return runSaved(c, c.Args().First(), true)
		},
	}
}

// maxSavedPlan bounds what is read of a file to tell whether it is a saved plan.
const maxSavedPlan = 64 << 20

// isSavedPlan reports whether path is a regular file holding a saved plan (of any version), so
// that up FILE tells a plan from a service name by content, not by name.
func isSavedPlan(path string) bool {
	fi, err := os.Stat(path)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() > maxSavedPlan {
		return false
	}
	data, err := os.ReadFile(path)
	return err == nil && planner.IsSaved(data)
}

// notAPlan explains, for an argument that named no service, that a file of that name exists
// but is not a saved plan.
func notAPlan(arg string) string {
	fi, err := os.Stat(arg)
	if err != nil || !fi.Mode().IsRegular() {
		return ""
	}
	data, err := os.ReadFile(arg)
	if err != nil {
		return ""
	}
	_, err = planner.DecodeSaved(data)
	return fmt.Sprintf(" (%s is a file, but %v)", arg, err)
}

// readSavedPlan reads and checks a saved plan file.
func readSavedPlan(path string) (*planner.Saved, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read saved plan: %w", err)
	}
	if fi.Size() > maxSavedPlan {
		return nil, fmt.Errorf("saved plan %s: %w: %d bytes, larger than any saved plan", path, planner.ErrInvalid, fi.Size())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read saved plan: %w", err)
	}
	s, err := planner.DecodeSaved(data)
	if err != nil {
		return nil, fmt.Errorf("saved plan %s: %w", path, err)
	}
	return s, nil
}

// planFlagNames are up's flags that change the plan: a saved plan carries its own.
var planFlagNames = []string{"remove-orphans", "force-recreate", "no-recreate", "no-deps", "scale", "pull", "build", "no-start"}

// runSaved applies the saved plan in path (stack apply FILE, stack up FILE).
func runSaved(c *cli.Context, path string, detach bool) error {
	for _, name := range planFlagNames {
		if c.IsSet(name) {
			return usageError{fmt.Errorf("--%s: a saved plan is applied with the options it was made with", name)}
		}
	}
	saved, err := readSavedPlan(path)
	if err != nil {
		return err
	}
	opts, err := savedLoadOptions(c, saved)
	if err != nil {
		return err
	}
	p, err := openProjectWith(c, withLoadCache(c, opts), true)
	if err != nil {
		return err
	}
	ctx, stop, out, prog := hostSession(c)
	defer stop()
	_, err = p.eng.ApplySaved(ctx, p.stack, saved, engine.ApplyOptions{
		OnEvent: prog.event, Lock: engine.LockOptions{NoWait: c.Bool("no-wait-lock")},
	}, upReview(p, prog, out))
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return afterUp(ctx, c, p, prog, saved.PlanOptions(), detach)
}

// savedLoadOptions loads the stack as the saved plan records it. Stack file flags given now
// must agree with it: a plan is not applied to another file or project.
func savedLoadOptions(c *cli.Context, s *planner.Saved) (spec.Options, error) {
	src := s.Source
	saved := spec.Options{Files: src.Files, ProjectName: s.Project, ProjectDirectory: src.ProjectDirectory,
		EnvFiles: src.EnvFiles, Profiles: src.Profiles, Loader: loadWithLoader}
	given := loadOptions(c)
	mismatch := func(flag string, now, then any) error {
		return usageError{fmt.Errorf("%s %v: the saved plan was made with %v; a saved plan applies to what it was made from", flag, now, then)}
	}
	if given.ProjectName != "" && given.ProjectName != s.Project {
		return saved, mismatch("-p", given.ProjectName, s.Project)
	}
	if len(given.Files) > 0 && !slices.Equal(absAll(given.Files), src.Files) {
		return saved, mismatch("-f", given.Files, src.Files)
	}
	if len(given.EnvFiles) > 0 && !slices.Equal(absAll(given.EnvFiles), src.EnvFiles) {
		return saved, mismatch("--env-file", given.EnvFiles, src.EnvFiles)
	}
	if len(given.Profiles) > 0 && !slices.Equal(given.Profiles, src.Profiles) {
		return saved, mismatch("--profile", given.Profiles, src.Profiles)
	}
	if given.ProjectDirectory != "" {
		if d, _ := filepath.Abs(given.ProjectDirectory); d != src.ProjectDirectory {
			return saved, mismatch("--project-directory", given.ProjectDirectory, src.ProjectDirectory)
		}
	}
	return saved, nil
}

func absAll(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i], _ = filepath.Abs(p)
	}
	return out
}
