package cgroups

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
)

// managedV1 reports whether a container gets its own cgroup in v1 controller c. Others (blkio,
// net_cls, named hierarchies) are left alone: stack sets nothing there.
func managedV1(c string) bool {
	switch c {
	case "cpu", "cpuacct", "cpuset", "devices", "freezer", "memory", "pids":
		return true
	}
	return false
}

// New detects the host's cgroup layout from /proc/self/mountinfo and /proc/self/cgroup and
// returns the matching driver rooted at parent, a path relative to the calling process's own
// cgroup in each hierarchy ("" for the own cgroup itself). Hosts with any v1 controller mounted
// (legacy and hybrid) get the v1 driver; only a cgroup2 mount with no v1 controllers beside it
// gets the v2 driver.
func New(parent string) (Driver, error) {
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("detect cgroup layout: %w", err)
	}
	pc, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, fmt.Errorf("detect cgroup layout: %w", err)
	}
	l, err := detectLayout(bytes.NewReader(mi), bytes.NewReader(pc))
	if err != nil {
		return nil, err
	}
	return l.driver(parent)
}

// layout is what detectLayout found: either V1 mounts + own paths per controller, or the
// cgroup2 mountpoint + own path.
type layout struct {
	version  Version
	v1Mounts map[string]string // controller -> mountpoint
	v1Own    map[string]string // controller -> own cgroup, relative to the mountpoint
	v2Mount  string
	v2Own    string // relative to v2Mount
}

func (l layout) driver(parent string) (Driver, error) {
	if parent != "" {
		if err := checkRel("parent", parent); err != nil {
			return nil, err
		}
	}
	if l.version == V2 {
		return NewV2(l.v2Mount, path.Join(l.v2Own, parent)), nil
	}
	own := make(map[string]string, len(l.v1Own))
	for c, p := range l.v1Own {
		own[c] = path.Join(p, parent)
	}
	return NewV1(l.v1Mounts, own), nil
}

type mountInfo struct {
	root, mountpoint, fstype string
	superOpts                []string
}

// parseMountinfo reads the cgroup and cgroup2 lines of a proc(5) mountinfo file.
func parseMountinfo(r io.Reader) ([]mountInfo, error) {
	var out []mountInfo
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 64*1024), 1024*1024)
	for s.Scan() {
		// 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
		pre, post, ok := strings.Cut(s.Text(), " - ")
		if !ok {
			return nil, fmt.Errorf("parse mountinfo line %q: no separator", s.Text())
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 || len(qf) < 3 {
			return nil, fmt.Errorf("parse mountinfo line %q: too few fields", s.Text())
		}
		if qf[0] != "cgroup" && qf[0] != "cgroup2" {
			continue
		}
		out = append(out, mountInfo{
			root:       unescapeOctal(pf[3]),
			mountpoint: unescapeOctal(pf[4]),
			fstype:     qf[0],
			superOpts:  strings.Split(qf[2], ","),
		})
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	return out, nil
}

// unescapeOctal undoes the \040-style escapes the kernel uses for spaces and the like.
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// parseProcCgroup reads /proc/<pid>/cgroup into hierarchy key -> path, where the key is each
// controller of a v1 line ("cpu", "cpuacct", "name=systemd") and "" for the v2 line.
func parseProcCgroup(r io.Reader) (map[string]string, error) {
	out := map[string]string{}
	s := bufio.NewScanner(r)
	for s.Scan() {
		if s.Text() == "" {
			continue
		}
		parts := strings.SplitN(s.Text(), ":", 3)
		if len(parts) != 3 {
			return nil, fmt.Errorf("parse /proc/self/cgroup line %q: want id:controllers:path", s.Text())
		}
		if parts[1] == "" {
			out[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			out[c] = parts[2]
		}
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("read /proc/self/cgroup: %w", err)
	}
	return out, nil
}

// detectLayout decides v1 or v2 and where this process's own cgroups are, from the contents of
// mountinfo and /proc/self/cgroup.
func detectLayout(mountinfo, procCgroup io.Reader) (layout, error) {
	mounts, err := parseMountinfo(mountinfo)
	if err != nil {
		return layout{}, err
	}
	own, err := parseProcCgroup(procCgroup)
	if err != nil {
		return layout{}, err
	}
	l := layout{v1Mounts: map[string]string{}, v1Own: map[string]string{}}
	var v2 []mountInfo
	for _, m := range mounts {
		if m.fstype == "cgroup2" {
			v2 = append(v2, m)
			continue
		}
		for _, c := range m.superOpts {
			if !managedV1(c) {
				continue
			}
			if _, seen := l.v1Mounts[c]; seen {
				continue // the same hierarchy mounted twice: the first mount serves
			}
			p, ok := own[c]
			if !ok {
				return layout{}, fmt.Errorf("cgroup v1 controller %s is mounted at %s but /proc/self/cgroup has no line for it", c, m.mountpoint)
			}
			rel, err := relToRoot(p, m.root)
			if err != nil {
				return layout{}, fmt.Errorf("cgroup v1 controller %s mounted at %s: %w", c, m.mountpoint, err)
			}
			l.v1Mounts[c] = m.mountpoint
			l.v1Own[c] = rel
		}
	}
	if len(l.v1Mounts) > 0 {
		l.version = V1
		return l, nil
	}
	if len(v2) == 0 {
		return layout{}, fmt.Errorf("detect cgroup layout: no cgroup or cgroup2 filesystem is mounted")
	}
	// Prefer the conventional mountpoint if cgroup2 is mounted more than once.
	sort.SliceStable(v2, func(i, j int) bool {
		return v2[i].mountpoint == "/sys/fs/cgroup" && v2[j].mountpoint != "/sys/fs/cgroup"
	})
	p, ok := own[""]
	if !ok {
		return layout{}, fmt.Errorf("cgroup2 is mounted at %s but /proc/self/cgroup has no 0:: line", v2[0].mountpoint)
	}
	rel, err := relToRoot(p, v2[0].root)
	if err != nil {
		return layout{}, fmt.Errorf("cgroup2 mounted at %s: %w", v2[0].mountpoint, err)
	}
	return layout{version: V2, v2Mount: v2[0].mountpoint, v2Own: rel}, nil
}

// relToRoot turns a cgroup path from /proc/self/cgroup (relative to the hierarchy's root) into
// one relative to a mount of that hierarchy whose root is mountRoot. Inside a container the
// mount root is usually the container's own cgroup.
func relToRoot(p, mountRoot string) (string, error) {
	p, mountRoot = path.Clean("/"+p), path.Clean("/"+mountRoot)
	if mountRoot == "/" {
		return strings.TrimPrefix(p, "/"), nil
	}
	if p == mountRoot {
		return "", nil
	}
	if rest, ok := strings.CutPrefix(p, mountRoot+"/"); ok {
		return rest, nil
	}
	return "", fmt.Errorf("own cgroup %s is not below the mount's root %s", p, mountRoot)
}
