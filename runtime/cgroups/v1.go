package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// v1 drives a legacy or hybrid host: one hierarchy per controller (or group of co-mounted
// controllers), each with its own directory for the same container.
type v1 struct {
	mounts map[string]string // controller -> mountpoint
	own    map[string]string // controller -> parent cgroup relative to the mountpoint
	rmdir  func(string) error
}

// NewV1 returns the v1 driver for controllers mounted at mounts (controller -> mountpoint) whose
// parent cgroup is own (controller -> path relative to that mountpoint; /proc/self/cgroup's path
// when the mount's root is the hierarchy's root). Controllers missing from own are ignored.
func NewV1(mounts map[string]string, own map[string]string) Driver {
	d := &v1{mounts: map[string]string{}, own: map[string]string{}, rmdir: rmdirCgroup}
	for c, m := range mounts {
		if o, ok := own[c]; ok && managedV1(c) {
			d.mounts[c], d.own[c] = m, o
		}
	}
	return d
}

func (d *v1) Paths(path string) map[string]string {
	out := make(map[string]string, len(d.mounts))
	for c, m := range d.mounts {
		out[c] = filepath.Join(m, d.own[c], path)
	}
	return out
}

// dirs are the distinct cgroup directories of path, sorted; co-mounted controllers share one.
func (d *v1) dirs(path string) []string {
	seen := map[string]bool{}
	var out []string
	for _, dir := range d.Paths(path) {
		if !seen[dir] {
			seen[dir] = true
			out = append(out, dir)
		}
	}
	sort.Strings(out)
	return out
}

func (d *v1) Apply(path string, res *specs.LinuxResources) error {
	if err := checkRel("path", path); err != nil {
		return err
	}
	if err := d.apply(path, res); err != nil {
		return fmt.Errorf("apply cgroup %s: %w", path, err)
	}
	return nil
}

func (d *v1) apply(path string, res *specs.LinuxResources) error {
	rules, settings, err := plan(V1, res)
	if err != nil {
		return err
	}
	// Devices first: the allowlist is in place before any limit can fail half-way.
	settings = append(v1DeviceSettings(rules), settings...)

	paths := d.Paths(path)
	ctrls := make([]string, 0, len(paths))
	for c := range paths {
		ctrls = append(ctrls, c)
	}
	sort.Strings(ctrls)
	done := map[string]bool{}
	for _, c := range ctrls {
		dir := paths[c]
		if done[dir] {
			continue
		}
		done[dir] = true
		if err := mkdirs(filepath.Join(d.mounts[c], d.own[c]), path); err != nil {
			return fmt.Errorf("create %s cgroup: %w", c, err)
		}
	}
	if _, ok := paths["cpuset"]; ok {
		// A new cpuset starts with no cpus and no memory nodes, and takes no tasks until
		// both are set: every empty level below the parent inherits its parent's.
		dir := filepath.Join(d.mounts["cpuset"], d.own["cpuset"])
		for _, part := range strings.Split(filepath.ToSlash(path), "/") {
			dir = filepath.Join(dir, part)
			if err := inheritCpuset(dir); err != nil {
				return err
			}
		}
	}
	for _, s := range settings {
		dir, ok := paths[s.Controller]
		if !ok {
			return fmt.Errorf("set %s: cgroup v1 controller %s is not mounted", s, s.Controller)
		}
		if err := writeFile(dir, s.File, s.Value); err != nil {
			return fmt.Errorf("set %s: %w", s, err)
		}
	}
	return nil
}

func inheritCpuset(dir string) error {
	for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
		cur, err := readString(dir, f)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("init cpuset %s: %w", dir, err)
		}
		if cur != "" {
			continue
		}
		val, err := readString(filepath.Dir(dir), f)
		if err != nil {
			return fmt.Errorf("init cpuset %s: %w", dir, err)
		}
		if err := writeFile(dir, f, val); err != nil {
			return fmt.Errorf("init cpuset %s: %w", dir, err)
		}
	}
	return nil
}

func (d *v1) AddProc(path string, pid int) error {
	if err := checkRel("path", path); err != nil {
		return err
	}
	for _, dir := range d.dirs(path) {
		if err := writeFile(dir, "cgroup.procs", strconv.Itoa(pid)); err != nil {
			return fmt.Errorf("add pid %d to cgroup %s: %w", pid, path, err)
		}
	}
	return nil
}

// v1Unlimited: an unlimited v1 memory limit reads as the page counter's maximum
// (0x7FFFFFFFFFFFF000 with 4 KiB pages); anything this large is treated as no limit.
const v1Unlimited = 1 << 62

func (d *v1) Stats(path string) (*Stats, error) {
	if err := checkRel("path", path); err != nil {
		return nil, err
	}
	st, err := d.stats(path)
	if err != nil {
		return nil, fmt.Errorf("read stats of cgroup %s: %w", path, err)
	}
	return st, nil
}

func (d *v1) stats(path string) (*Stats, error) {
	paths := d.Paths(path)
	for _, dir := range d.dirs(path) {
		if _, err := os.Stat(dir); err != nil {
			return nil, err
		}
	}
	st := &Stats{}
	var errs []error
	read := func(ctrl, file string, dst *uint64) {
		dir, ok := paths[ctrl]
		if !ok {
			return
		}
		n, err := readUint(dir, file)
		if err != nil {
			errs = append(errs, optional(err))
			return
		}
		*dst = n
	}
	read("memory", "memory.usage_in_bytes", &st.MemoryUsage)
	read("memory", "memory.limit_in_bytes", &st.MemoryLimit)
	if st.MemoryLimit >= v1Unlimited {
		st.MemoryLimit = 0
	}
	read("memory", "memory.max_usage_in_bytes", &st.MemoryMaxUsage)
	read("memory", "memory.failcnt", &st.MemoryFailCnt)
	if dir, ok := paths["memory"]; ok {
		oc, err := readKeyed(dir, "memory.oom_control")
		errs = append(errs, optional(err))
		if n, ok := oc["oom_kill"]; ok {
			st.OOMKills = n
		} else if err == nil {
			// Kernels before 4.13 do not count kills; hitting the limit (memory alone, or
			// memory+swap when that is the one set) is the best evidence left.
			var swFail uint64
			read("memory", "memory.memsw.failcnt", &swFail)
			st.OOMKills = st.MemoryFailCnt + swFail
		}
	}
	read("cpuacct", "cpuacct.usage", &st.CPUUsageNanos)
	read("pids", "pids.current", &st.Pids)
	read("pids", "pids.max", &st.PidsLimit)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return st, nil
}

func (d *v1) Pids(path string) ([]int, error) {
	if err := checkRel("path", path); err != nil {
		return nil, err
	}
	paths := d.Paths(path)
	// Any hierarchy lists the same processes; pids and memory are the ones every container
	// host mounts.
	for _, c := range []string{"pids", "memory", "cpu", "devices", "freezer", "cpuacct", "cpuset"} {
		if dir, ok := paths[c]; ok {
			pids, err := readPids(dir)
			if err != nil {
				return nil, fmt.Errorf("list pids of cgroup %s: %w", path, err)
			}
			return pids, nil
		}
	}
	return nil, fmt.Errorf("list pids of cgroup %s: no cgroup v1 controller is mounted", path)
}

func (d *v1) Remove(path string) error {
	if err := checkRel("path", path); err != nil {
		return err
	}
	var errs []error
	for _, dir := range d.dirs(path) {
		errs = append(errs, removeTree(dir, d.rmdir))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove cgroup %s: %w", path, err)
	}
	return nil
}
