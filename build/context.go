package build

import (
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// source is a tree COPY and ADD read from: the build context (with its .dockerignore, every
// path resolved inside it) or the rootfs of another stage or image (--from).
type source struct {
	dir  string
	what string // for messages: "the build context", "stage builder", "image busybox"
	// ignore excludes context paths (.dockerignore); nil excludes nothing.
	ignore *patternmatcher.PatternMatcher
	// context is true for the build context: its files become root-owned unless --chown, and
	// a symlink pointing out of it is refused. Rootfs sources keep owners and resolve symlinks
	// inside themselves, as the container would.
	context bool
}

// openContext opens a build context directory with the .dockerignore that applies to the
// Dockerfile: <Dockerfile>.dockerignore next to it wins over .dockerignore at the context root,
// as in BuildKit.
func openContext(dir, dockerfile string) (*source, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("build context: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("build context %s is not a directory", dir)
	}
	src := &source{dir: abs, what: "the build context", context: true}
	candidates := []string{filepath.Join(abs, ".dockerignore")}
	if dockerfile != "" {
		candidates = append([]string{dockerfile + ".dockerignore"}, candidates...)
	}
	for _, p := range candidates {
		f, err := os.Open(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		patterns, err := ignorefile.ReadAll(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		pm, err := patternmatcher.New(patterns)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		src.ignore = pm
		break
	}
	return src, nil
}

// excluded reports whether rel (slash-separated, relative to the root) is excluded.
func (s *source) excluded(rel string) bool {
	if s.ignore == nil || rel == "." {
		return false
	}
	ok, err := s.ignore.MatchesOrParentMatches(rel)
	return err == nil && ok
}

// cleanSource turns a COPY source as written into a path relative to the root, refusing one
// that climbs out of it. A leading "/" means the root, as in Docker.
func cleanSource(src string) (string, error) {
	s := strings.TrimLeft(filepath.ToSlash(src), "/")
	if s == "" {
		return ".", nil
	}
	c := path.Clean(s)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", errEscape
	}
	return c, nil
}

var errEscape = errors.New("outside the build context")

// resolve returns the paths (relative to the root, sorted) that src names: one path, or every
// match of a wildcard pattern.
func (s *source) resolve(src string) ([]string, error) {
	rel, err := cleanSource(src)
	if err != nil {
		if !s.context {
			return nil, fmt.Errorf("source %q climbs out of the root of %s", src, s.what)
		}
		return nil, fmt.Errorf("source %q is %w", src, err)
	}
	if strings.ContainsAny(rel, "*?[") {
		return s.glob(src, rel)
	}
	if s.excluded(rel) {
		return nil, fmt.Errorf("source %q not found in %s (excluded by .dockerignore)", src, s.what)
	}
	if s.context {
		// A symlink in the context that points out of it (absolute or through ..).
		if real, err := filepath.EvalSymlinks(filepath.Join(s.dir, rel)); err == nil && !within(s.dir, real) {
			return nil, fmt.Errorf("source %q is %w: it resolves to %s", src, errEscape, real)
		}
	}
	p, err := securejoin.SecureJoin(s.dir, rel)
	if err != nil {
		return nil, fmt.Errorf("resolve %q in %s: %w", src, s.what, err)
	}
	if _, err := os.Lstat(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("source %q not found in %s", src, s.what)
		}
		return nil, err
	}
	return []string{rel}, nil
}

func within(root, p string) bool {
	return p == root || strings.HasPrefix(p, root+string(filepath.Separator))
}

// glob matches pattern (path.Match syntax per component) against every path of the root.
func (s *source) glob(src, pattern string) ([]string, error) {
	if _, err := path.Match(pattern, ""); err != nil {
		return nil, fmt.Errorf("source %q: bad pattern: %w", src, err)
	}
	depth := strings.Count(pattern, "/")
	var out []string
	err := filepath.WalkDir(s.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(s.dir, p)
		rel = filepath.ToSlash(rel)
		if rel == "." {
			return nil
		}
		n := strings.Count(rel, "/")
		if ok, _ := path.Match(pattern, rel); ok && !s.excluded(rel) {
			out = append(out, rel)
		}
		if d.IsDir() && n >= depth {
			return filepath.SkipDir
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("match %q in %s: %w", src, s.what, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("source %q: no files match in %s", src, s.what)
	}
	sort.Strings(out)
	return out, nil
}

// path returns the host path of rel, resolved inside the root.
func (s *source) path(rel string) (string, error) {
	return securejoin.SecureJoin(s.dir, rel)
}

// hashInto writes everything of rel that a copy depends on (names, types, modes, link
// targets, content; not times or owners, which COPY does not keep from the context) to h.
func (s *source) hashInto(h hash.Hash, rel string) error {
	top, err := s.path(rel)
	if err != nil {
		return err
	}
	return s.walk(top, rel, func(p, r string, fi fs.FileInfo) error {
		fmt.Fprintf(h, "%s\x00%o\x00", r, fi.Mode())
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "%s\x00", t)
		case fi.Mode().IsRegular():
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			n, err := io.Copy(h, f)
			f.Close()
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "\x00%s\x00", strconv.FormatInt(n, 10))
		}
		return nil
	})
}

// walk calls fn for top (already resolved; followed if a symlink, as Docker follows a named
// source) and, when it is a directory, everything below it in lexical order without following
// symlinks, skipping excluded paths. r is each entry's path relative to the root.
func (s *source) walk(top, rel string, fn func(p, r string, fi fs.FileInfo) error) error {
	fi, err := os.Stat(top)
	if err != nil {
		fi, err = os.Lstat(top) // a dangling symlink is copied as the link
		if err != nil {
			return err
		}
	}
	if err := fn(top, rel, fi); err != nil {
		return err
	}
	if !fi.IsDir() {
		return nil
	}
	var rec func(dir, r string) error
	rec = func(dir, r string) error {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
		for _, e := range ents {
			cr := path.Join(r, e.Name())
			if s.excluded(cr) {
				if e.IsDir() && s.ignore != nil && !s.ignore.Exclusions() {
					continue
				}
				if !e.IsDir() {
					continue
				}
			}
			p := filepath.Join(dir, e.Name())
			info, err := e.Info()
			if err != nil {
				return err
			}
			if !s.excluded(cr) {
				if err := fn(p, cr, info); err != nil {
					return err
				}
			}
			if info.IsDir() {
				if err := rec(p, cr); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return rec(top, rel)
}
