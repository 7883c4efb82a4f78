package spec

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"runtime"
	"slices"
	"sort"
)

// Cache keeps loaded stacks between commands, keyed by everything a load depends on, so a
// command run again on an unchanged stack file skips compose-go (and, in the CLI, starting the
// stack-load executable that links it): a load through compose-go costs tens of milliseconds
// for a small file (its JSON schema alone takes ~15 ms to compile), a cache hit about 1 ms.
// Implementations store opaque bytes; a lost or damaged entry is only a miss.
type Cache interface {
	Get(key string) ([]byte, bool)
	Put(key string, data []byte) error
}

// cacheVersion changes whenever the encoded entry or the meaning of the model changes.
const cacheVersion = 2

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

// cacheKey names the entry for this load: the options, the working directory, the files a
// load without -f would find, the whole process environment (COMPOSE_* variables and
// interpolation) and the caller's salt (which build of stack and of its loader made the entry).
// Anything else a load reads is an input of the entry, checked by digest on every hit.
func cacheKey(opts Options) (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	var found []string
	if UsesDefaultFiles(opts) {
		if found, err = FindDefaultFiles(opts.ProjectDirectory); err != nil {
			return "", err
		}
	}
	env := slices.Clone(environ(opts))
	sort.Strings(env)
	numCPU := opts.NumCPU
	if numCPU == 0 {
		numCPU = runtime.NumCPU()
	}
	b, err := json.Marshal(struct {
		Version                   int
		Salt, WD, Name, Dir       string
		Files, EnvFiles, Profiles []string
		Found, Env                []string
		NumCPU                    int
	}{cacheVersion, opts.CacheSalt, wd, opts.ProjectName, opts.ProjectDirectory,
		opts.Files, opts.EnvFiles, opts.Profiles, found, env, numCPU})
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// fromCache returns the cached stack for key when every input file still has the recorded
// content.
func fromCache(c Cache, key string) (*Stack, bool) {
	data, ok := c.Get(key)
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

// toCache stores what ld loaded under key with the digests of its inputs.
func toCache(c Cache, key string, ld *Loaded) {
	e := cacheEntry{Version: cacheVersion, Stack: ld.Stack}
	seen := map[string]bool{}
	for _, p := range ld.Inputs {
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
	_ = c.Put(key, data) // a cache that cannot be written is only slower
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
