// Package cgroups owns the control groups of containers: it finds where the host mounts its
// cgroup hierarchies (v1, hybrid or unified v2), creates one cgroup per container below the
// calling process's own cgroup, writes the resource limits of an OCI runtime config into it
// (memory, cpu, pids, the device allowlist), moves processes into it, reads its statistics, and
// removes it.
//
// Every cgroup it touches lies below the caller's own cgroup in each hierarchy; a configurable
// parent is a path relative to that own cgroup, never anywhere else. The package does not start
// or signal processes and knows nothing of containers beyond a relative cgroup path.
//
// Privileged work is split in two: Settings computes the file name/value pairs for the
// requested limits, per cgroup version, as plain data; the drivers write them.
package cgroups

import (
	"errors"
	"fmt"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Driver manages cgroups of one layout (v1 or v2) below one parent cgroup. The path given to
// every method is relative to that parent, e.g. "stack/<container-id>".
type Driver interface {
	// Apply creates the cgroup (in every managed hierarchy) and writes the limits in res; a nil
	// res still installs the default device allowlist. Applying again updates the limits. After
	// an error the cgroup may exist half-configured: Remove it.
	Apply(path string, res *specs.LinuxResources) error
	// AddProc moves pid into the cgroup in every managed hierarchy.
	AddProc(path string, pid int) error
	// Stats reads memory, cpu, pids and OOM counters of the cgroup.
	Stats(path string) (*Stats, error)
	// Pids lists the processes in the cgroup (not in its descendants).
	Pids(path string) ([]int, error)
	// Remove deletes the cgroup and any cgroups below it; removing a missing cgroup is not an
	// error. The cgroup must hold no live process (kill them first): a cgroup that stays busy
	// for a few seconds is an error.
	Remove(path string) error
	// Paths maps each managed controller to the cgroup's absolute directory (what exec joins);
	// v2 has exactly one entry, with the key "".
	Paths(path string) map[string]string
}

// Stats are the counters of one cgroup. Zero means "not available" for the limits.
type Stats struct {
	MemoryUsage    uint64 // bytes in use now (v1 memory.usage_in_bytes, v2 memory.current)
	MemoryLimit    uint64 // bytes; 0 when unlimited
	MemoryMaxUsage uint64 // high-water mark (v1 memory.max_usage_in_bytes, v2 memory.peak)
	MemoryFailCnt  uint64 // times the limit was hit (v1 only)
	OOMKills       uint64 // processes killed by the OOM killer in this cgroup
	CPUUsageNanos  uint64 // total cpu time consumed
	Pids           uint64 // tasks now in the cgroup
	PidsLimit      uint64 // 0 when unlimited
}

// OOMKilled reports whether the OOM killer killed a process of the cgroup at path. Call it after
// the container's process exited and before Remove.
func OOMKilled(d Driver, path string) (bool, error) {
	st, err := d.Stats(path)
	if err != nil {
		return false, fmt.Errorf("check oom kills of cgroup %s: %w", path, err)
	}
	return st.OOMKills > 0, nil
}

// ErrInvalid is wrapped by errors about a cgroup path or a resource value that cannot be used.
var ErrInvalid = errors.New("invalid")

// checkRel refuses paths that would leave the parent cgroup ("..", absolute paths).
func checkRel(what, p string) error {
	if p == "" || !filepath.IsLocal(p) {
		return fmt.Errorf("cgroup %s %q: must be a relative path below the parent: %w", what, p, ErrInvalid)
	}
	return nil
}
