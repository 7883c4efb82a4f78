package cgroups

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// A fake cgroupfs is a plain directory tree, so removing a cgroup removes its files too.
func removeFake(dir string) error { return os.RemoveAll(dir) }

func put(t *testing.T, dir, file, val string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, file), []byte(val), 0o644); err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, dir, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// fakeV1 builds a hybrid-like tree: cpu and cpuacct co-mounted, the others alone, and this
// process's own cgroup at "own/x" in every hierarchy (as memory is at /process_api/... here).
func fakeV1(t *testing.T) (root string, d *v1) {
	root = t.TempDir()
	mounts := map[string]string{
		"cpu": filepath.Join(root, "cpu,cpuacct"), "cpuacct": filepath.Join(root, "cpu,cpuacct"),
		"memory": filepath.Join(root, "memory"), "pids": filepath.Join(root, "pids"),
		"devices": filepath.Join(root, "devices"), "cpuset": filepath.Join(root, "cpuset"),
		"blkio": filepath.Join(root, "blkio"), // not managed: must be ignored
	}
	own := map[string]string{}
	for c, m := range mounts {
		own[c] = "own/x"
		if err := os.MkdirAll(filepath.Join(m, "own/x"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	put(t, filepath.Join(root, "cpuset/own/x"), "cpuset.cpus", "0-1\n")
	put(t, filepath.Join(root, "cpuset/own/x"), "cpuset.mems", "0\n")
	d = NewV1(mounts, own).(*v1)
	d.rmdir = removeFake
	return root, d
}

func TestV1FakeTree(t *testing.T) {
	root, d := fakeV1(t)
	const path = "stack/c1"
	wantPaths := map[string]string{
		"cpu": filepath.Join(root, "cpu,cpuacct/own/x/stack/c1"), "cpuacct": filepath.Join(root, "cpu,cpuacct/own/x/stack/c1"),
		"memory": filepath.Join(root, "memory/own/x/stack/c1"), "pids": filepath.Join(root, "pids/own/x/stack/c1"),
		"devices": filepath.Join(root, "devices/own/x/stack/c1"), "cpuset": filepath.Join(root, "cpuset/own/x/stack/c1"),
	}
	if got := d.Paths(path); !reflect.DeepEqual(got, wantPaths) {
		t.Fatalf("Paths = %v, want %v", got, wantPaths)
	}

	res := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: i64(32 << 20), Reservation: i64(8 << 20)},
		CPU:    &specs.LinuxCPU{Shares: u64(512), Quota: i64(50000), Period: u64(100000)},
		Pids:   &specs.LinuxPids{Limit: i64(20)},
	}
	if err := d.Apply(path, res); err != nil {
		t.Fatal(err)
	}
	p := d.Paths(path)
	for _, c := range []struct{ ctrl, file, want string }{
		{"memory", "memory.limit_in_bytes", "33554432"},
		{"memory", "memory.soft_limit_in_bytes", "8388608"},
		{"cpu", "cpu.shares", "512"},
		{"cpu", "cpu.cfs_period_us", "100000"},
		{"cpu", "cpu.cfs_quota_us", "50000"},
		{"pids", "pids.max", "20"},
		// A fake file keeps only the last write; the order is checked in TestDeviceRules.
		{"devices", "devices.deny", "a"},
		{"devices", "devices.allow", "c 10:200 rwm"},
		// Both new cpuset levels inherited the parent's cpus and mems.
		{"cpuset", "cpuset.cpus", "0-1"},
		{"cpuset", "cpuset.mems", "0"},
	} {
		if got := get(t, p[c.ctrl], c.file); got != c.want {
			t.Errorf("%s/%s = %q, want %q", c.ctrl, c.file, got, c.want)
		}
	}
	if got := get(t, filepath.Join(root, "cpuset/own/x/stack"), "cpuset.cpus"); got != "0-1" {
		t.Errorf("intermediate cpuset.cpus = %q", got)
	}
	if _, err := os.Stat(filepath.Join(root, "blkio/own/x/stack")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("blkio cgroup created: %v", err)
	}

	if err := d.AddProc(path, 4242); err != nil {
		t.Fatal(err)
	}
	for _, dir := range d.dirs(path) {
		if got := get(t, dir, "cgroup.procs"); got != "4242" {
			t.Errorf("%s/cgroup.procs = %q", dir, got)
		}
	}
	if pids, err := d.Pids(path); err != nil || !reflect.DeepEqual(pids, []int{4242}) {
		t.Errorf("Pids = %v, %v", pids, err)
	}

	// Counters as the kernel would show them after an OOM kill.
	put(t, p["memory"], "memory.usage_in_bytes", "1000\n")
	put(t, p["memory"], "memory.limit_in_bytes", "9223372036854771712\n") // unlimited
	put(t, p["memory"], "memory.max_usage_in_bytes", "33554432\n")
	put(t, p["memory"], "memory.failcnt", "12\n")
	put(t, p["memory"], "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n")
	put(t, p["cpuacct"], "cpuacct.usage", "123456789\n")
	put(t, p["pids"], "pids.current", "3\n")
	st, err := d.Stats(path)
	if err != nil {
		t.Fatal(err)
	}
	want := Stats{MemoryUsage: 1000, MemoryMaxUsage: 33554432, MemoryFailCnt: 12, OOMKills: 1,
		CPUUsageNanos: 123456789, Pids: 3, PidsLimit: 20}
	if *st != want {
		t.Errorf("Stats = %+v, want %+v", *st, want)
	}
	if oom, err := OOMKilled(d, path); err != nil || !oom {
		t.Errorf("OOMKilled = %v, %v", oom, err)
	}

	if err := d.Remove(path); err != nil {
		t.Fatal(err)
	}
	for _, dir := range d.dirs(path) {
		if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s still there: %v", dir, err)
		}
	}
	if err := d.Remove(path); err != nil {
		t.Errorf("second Remove: %v", err)
	}
	if _, err := d.Stats(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stats after Remove: %v", err)
	}
}

func TestV1OOMFallbackToFailcnt(t *testing.T) {
	_, d := fakeV1(t)
	if err := d.Apply("c", nil); err != nil {
		t.Fatal(err)
	}
	mem := d.Paths("c")["memory"]
	put(t, mem, "memory.failcnt", "4\n")
	put(t, mem, "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\n") // before Linux 4.13
	if oom, err := OOMKilled(d, "c"); err != nil || !oom {
		t.Errorf("OOMKilled = %v, %v", oom, err)
	}
	put(t, mem, "memory.failcnt", "0\n")
	if oom, err := OOMKilled(d, "c"); err != nil || oom {
		t.Errorf("OOMKilled without failures = %v, %v", oom, err)
	}
}

func TestV1MissingController(t *testing.T) {
	root := t.TempDir()
	mounts := map[string]string{"memory": filepath.Join(root, "memory"), "devices": filepath.Join(root, "devices")}
	own := map[string]string{"memory": "", "devices": ""}
	for _, m := range mounts {
		if err := os.MkdirAll(m, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	d := NewV1(mounts, own)
	err := d.Apply("c", &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(5)}})
	if err == nil || !strings.Contains(err.Error(), "pids is not mounted") {
		t.Errorf("Apply with pids unmounted: %v", err)
	}
}

func TestPathsMustStayBelowParent(t *testing.T) {
	_, d1 := fakeV1(t)
	d2 := NewV2(t.TempDir(), "")
	for _, d := range []Driver{d1, d2} {
		for _, p := range []string{"", "..", "../x", "a/../../b", "/abs"} {
			if err := d.Apply(p, nil); !errors.Is(err, ErrInvalid) {
				t.Errorf("%T Apply(%q): %v", d, p, err)
			}
			if err := d.AddProc(p, 1); !errors.Is(err, ErrInvalid) {
				t.Errorf("%T AddProc(%q): %v", d, p, err)
			}
			if err := d.Remove(p); !errors.Is(err, ErrInvalid) {
				t.Errorf("%T Remove(%q): %v", d, p, err)
			}
			if _, err := d.Stats(p); !errors.Is(err, ErrInvalid) {
				t.Errorf("%T Stats(%q): %v", d, p, err)
			}
			if _, err := d.Pids(p); !errors.Is(err, ErrInvalid) {
				t.Errorf("%T Pids(%q): %v", d, p, err)
			}
		}
	}
	l := layout{version: V2, v2Mount: "/sys/fs/cgroup"}
	if _, err := l.driver("../elsewhere"); !errors.Is(err, ErrInvalid) {
		t.Errorf("parent ../elsewhere: %v", err)
	}
}

func fakeV2(t *testing.T) (base string, d *v2, attached *[][]specs.LinuxDeviceCgroup) {
	root := t.TempDir()
	base = filepath.Join(root, "own")
	put(t, base, "cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n")
	put(t, base, "cgroup.subtree_control", "\n")
	d = NewV2(root, "own").(*v2)
	d.rmdir = removeFake
	var calls [][]specs.LinuxDeviceCgroup
	d.attachDevices = func(dir string, rules []specs.LinuxDeviceCgroup) error {
		if _, err := os.Stat(dir); err != nil {
			t.Errorf("device program attached before the cgroup exists: %v", err)
		}
		calls = append(calls, rules)
		return nil
	}
	return base, d, &calls
}

func TestV2FakeTree(t *testing.T) {
	base, d, attached := fakeV2(t)
	const path = "stack/c1"
	dir := filepath.Join(base, "stack/c1")
	if got := d.Paths(path); !reflect.DeepEqual(got, map[string]string{"": dir}) {
		t.Fatalf("Paths = %v", got)
	}
	res := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: i64(32 << 20), Swap: i64(32 << 20)},
		CPU:    &specs.LinuxCPU{Shares: u64(1024), Quota: i64(150000)},
		Pids:   &specs.LinuxPids{Limit: i64(20)},
	}
	if err := d.Apply(path, res); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ file, want string }{
		{"memory.max", "33554432"},
		{"memory.swap.max", "0"},
		{"cpu.weight", "100"},
		{"cpu.max", "150000 100000"},
		{"pids.max", "20"},
	} {
		if got := get(t, dir, c.file); got != c.want {
			t.Errorf("%s = %q, want %q", c.file, got, c.want)
		}
	}
	// Controllers are switched on in the parent and in the intermediate cgroup, not in the
	// leaf (a fake file keeps the last write: controllers are enabled one by one, sorted).
	for _, d := range []string{base, filepath.Join(base, "stack")} {
		if got := get(t, d, "cgroup.subtree_control"); got != "+pids" {
			t.Errorf("%s/cgroup.subtree_control last write = %q", d, got)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "cgroup.subtree_control")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("leaf subtree_control written: %v", err)
	}
	if len(*attached) != 1 {
		t.Fatalf("device program attached %d times", len(*attached))
	}
	wantRules, _ := DeviceRules(nil)
	if !reflect.DeepEqual((*attached)[0], wantRules) {
		t.Errorf("attached rules %v, want %v", (*attached)[0], wantRules)
	}

	if err := d.AddProc(path, 77); err != nil {
		t.Fatal(err)
	}
	if pids, err := d.Pids(path); err != nil || !reflect.DeepEqual(pids, []int{77}) {
		t.Errorf("Pids = %v, %v", pids, err)
	}
	put(t, dir, "memory.current", "4096\n")
	put(t, dir, "memory.peak", "8192\n")
	put(t, dir, "memory.events", "low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\noom_group_kill 0\n")
	put(t, dir, "cpu.stat", "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\n")
	put(t, dir, "pids.current", "2\n")
	st, err := d.Stats(path)
	if err != nil {
		t.Fatal(err)
	}
	want := Stats{MemoryUsage: 4096, MemoryLimit: 32 << 20, MemoryMaxUsage: 8192, OOMKills: 1,
		CPUUsageNanos: 2500000, Pids: 2, PidsLimit: 20}
	if *st != want {
		t.Errorf("Stats = %+v, want %+v", *st, want)
	}
	put(t, dir, "pids.max", "max\n")
	put(t, dir, "memory.max", "max\n")
	if st, err := d.Stats(path); err != nil || st.PidsLimit != 0 || st.MemoryLimit != 0 {
		t.Errorf("unlimited Stats = %+v, %v", st, err)
	}

	if err := d.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("cgroup still there: %v", err)
	}
	if err := d.Remove(path); err != nil {
		t.Errorf("second Remove: %v", err)
	}
}

func TestV2ControllerNotAvailable(t *testing.T) {
	base, d, _ := fakeV2(t)
	put(t, base, "cgroup.controllers", "hugetlb\n") // like this project's hybrid test host
	err := d.Apply("c", &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(5)}})
	if err == nil || !strings.Contains(err.Error(), "controller pids is not available") {
		t.Errorf("Apply = %v", err)
	}
	// Without limits there is nothing to enable, and the cgroup is still made.
	if err := d.Apply("c", nil); err != nil {
		t.Errorf("Apply(nil) = %v", err)
	}
	if st, err := d.Stats("c"); err != nil || *st != (Stats{}) {
		t.Errorf("Stats without controllers = %+v, %v", st, err)
	}
}

func TestV1CpusetCoMounted(t *testing.T) {
	root := t.TempDir()
	m := filepath.Join(root, "cpu,cpuset")
	put(t, m, "cpuset.cpus", "0-3\n")
	put(t, m, "cpuset.mems", "0\n")
	put(t, filepath.Join(root, "devices"), "devices.list", "a *:* rwm\n")
	d := NewV1(map[string]string{"cpu": m, "cpuset": m, "devices": filepath.Join(root, "devices")},
		map[string]string{"cpu": "", "cpuset": "", "devices": ""})
	if err := d.Apply("a/b", nil); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{filepath.Join(m, "a"), filepath.Join(m, "a/b")} {
		if got := get(t, dir, "cpuset.cpus"); got != "0-3" {
			t.Errorf("%s cpuset.cpus = %q", dir, got)
		}
	}
}
