package cgroups

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// writeFile writes one value into a cgroup control file. O_CREATE lets the drivers run against
// fake trees in tests; cgroupfs refuses to create files, so on a real hierarchy a missing control
// file still fails.
func writeFile(dir, file, value string) error {
	p := filepath.Join(dir, file)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return err
	}
	_, werr := f.WriteString(value)
	cerr := f.Close()
	if werr != nil {
		// The kernel's reason (EINVAL, EBUSY, ...) matters more than the file name twice.
		return &os.PathError{Op: "write " + strconv.Quote(value), Path: p, Err: unwrapPath(werr)}
	}
	return cerr
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func readString(dir, file string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, file))
	return strings.TrimSpace(string(b)), err
}

// readUint reads a file holding one number; "max" (v2's unlimited) reads as 0.
func readUint(dir, file string) (uint64, error) {
	s, err := readString(dir, file)
	if err != nil {
		return 0, err
	}
	if s == "max" {
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse %s: %w", filepath.Join(dir, file), err)
	}
	return n, nil
}

// readKeyed reads a flat keyed file ("key value" per line: memory.events, cpu.stat,
// memory.oom_control) into a map.
func readKeyed(dir, file string) (map[string]uint64, error) {
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return nil, err
	}
	out := map[string]uint64{}
	s := bufio.NewScanner(bytes.NewReader(b))
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), " ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64); err == nil {
			out[k] = n
		}
	}
	return out, nil
}

// optional turns "file does not exist" into success: a controller that is not enabled, or a
// kernel too old for a counter, leaves that statistic at zero.
func optional(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

func readPids(dir string) ([]int, error) {
	s, err := readString(dir, "cgroup.procs")
	if err != nil {
		return nil, err
	}
	var out []int
	for _, f := range strings.Fields(s) {
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", filepath.Join(dir, "cgroup.procs"), err)
		}
		out = append(out, n)
	}
	return out, nil
}

// mkdirs creates base/rel and any missing directories between them; base itself must exist
// (it is the parent cgroup, never created here).
func mkdirs(base, rel string) error {
	if _, err := os.Stat(base); err != nil {
		return fmt.Errorf("parent cgroup: %w", err)
	}
	dir := base
	for _, part := range strings.Split(filepath.ToSlash(rel), "/") {
		dir = filepath.Join(dir, part)
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	}
	return nil
}

// removeTree removes the cgroup dir and every cgroup below it, deepest first. rmdir is
// unix.Rmdir on cgroupfs (where a cgroup's control files go with its directory); tests pass a
// remover for plain directories. A cgroup whose last process is still exiting is busy for a
// moment, so EBUSY is retried until a deadline.
func removeTree(dir string, rmdir func(string) error) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() {
			if err := removeTree(filepath.Join(dir, e.Name()), rmdir); err != nil {
				return err
			}
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for delay := time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		err := rmdir(dir)
		switch {
		case err == nil, errors.Is(err, fs.ErrNotExist):
			return nil
		case errors.Is(err, unix.EBUSY) && time.Now().Before(deadline):
			time.Sleep(delay)
		default:
			return &os.PathError{Op: "rmdir", Path: dir, Err: unwrapPath(err)}
		}
	}
}

func rmdirCgroup(dir string) error {
	if err := unix.Rmdir(dir); err != nil {
		return &os.PathError{Op: "rmdir", Path: dir, Err: err}
	}
	return nil
}
