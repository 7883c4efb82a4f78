package spec

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"runtime"
	"sort"
)

// Cache keeps loaded stacks between commands, keyed by everything a load depends on, so a
// command run again on an unchanged stack file skips compose-go: its first load in a process
// compiles the Compose JSON schema and costs about 100 ms, against about 1 ms for a cache hit.
// Implementations store opaque bytes; a lost or damaged entry is only a miss.
type Cache interface {
	Get(key string) ([]byte, bool)
	Put(key string, data []byte) error
}

// cacheVersion changes whenever the encoded entry or the meaning of the model changes.
const cacheVersion = 1

// cacheEntry is what a cache holds: the stack and the files it was made from, each with the
// digest of its content ("" for an optional file that did not exist), checked on every hit.
type cacheEntry struct {
	Version int
	Inputs  []cacheInput
	Stack   *Stack
}

type cacheInput struct {
	Path   string
	Digest string
}

// cacheKey names the entry for this load: the options, the working directory, the files found,
// the whole environment (after .env and --env-file, so their values count) and the caller's
// salt (which build of stack made the entry). Anything else a load reads is a cacheInput.
func (l *load) cacheKey() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	env := make([]string, 0, len(l.po.Environment))
	for k, v := range l.po.Environment {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	numCPU := l.opts.NumCPU
	if numCPU == 0 {
		numCPU = runtime.NumCPU()
	}
	b, err := json.Marshal(struct {
		Version                   int
		Salt, WD, Name, Dir       string
		Files, EnvFiles, Profiles []string
		Paths, Env                []string
		NumCPU                    int
	}{cacheVersion, l.opts.CacheSalt, wd, l.opts.ProjectName, l.opts.ProjectDirectory,
		l.opts.Files, l.opts.EnvFiles, l.opts.Profiles, l.po.ConfigPaths, env, numCPU})
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// fromCache returns the cached stack for key when every input file still has the recorded
// content.
func (l *load) fromCache(key string) (*Stack, bool) {
	data, ok := l.opts.Cache.Get(key)
	if !ok {
		return nil, false
	}
	var e cacheEntry
	if err := json.Unmarshal(data, &e); err != nil || e.Version != cacheVersion || e.Stack == nil {
		return nil, false
	}
	for _, in := range e.Inputs {
		d, err := fileDigest(in.Path)
		if err != nil || d != in.Digest {
			return nil, false
		}
	}
	return e.Stack, true
}

// toCache stores st under key with the files it was made from. Loads that read files stack
// cannot list exactly (include:, extends: file:) are not cached.
func (l *load) toCache(key string, st *Stack) {
	if l.uncacheable {
		return
	}
	paths := append([]string(nil), l.files...)
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
	e := cacheEntry{Version: cacheVersion, Stack: st}
	seen := map[string]bool{}
	for _, p := range paths {
		if seen[p] {
			continue
		}
		seen[p] = true
		d, err := fileDigest(p)
		if err != nil {
			return
		}
		e.Inputs = append(e.Inputs, cacheInput{Path: p, Digest: d})
	}
	data, err := json.Marshal(e)
	if err != nil {
		return
	}
	_ = l.opts.Cache.Put(key, data) // a cache that cannot be written is only slower
}

// fileDigest is the sha256 of path's content, "" when it does not exist.
func fileDigest(path string) (string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}
