package spec

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrNoStackFile is returned by Load when no -f is given and no default file exists; commands
// that can work from records alone (down -p, ps -p) check it with errors.Is.
var ErrNoStackFile = errors.New("no stack file found")

// Options says which stack file(s) to load and how, mirroring Compose's global flags.
type Options struct {
	Files            []string // -f, in order; empty means the default names in the working directory
	ProjectName      string   // -p
	ProjectDirectory string   // --project-directory
	EnvFiles         []string // --env-file
	Profiles         []string // --profile
	// Environ is the process environment used for interpolation; nil means os.Environ().
	Environ []string
	// NumCPU is the host's CPU count, the bound for cpus:; 0 means runtime.NumCPU().
	NumCPU int
	// Loader reads the files with compose-go: spec/compose.Load in this process, or the
	// stack-load executable (cmd/stack), so that commands on an unchanged stack file never link
	// or start compose-go. Load needs it unless the cache has the answer.
	Loader LoadFunc `json:"-"`
	// Cache, when set, keeps loaded stacks so an unchanged stack file loads without the Loader
	// (see Cache). CacheSalt identifies the build of the caller and of its loader; entries of
	// another build are never used.
	Cache     Cache  `json:"-"`
	CacheSalt string `json:"-"`
}

// LoadFunc loads, merges, interpolates and validates the stack file(s) named by opts (whose
// Cache it ignores). When the file is invalid the error is a Problems list holding every
// problem found, sorted by position; a missing default file is ErrNoStackFile; other errors (a
// file that cannot be read) are returned wrapped.
type LoadFunc func(ctx context.Context, opts Options) (*Loaded, error)

// Loaded is what a LoadFunc returns: the stack, and what a cache needs to know to serve it again.
type Loaded struct {
	Stack *Stack
	// Inputs are the files whose content the stack depends on beyond the options and the
	// environment: the stack files, .env files (also a default .env that did not exist: its
	// appearance changes the result), env_file and label_file files.
	Inputs []string
	// Uncacheable is set when the load read files it cannot list: include: and extends: file:.
	Uncacheable bool
}

// Load returns the stack of opts: from opts.Cache when it holds this load and every input file
// is unchanged, otherwise from opts.Loader, storing the result in the cache. Warnings (keys
// stack accepts but ignores) are in Stack.Warnings.
func Load(ctx context.Context, opts Options) (*Stack, error) {
	key := ""
	if opts.Cache != nil {
		var err error
		if key, err = cacheKey(opts); err == nil {
			if st, ok := fromCache(opts.Cache, key); ok {
				return st, nil
			}
		}
	}
	ld, err := callLoader(ctx, opts)
	if err != nil {
		return nil, err
	}
	if key != "" && !ld.Uncacheable {
		toCache(opts.Cache, key, ld)
	}
	return ld.Stack, nil
}

func callLoader(ctx context.Context, opts Options) (*Loaded, error) {
	if opts.Loader == nil {
		return nil, errors.New("load stack file: no loader configured (spec.Options.Loader)")
	}
	ld, err := opts.Loader(ctx, opts)
	if err != nil {
		return nil, err
	}
	if ld == nil || ld.Stack == nil {
		return nil, errors.New("load stack file: the loader returned no stack")
	}
	return ld, nil
}

// DefaultFileNames returns the names looked for, in order, in the project directory (then its
// parents) when no -f is given: stack's own names first, then Compose's (the same as
// compose-go's cli.DefaultFileNames, which a test of spec/compose checks).
func DefaultFileNames() []string {
	return []string{"stack.yaml", "stack.yml", "compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml"}
}

// composeOverrideFileNames are compose-go's cli.DefaultOverrideFileNames.
var composeOverrideFileNames = []string{"compose.override.yml", "compose.override.yaml", "docker-compose.override.yml", "docker-compose.override.yaml"}

// DefaultOverrideFileNames returns the override files looked for next to the default file
// named name.
func DefaultOverrideFileNames(name string) []string {
	if name == "stack.yaml" || name == "stack.yml" {
		return []string{"stack.override.yaml", "stack.override.yml"}
	}
	return composeOverrideFileNames
}

// UsesDefaultFiles reports whether a load of opts looks for the default file names: no -f and
// no COMPOSE_FILE in the environment.
func UsesDefaultFiles(opts Options) bool {
	return len(opts.Files) == 0 && !hasEnv(environ(opts), "COMPOSE_FILE")
}

func environ(opts Options) []string {
	if opts.Environ == nil {
		return os.Environ()
	}
	return opts.Environ
}

func hasEnv(env []string, name string) bool {
	for _, e := range env {
		if len(e) > len(name) && e[:len(name)] == name && e[len(name)] == '=' {
			return true
		}
	}
	return false
}

// FindDefaultFiles looks for a stack file in dir (default: the working directory) and its
// parents, like Compose does, plus the matching override file. It returns nil when there is
// none.
func FindDefaultFiles(dir string) ([]string, error) {
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, fmt.Errorf("find stack file: %w", err)
		}
		dir = wd
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("find stack file: %w", err)
	}
	for {
		for _, name := range DefaultFileNames() {
			p := filepath.Join(dir, name)
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
				files := []string{p}
				for _, o := range DefaultOverrideFileNames(name) {
					op := filepath.Join(dir, o)
					if fi, err := os.Stat(op); err == nil && fi.Mode().IsRegular() {
						files = append(files, op)
						break
					}
				}
				return files, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return nil, nil
		}
		dir = parent
	}
}
