package runtimetest

import (
	"bufio"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// RemoveCgroupTree removes the cgroup name, and every cgroup below it, under the caller's own
// cgroup in every cgroup hierarchy mounted under /sys/fs/cgroup. An external runtime (runc)
// populates hierarchies stack's cgroup driver does not manage (blkio, name=systemd, the
// hybrid unified one), so tests that run one clean up with this. Only empty cgroups can be
// removed: the processes must be gone.
func RemoveCgroupTree(name string) error {
	if name == "" || strings.Contains(name, "/") || name == "." || name == ".." {
		return errors.New("RemoveCgroupTree: want a single path element")
	}
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return err
	}
	defer f.Close()
	var errs []error
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		var mount string
		switch ctrl := parts[1]; {
		case ctrl == "":
			mount = "/sys/fs/cgroup/unified"
			if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
				mount = "/sys/fs/cgroup"
			}
		case strings.HasPrefix(ctrl, "name="):
			mount = "/sys/fs/cgroup/" + strings.TrimPrefix(ctrl, "name=")
		default:
			mount = "/sys/fs/cgroup/" + ctrl
		}
		dir := filepath.Join(mount, parts[2], name)
		var dirs []string
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		sort.Sort(sort.Reverse(sort.StringSlice(dirs))) // children before parents
		for _, d := range dirs {
			if err := os.Remove(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(append(errs, sc.Err())...)
}
