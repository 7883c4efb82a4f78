package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// v2 drives a unified hierarchy: one directory per container holds every controller's files,
// controllers are switched on top-down through cgroup.subtree_control, and the device allowlist
// is an eBPF program attached to the directory.
type v2 struct {
	base  string // mountpoint + own cgroup (+ parent): exists before any Apply
	rmdir func(string) error
	// attachDevices installs the device allowlist; tests of fake trees replace it, since
	// attaching needs a real cgroup2 directory.
	attachDevices func(dir string, rules []specs.LinuxDeviceCgroup) error
}

// NewV2 returns the v2 driver for the cgroup2 hierarchy mounted at mountpoint whose parent
// cgroup is own, relative to mountpoint.
func NewV2(mountpoint, own string) Driver {
	return &v2{
		base:          filepath.Join(mountpoint, own),
		rmdir:         rmdirCgroup,
		attachDevices: attachDeviceFilter,
	}
}

func (d *v2) Paths(path string) map[string]string {
	return map[string]string{"": filepath.Join(d.base, path)}
}

func (d *v2) Apply(path string, res *specs.LinuxResources) error {
	if err := checkRel("path", path); err != nil {
		return err
	}
	if err := d.apply(path, res); err != nil {
		return fmt.Errorf("apply cgroup %s: %w", path, err)
	}
	return nil
}

func (d *v2) apply(path string, res *specs.LinuxResources) error {
	rules, settings, err := plan(V2, res)
	if err != nil {
		return err
	}
	if err := mkdirs(d.base, path); err != nil {
		return fmt.Errorf("create cgroup: %w", err)
	}
	if err := d.enableControllers(path, settings); err != nil {
		return err
	}
	dir := filepath.Join(d.base, path)
	if err := d.attachDevices(dir, rules); err != nil {
		return fmt.Errorf("install device allowlist: %w", err)
	}
	for _, s := range settings {
		if err := writeFile(dir, s.File, s.Value); err != nil {
			return fmt.Errorf("set %s: %w", s.File+"="+s.Value, err)
		}
	}
	return nil
}

// enableControllers switches on, in every cgroup from the parent down to the container's
// parent, the controllers the settings need, plus memory, pids and cpu where available so that
// Stats has numbers to read. Only the needed ones are an error when they cannot be enabled: the
// kernel refuses to enable controllers in a non-root cgroup that has processes of its own, so
// the parent should be a cgroup that holds no processes (a delegated, empty parent).
func (d *v2) enableControllers(path string, settings []Setting) error {
	need := map[string]bool{}
	for _, s := range settings {
		need[s.Controller] = true
	}
	avail, err := readString(d.base, "cgroup.controllers")
	if err != nil {
		if len(need) == 0 {
			return nil
		}
		return fmt.Errorf("read available controllers: %w", err)
	}
	have := map[string]bool{}
	for _, c := range strings.Fields(avail) {
		have[c] = true
	}
	var want []string
	for c := range need {
		if !have[c] {
			return fmt.Errorf("controller %s is not available in %s (cgroup.controllers: %q)", c, d.base, avail)
		}
		want = append(want, c)
	}
	for _, c := range []string{"cpu", "memory", "pids"} {
		if have[c] && !need[c] {
			want = append(want, c)
		}
	}
	sort.Strings(want)
	// Enable in the parent and every cgroup between it and the container's, not in the
	// container's own: a leaf needs its controllers on in its parent only.
	dir := d.base
	parts := strings.Split(filepath.ToSlash(path), "/")
	for _, part := range parts[:len(parts)-1] {
		if err := enableIn(dir, want, need); err != nil {
			return err
		}
		dir = filepath.Join(dir, part)
	}
	return enableIn(dir, want, need)
}

// enableIn writes each controller separately so an optional one that fails does not keep the
// needed ones off.
func enableIn(dir string, want []string, need map[string]bool) error {
	cur, _ := readString(dir, "cgroup.subtree_control")
	on := map[string]bool{}
	for _, c := range strings.Fields(cur) {
		on[c] = true
	}
	for _, c := range want {
		if on[c] {
			continue
		}
		err := writeFile(dir, "cgroup.subtree_control", "+"+c)
		switch {
		case err == nil || !need[c]:
		case errors.Is(err, unix.EBUSY):
			return fmt.Errorf("enable controller %s in %s: the cgroup has processes of its own, "+
				"so the kernel keeps controllers off below it; use a parent cgroup that holds no processes: %w", c, dir, err)
		default:
			return fmt.Errorf("enable controller %s: %w", c, err)
		}
	}
	return nil
}

func (d *v2) AddProc(path string, pid int) error {
	if err := checkRel("path", path); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(d.base, path), "cgroup.procs", strconv.Itoa(pid)); err != nil {
		return fmt.Errorf("add pid %d to cgroup %s: %w", pid, path, err)
	}
	return nil
}

func (d *v2) Stats(path string) (*Stats, error) {
	if err := checkRel("path", path); err != nil {
		return nil, err
	}
	st, err := d.stats(filepath.Join(d.base, path))
	if err != nil {
		return nil, fmt.Errorf("read stats of cgroup %s: %w", path, err)
	}
	return st, nil
}

func (d *v2) stats(dir string) (*Stats, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, err
	}
	st := &Stats{}
	var errs []error
	read := func(file string, dst *uint64) {
		n, err := readUint(dir, file)
		if err != nil {
			errs = append(errs, optional(err))
			return
		}
		*dst = n
	}
	read("memory.current", &st.MemoryUsage)
	read("memory.max", &st.MemoryLimit)
	read("memory.peak", &st.MemoryMaxUsage) // Linux 5.19+
	ev, err := readKeyed(dir, "memory.events")
	errs = append(errs, optional(err))
	st.OOMKills = ev["oom_kill"]
	cs, err := readKeyed(dir, "cpu.stat")
	errs = append(errs, optional(err))
	st.CPUUsageNanos = cs["usage_usec"] * 1000
	read("pids.current", &st.Pids)
	read("pids.max", &st.PidsLimit)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return st, nil
}

func (d *v2) Pids(path string) ([]int, error) {
	if err := checkRel("path", path); err != nil {
		return nil, err
	}
	pids, err := readPids(filepath.Join(d.base, path))
	if err != nil {
		return nil, fmt.Errorf("list pids of cgroup %s: %w", path, err)
	}
	return pids, nil
}

func (d *v2) Remove(path string) error {
	if err := checkRel("path", path); err != nil {
		return err
	}
	if err := removeTree(filepath.Join(d.base, path), d.rmdir); err != nil {
		return fmt.Errorf("remove cgroup %s: %w", path, err)
	}
	return nil
}
