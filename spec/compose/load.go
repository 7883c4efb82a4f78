package compose

import (
	"github.com/stackrun/stack/spec"

	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"gopkg.in/yaml.v3"
)

// Load loads, merges, interpolates and validates the stack file(s) of opts with compose-go and
// returns stack's model with the inputs a cache checks (spec.LoadFunc). opts.Cache is not used:
// spec.Load is the cache in front of this.
func Load(ctx context.Context, opts spec.Options) (*spec.Loaded, error) {
	l, err := newLoad(ctx, opts)
	if err != nil {
		return nil, err
	}
	st, err := l.run(ctx)
	if err != nil {
		return nil, err
	}
	return &spec.Loaded{Stack: st, Inputs: l.inputs(st), Uncacheable: l.uncacheable}, nil
}

// inputs lists the files st was made from: the stack files, the .env files (the default one
// also when it does not exist), env_file and label_file files.
func (l *load) inputs(st *spec.Stack) []string {
	paths := append([]string(nil), l.files...)
	for _, f := range l.po.EnvFiles {
		if abs, err := filepath.Abs(f); err == nil {
			paths = append(paths, abs)
		}
	}
	if wd, err := l.po.GetWorkingDir(); err == nil {
		if abs, err := filepath.Abs(filepath.Join(wd, ".env")); err == nil {
			paths = append(paths, abs)
		}
	}
	for _, s := range st.Services {
		for _, ef := range s.EnvFiles {
			paths = append(paths, ef.Path)
		}
	}
	if l.project != nil {
		for _, s := range l.project.Services {
			paths = append(paths, s.LabelFiles...)
		}
	}
	return paths
}

// LoadProject is Load that returns compose-go's project (merged, interpolated, normalized)
// instead of stack's model, after the same checks.
func LoadProject(ctx context.Context, opts spec.Options) (*types.Project, error) {
	_, p, err := LoadWithProject(ctx, opts)
	return p, err
}

// LoadWithProject is Load that also returns compose-go's project, which `stack config` prints
// (the Compose-compatible normalized form).
func LoadWithProject(ctx context.Context, opts spec.Options) (*spec.Stack, *types.Project, error) {
	l, err := newLoad(ctx, opts)
	if err != nil {
		return nil, nil, err
	}
	st, err := l.run(ctx)
	if err != nil {
		return nil, nil, err
	}
	return st, l.project, nil
}

// load is the state of one Load call.
type load struct {
	opts    spec.Options
	po      *cli.ProjectOptions
	files   []string // the -f files, absolute, in merge order
	pos     *positions
	c       *collector
	found   []loader.UnsupportedAttribute
	project *types.Project
	// uncacheable is set when the load read files it cannot list for the cache: include:
	// (with its own .env files) and extends: file:.
	uncacheable bool
}

func newLoad(ctx context.Context, opts spec.Options) (*load, error) {
	env := opts.Environ
	if env == nil {
		env = os.Environ()
	}
	l := &load{opts: opts, pos: newPositions()}
	files := opts.Files
	if spec.UsesDefaultFiles(opts) {
		found, err := spec.FindDefaultFiles(opts.ProjectDirectory)
		if err != nil {
			return nil, err
		}
		files = found
	}
	po, err := cli.NewProjectOptions(files,
		cli.WithName(opts.ProjectName),
		cli.WithWorkingDirectory(opts.ProjectDirectory),
		cli.WithEnv(env),
		cli.WithEnvFiles(opts.EnvFiles...),
		cli.WithDotEnv,
		cli.WithConfigFileEnv,
		cli.WithProfiles(opts.Profiles),
		// stack checks consistency itself, to report every problem rather than the first.
		cli.WithConsistency(false),
		cli.WithLoadOptions(
			// computed when compose-go loads, not here: a load served from the cache needs neither.
			func(o *loader.Options) { loader.WithSupportedAttributes(supportedPaths(), nil)(o) },
			loader.WithUnsupportedAttributesCheck(valuePatterns(), func(found []loader.UnsupportedAttribute) {
				l.found = found
			}),
		),
	)
	if err != nil {
		return nil, fmt.Errorf("load stack file: %w", err)
	}
	if len(po.ConfigPaths) == 0 {
		wd, _ := po.GetWorkingDir()
		return nil, fmt.Errorf("load stack file: %w in %s or its parents (looked for %s)", spec.ErrNoStackFile, wd, strings.Join(spec.DefaultFileNames(), ", "))
	}
	po.WithListeners(func(event string, meta map[string]any) {
		if _, ok := meta["file"]; ok && event == "extends" {
			l.uncacheable = true
		}
	})
	l.po = po
	for _, f := range po.ConfigPaths {
		if f == "-" {
			continue
		}
		abs, err := filepath.Abs(f)
		if err != nil {
			return nil, fmt.Errorf("load stack file %s: %w", f, err)
		}
		l.files = append(l.files, abs)
	}
	return l, nil
}

func (l *load) run(ctx context.Context) (*spec.Stack, error) {
	// 1. Read every file (and what it includes) with yaml.v3: enforce the limits before
	//    compose-go decodes anything, and index key positions.
	seen := map[string]bool{}
	var sources []*source
	for _, f := range l.files {
		srcs, err := l.readWithIncludes(f, seen, 0)
		if err != nil {
			return nil, l.display(err)
		}
		sources = append(sources, srcs...)
	}
	for _, s := range sources {
		l.pos.add(s)
	}
	l.c = &collector{pos: l.pos, defaultFile: firstOr(l.files, ""), portRefs: map[string][]portRef{}}
	for i, s := range sources {
		checkReferences(s, l.po.Environment, l.c)
		warnUnsetVariables(s, l.pos.files[i], l.po.Environment, l.c)
	}
	if err := l.c.result(l.files); err != nil {
		return nil, l.display(err)
	}

	// 2. compose-go: merge, interpolate, profiles, extends, include, normalize.
	p, err := l.po.LoadProject(ctx)
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, err
		}
		for _, e := range splitJoined(err) {
			l.c.add(l.composeProblem(e))
		}
		return nil, l.display(l.c.result(l.files))
	}
	l.project = p

	// 3. keys stack does not implement. compose-go drops version: before its check (and logs
	// its own warning through logrus, which the CLI silences).
	if _, ok := l.pos.exact("version", 0); ok {
		l.c.warnf("version", "version is obsolete and ignored")
	}
	l.reportUnsupported()

	// 4. convert, then validate the model.
	st := convert(p, l.c)
	numCPU := l.opts.NumCPU
	validate(st, p, l.c, numCPU)
	if err := l.c.result(l.files); err != nil {
		return nil, l.display(err)
	}
	for _, svc := range st.Services {
		svc.Hash = spec.Hash(svc)
	}
	st.Warnings = l.c.warnings
	sortProblems(st.Warnings, l.files)
	l.display(spec.Problems(st.Warnings))
	return st, nil
}

// display rewrites the files of problems relative to the working directory when they are below
// it, as a user typing stack config -f stack.yaml expects to read them back.
func (l *load) display(err error) error {
	var ps spec.Problems
	if !errors.As(err, &ps) {
		return err
	}
	wd, werr := os.Getwd()
	if werr != nil {
		return err
	}
	for _, p := range ps {
		if !filepath.IsAbs(p.File) {
			continue
		}
		if rel, rerr := filepath.Rel(wd, p.File); rerr == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
			p.File = rel
		}
	}
	return err
}

// readWithIncludes reads path and, depth first, the files its include: section names (which
// compose-go merges before path itself), so their limits are checked and their keys indexed.
func (l *load) readWithIncludes(path string, seen map[string]bool, depth int) ([]*source, error) {
	if seen[path] || depth > 8 {
		return nil, nil
	}
	seen[path] = true
	src, err := readSource(path)
	if err != nil {
		var p *spec.Problem
		if errors.As(err, &p) {
			return nil, spec.Problems{p}
		}
		return nil, fmt.Errorf("load stack file: %w", err)
	}
	var out []*source
	for _, doc := range src.Docs {
		inc := mapValue(docRoot(doc), "include")
		if inc == nil {
			continue
		}
		l.uncacheable = true
		if inc.Kind != yaml.SequenceNode {
			continue
		}
		for _, e := range inc.Content {
			var paths []string
			switch e.Kind {
			case yaml.ScalarNode:
				paths = append(paths, e.Value)
			case yaml.MappingNode:
				pn := mapValue(e, "path")
				if pn == nil {
					continue
				}
				if pn.Kind == yaml.ScalarNode {
					paths = append(paths, pn.Value)
				}
				for _, x := range pn.Content {
					paths = append(paths, x.Value)
				}
			}
			for _, ip := range paths {
				if ip == "" || containsVar(ip) {
					continue
				}
				if !filepath.IsAbs(ip) {
					ip = filepath.Join(filepath.Dir(path), ip)
				}
				if _, err := os.Stat(ip); err != nil {
					continue // compose-go reports it
				}
				srcs, err := l.readWithIncludes(ip, seen, depth+1)
				if err != nil {
					return nil, err
				}
				out = append(out, srcs...)
			}
		}
	}
	return append(out, src), nil
}

// splitJoined returns the errors joined inside err (compose-go reports every failed
// interpolation at once with errors.Join), or err itself.
func splitJoined(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, splitJoined(e)...)
		}
		return out
	}
	// A wrapper around a join (several lines): the joined errors carry their own context.
	if u := errors.Unwrap(err); u != nil && strings.Contains(err.Error(), "\n") {
		if inner := splitJoined(u); len(inner) > 1 {
			return inner
		}
	}
	return []error{err}
}

func containsVar(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '$' {
			return true
		}
	}
	return false
}

func firstOr(s []string, def string) string {
	if len(s) > 0 {
		return s[0]
	}
	return def
}
