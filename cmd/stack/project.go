package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/stackrun/stack/build"
	"github.com/stackrun/stack/engine"
	"github.com/stackrun/stack/engine/local"
	"github.com/stackrun/stack/spec"
	"github.com/stackrun/stack/state"
)

// project is one project opened for a command: its stack file when one was found, the host's
// stores and the engine bound to them.
type project struct {
	name  string
	stack *spec.Stack // nil when working from records alone (down -p NAME without a file)
	host  *local.Host
	eng   *engine.Engine
}

// openProject loads the stack file and opens the host. With needFile false, a missing stack
// file is fine when -p names the project: commands like down, ps and logs work from the
// records on disk.
func openProject(c *cli.Context, needFile bool) (*project, error) {
	return openProjectWith(c, cachedLoadOptions(c), needFile)
}

// openProjectWith is openProject with the stack file named by opts instead of the flags (a
// saved plan names its own).
func openProjectWith(c *cli.Context, opts spec.Options, needFile bool) (*project, error) {
	st, err := spec.Load(c.Context, opts)
	if err != nil {
		if needFile || opts.ProjectName == "" || !missingFile(err) {
			return nil, stackFileError(err)
		}
		st = nil
	}
	for _, w := range warnings(st) {
		fmt.Fprintln(c.App.ErrWriter, "warning:", w)
	}
	name := opts.ProjectName
	if st != nil {
		name = st.Name
	}
	log := slog.New(slog.NewTextHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: slog.LevelWarn}))
	h, err := local.Open(c.String("root"), c.String("run-root"), log)
	if err != nil {
		return nil, fmt.Errorf("open state root: %w", err)
	}
	h.Stack = st
	if err := h.Reconcile(c.Context); err != nil {
		return nil, fmt.Errorf("reconcile host records: %w", err)
	}
	if rt := c.String("runtime"); rt != "" {
		h.Runtime = rt
	}
	eng, err := engine.New(engine.Config{
		Project: name, Root: c.String("root"), RunRoot: c.String("run-root"),
		Containers: local.Containers{Host: h}, Networks: h.EngineNetworks(),
		Volumes: local.Volumes{Host: h}, Images: local.Images{Host: h, BuildFunc: func(ctx context.Context, s *spec.Service) (string, error) {
			return build.Service(ctx, h.Images, s, build.Options{Output: c.App.ErrWriter, RuntimeHelper: local.ShimPath()})
		}},
	})
	if err != nil {
		return nil, err
	}
	return &project{name: name, stack: st, host: h, eng: eng}, nil
}

func warnings(st *spec.Stack) []string {
	if st == nil {
		return nil
	}
	var out []string
	for _, w := range st.Warnings {
		out = append(out, w.Error())
	}
	return out
}

// missingFile reports a load that failed only because no stack file was found.
func missingFile(err error) bool { return errors.Is(err, spec.ErrNoStackFile) }

// loadStack loads the stack file for commands that need nothing of the host (export), printing
// its warnings.
func loadStack(c *cli.Context) (*spec.Stack, error) {
	st, err := spec.Load(c.Context, loadOptions(c))
	if err != nil {
		return nil, stackFileError(err)
	}
	for _, w := range warnings(st) {
		fmt.Fprintln(c.App.ErrWriter, "warning:", w)
	}
	return st, nil
}

// cachedLoadOptions are loadOptions with the state root's cache of loaded stack files, so a
// command on an unchanged stack file skips compose-go (spec.Cache). Entries are salted with the
// identity of this executable and of stack-load: another build of either never reads them.
func cachedLoadOptions(c *cli.Context) spec.Options { return withLoadCache(c, loadOptions(c)) }

// withLoadCache adds the stack-file cache to opts.
func withLoadCache(c *cli.Context, opts spec.Options) spec.Options {
	exe, err := os.Executable()
	if err != nil {
		return opts
	}
	salt := fileIdentity(exe)
	if salt == "" {
		return opts
	}
	opts.Cache = state.Cache{Dir: filepath.Join(c.String("root"), "cache", "stackfiles")}
	// stack-load next to stack, as loaderPath finds it; "" when missing (a miss then fails
	// with loaderPath's message).
	opts.CacheSalt = salt + "; " + fileIdentity(filepath.Join(filepath.Dir(exe), "stack-load"))
	return opts
}

// fileIdentity names a build of the executable at path by its path, size and modification
// time; "" when it cannot be read.
func fileIdentity(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("%s %d %d", path, fi.Size(), fi.ModTime().UnixNano())
}
