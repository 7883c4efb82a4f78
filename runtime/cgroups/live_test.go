package cgroups

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/stackrun/stack/internal/testutil"
)

// The live tests run as root against the host's real hierarchies, strictly below this test
// process's own cgroup, each in a cgroup named testutil.UniqueName() and removed in t.Cleanup.
// Their workloads are this test binary re-executed as a helper (TestMain), which first waits for
// one line on stdin so the test can move it into the cgroup before it does anything.

const helperEnv = "_STACK_CGROUPS_TEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		os.Exit(helperMain(os.Args[1:]))
	}
	os.Exit(m.Run())
}

func helperMain(args []string) int {
	in := bufio.NewReader(os.Stdin)
	if _, err := in.ReadString('\n'); err != nil {
		fmt.Fprintln(os.Stderr, "helper: no go signal:", err)
		return 2
	}
	switch args[0] {
	case "open": // report, per path, what opening it read-only gives
		for _, p := range args[1:] {
			f, err := os.Open(p)
			var errno syscall.Errno
			switch {
			case err == nil:
				f.Close()
				fmt.Printf("%s ok\n", p)
			case errors.As(err, &errno):
				fmt.Printf("%s %s\n", p, unix.ErrnoName(errno))
			default:
				fmt.Printf("%s %v\n", p, err)
			}
		}
		return 0
	case "alloc": // touch args[1] MiB of fresh memory
		var mib int
		fmt.Sscan(args[1], &mib)
		buf := make([]byte, mib<<20)
		for i := 0; i < len(buf); i += 4096 {
			buf[i] = 1
		}
		fmt.Println("survived")
		return 0
	case "spin": // burn cpu until stdin closes
		var done atomic.Bool
		go func() {
			io.Copy(io.Discard, in)
			done.Store(true)
		}()
		fmt.Println("ready")
		for x := uint64(1); !done.Load(); x = x*6364136223846793005 + 1 {
		}
		return 0
	case "work": // use some memory and cpu inside the cgroup, then idle until stdin closes
		buf := make([]byte, 4<<20)
		sum := 0
		for round := 0; round < 20; round++ {
			for i := range buf {
				buf[i] = byte(i + round)
				sum += int(buf[i])
			}
		}
		fmt.Println("ready", sum > 0)
		io.Copy(io.Discard, in)
		runtime.KeepAlive(buf) // charged to the cgroup until the end
		return 0
	}
	fmt.Fprintln(os.Stderr, "helper: unknown action", args[0])
	return 2
}

// helper starts this binary as a helper doing action, moves it into the cgroup with d.AddProc,
// then lets it go. Its stdout comes back line by line on the returned channel.
func helper(t *testing.T, d Driver, path string, action ...string) (*exec.Cmd, io.WriteCloser, <-chan string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], action...)
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill() // only if still running; by pid, ours
		cmd.Wait()
	})
	lines := make(chan string, 16)
	go func() {
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			lines <- s.Text()
		}
		close(lines)
	}()
	if err := d.AddProc(path, cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	return cmd, stdin, lines
}

func nextLine(t *testing.T, lines <-chan string) string {
	t.Helper()
	select {
	case l, ok := <-lines:
		if !ok {
			t.Fatal("helper exited without the expected output")
		}
		return l
	case <-time.After(30 * time.Second):
		t.Fatal("no output from helper within 30s")
	}
	return ""
}

// liveV1 returns the host's v1 driver rooted at this process's own cgroups and a fresh cgroup
// name below them that is removed (and checked gone) when the test ends.
func liveV1(t *testing.T) (Driver, string) {
	t.Helper()
	testutil.RequireRoot(t)
	d, err := New("")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := d.(*v1); !ok {
		t.Skip("needs cgroup v1 controllers (legacy or hybrid host); this host is unified v2")
	}
	name := testutil.UniqueName()
	t.Cleanup(func() {
		if err := d.Remove(name); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		for c, dir := range d.Paths(name) {
			if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("cleanup: %s cgroup %s left behind (%v)", c, dir, err)
			}
		}
	})
	return d, name
}

func TestLiveV1ApplyReadBack(t *testing.T) {
	d, name := liveV1(t)
	res := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: i64(32 << 20), Reservation: i64(16 << 20), Swap: i64(64 << 20)},
		CPU:    &specs.LinuxCPU{Shares: u64(512), Quota: i64(50000), Period: u64(100000)},
		Pids:   &specs.LinuxPids{Limit: i64(20)},
	}
	if err := d.Apply(name, res); err != nil {
		t.Fatal(err)
	}
	p := d.Paths(name)
	for _, c := range []struct{ ctrl, file, want string }{
		{"memory", "memory.limit_in_bytes", "33554432"},
		{"memory", "memory.soft_limit_in_bytes", "16777216"},
		{"memory", "memory.memsw.limit_in_bytes", "67108864"},
		{"cpu", "cpu.shares", "512"},
		{"cpu", "cpu.cfs_period_us", "100000"},
		{"cpu", "cpu.cfs_quota_us", "50000"},
		{"pids", "pids.max", "20"},
	} {
		if _, ok := p[c.ctrl]; !ok {
			continue // controller not mounted on this host
		}
		if got := get(t, p[c.ctrl], c.file); got != c.want {
			t.Errorf("%s/%s = %q, want %q", c.ctrl, c.file, got, c.want)
		}
	}
	if dir, ok := p["devices"]; ok {
		list := strings.Split(get(t, dir, "devices.list"), "\n")
		for _, want := range []string{"c 1:3 rwm", "c 136:* rwm", "b *:* m", "c 10:200 rwm"} {
			if !slices.Contains(list, want) {
				t.Errorf("devices.list lacks %q: %q", want, list)
			}
		}
		if slices.Contains(list, "a *:* rwm") || len(list) != len(DefaultDevices()) {
			t.Errorf("devices.list is not exactly the default allowlist: %q", list)
		}
	}
	st, err := d.Stats(name)
	if err != nil {
		t.Fatal(err)
	}
	if st.MemoryLimit != 32<<20 || st.PidsLimit != 20 || st.Pids != 0 || st.OOMKills != 0 {
		t.Errorf("Stats = %+v", st)
	}
	// Applying again (an update) works on the existing cgroup.
	res.Pids.Limit = i64(30)
	if err := d.Apply(name, res); err != nil {
		t.Fatal(err)
	}
	if got := get(t, p["pids"], "pids.max"); got != "30" {
		t.Errorf("updated pids.max = %q", got)
	}
}

func TestLiveV1StatsAndPids(t *testing.T) {
	d, name := liveV1(t)
	if err := d.Apply(name, nil); err != nil {
		t.Fatal(err)
	}
	cmd, stdin, lines := helper(t, d, name, "work")
	if l := nextLine(t, lines); l != "ready true" {
		t.Fatalf("helper said %q", l)
	}
	pids, err := d.Pids(name)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(pids, []int{cmd.Process.Pid}) {
		t.Errorf("Pids = %v, want [%d]", pids, cmd.Process.Pid)
	}
	st, err := d.Stats(name)
	if err != nil {
		t.Fatal(err)
	}
	// The helper's threads are all tasks of the cgroup; it touched 4 MiB and spun after
	// joining.
	if st.Pids < 1 || st.MemoryUsage < 4<<20 || st.MemoryMaxUsage < st.MemoryUsage || st.CPUUsageNanos == 0 || st.MemoryLimit != 0 {
		t.Errorf("Stats = %+v", st)
	}
	for c, dir := range d.Paths(name) {
		if got := get(t, dir, "cgroup.procs"); got != fmt.Sprint(cmd.Process.Pid) {
			t.Errorf("%s cgroup.procs = %q", c, got)
		}
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if pids, err := d.Pids(name); err != nil || len(pids) != 0 {
		t.Errorf("Pids after exit = %v, %v", pids, err)
	}
}

func TestLiveV1OOMKill(t *testing.T) {
	d, name := liveV1(t)
	// Swap total equal to the limit: no swap, so the only way out is the OOM killer.
	res := &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(32 << 20), Swap: i64(32 << 20)}}
	if err := d.Apply(name, res); err != nil {
		t.Fatal(err)
	}
	if oom, err := OOMKilled(d, name); err != nil || oom {
		t.Fatalf("OOMKilled before anything ran = %v, %v", oom, err)
	}
	cmd, _, lines := helper(t, d, name, "alloc", "64")
	for l := range lines {
		t.Errorf("helper printed %q: it was not stopped at 32 MiB", l)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("helper ended with %v, want killed by SIGKILL", err)
	}
	oom, err := OOMKilled(d, name)
	if err != nil || !oom {
		t.Errorf("OOMKilled = %v, %v", oom, err)
	}
	st, err := d.Stats(name)
	if err != nil {
		t.Fatal(err)
	}
	// The peak shows the helper filled the limit and never got its 64 MiB (the kernel may
	// overcharge a page or so past the limit, so the peak is not compared to it exactly).
	if st.OOMKills < 1 || st.MemoryMaxUsage < 30<<20 || st.MemoryMaxUsage >= 64<<20 {
		t.Errorf("Stats after OOM = %+v", st)
	}
}

func TestLiveV1PidsLimit(t *testing.T) {
	d, name := liveV1(t)
	sh := testutil.RequireBinary(t, "sh")
	testutil.RequireBinary(t, "sleep")
	if err := d.Apply(name, &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(20)}}); err != nil {
		t.Fatal(err)
	}
	pidsDir := d.Paths(name)["pids"]
	if pidsDir == "" {
		t.Skip("pids controller not mounted")
	}
	// Orphaned sleeps (the shell may die when fork fails) come back to this process, which
	// reaps them by pid below, instead of to the host's pid 1.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) })

	// A bounded fork loop: 60 background sleeps against a limit of 20 tasks.
	cmd := exec.Command(sh, "-c", `read x; i=0; while [ $i -lt 60 ]; do sleep 300 & i=$((i+1)); done; echo looped; wait`)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killAll := func() {
		// Every process in the cgroup descends from the shell this test started.
		pids, _ := d.Pids(name)
		for _, pid := range pids {
			if pid != cmd.Process.Pid {
				unix.Kill(pid, unix.SIGKILL)
				unix.Wait4(pid, nil, 0, nil) // an orphan reparented to us; ECHILD otherwise
			}
		}
		cmd.Process.Kill()
		cmd.Wait()
	}
	t.Cleanup(killAll)
	if err := d.AddProc(name, cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	io.WriteString(stdin, "go\n")

	refused := func() uint64 {
		ev, err := readKeyed(pidsDir, "pids.events")
		if err != nil {
			t.Fatal(err)
		}
		return ev["max"]
	}
	deadline := time.Now().Add(30 * time.Second)
	for refused() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no fork was refused within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	st, err := d.Stats(name)
	if err != nil {
		t.Fatal(err)
	}
	peak, _ := readUint(pidsDir, "pids.peak")
	pids, _ := d.Pids(name)
	if st.PidsLimit != 20 || st.Pids > 20 || len(pids) > 20 || peak > 20 {
		t.Errorf("limit not held: stats %+v, %d pids listed, peak %d", st, len(pids), peak)
	}
	t.Logf("refused forks: %d, tasks: %d, peak: %d", refused(), st.Pids, peak)
	killAll()
	// The host is fine: this process can still fork outside the limited cgroup.
	if out, err := exec.Command(sh, "-c", "echo fine").Output(); err != nil || string(out) != "fine\n" {
		t.Errorf("fork outside the cgroup: %q, %v", out, err)
	}
}

func TestLiveV1DeviceAllowlist(t *testing.T) {
	d, name := liveV1(t)
	if _, ok := d.Paths(name)["devices"]; !ok {
		t.Skip("devices controller not mounted")
	}
	if err := d.Apply(name, nil); err != nil {
		t.Fatal(err)
	}
	blk, chr := deviceNodes(t)
	_, _, lines := helper(t, d, name, "open", "/dev/null", blk, chr)
	want := []string{"/dev/null ok", blk + " EPERM", chr + " EPERM"}
	for _, w := range want {
		if got := nextLine(t, lines); got != w {
			t.Errorf("helper: %q, want %q", got, w)
		}
	}
}

// deviceNodes makes, in a temp dir, a block node for /dev/loop0's number and a char node for
// /dev/tty1's: neither is in the default allowlist, so opening either from the cgroup must fail
// with EPERM whatever the host has behind those numbers. Mknod itself is allowed ("m").
func deviceNodes(t *testing.T) (blk, chr string) {
	dir := t.TempDir()
	blk, chr = filepath.Join(dir, "blk"), filepath.Join(dir, "chr")
	if err := unix.Mknod(blk, unix.S_IFBLK|0o600, int(unix.Mkdev(7, 0))); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mknod(chr, unix.S_IFCHR|0o600, int(unix.Mkdev(4, 1))); err != nil {
		t.Fatal(err)
	}
	return blk, chr
}

// liveV2 returns a v2 driver on the host's cgroup2 mount, also on a hybrid host where New picks
// v1 (here cgroup2 at /sys/fs/cgroup/unified has no controllers, but cgroup.procs, nested
// groups and device programs work), rooted at this process's own v2 cgroup, and a fresh cgroup
// name below it, removed and checked gone when the test ends. The parent's control files are
// checked unchanged as well: only the new nested group may be written.
func liveV2(t *testing.T) (Driver, string) {
	t.Helper()
	testutil.RequireRoot(t)
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	mounts, err := parseMountinfo(strings.NewReader(string(mi)))
	if err != nil {
		t.Fatal(err)
	}
	pc, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	own, err := parseProcCgroup(strings.NewReader(string(pc)))
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(mounts, func(m mountInfo) bool { return m.fstype == "cgroup2" })
	if i < 0 || own[""] == "" {
		t.Skip("needs a cgroup2 mount (unified or hybrid)")
	}
	rel, err := relToRoot(own[""], mounts[i].root)
	if err != nil {
		t.Skipf("own cgroup2 cgroup not visible in the mount: %v", err)
	}
	d := NewV2(mounts[i].mountpoint, rel)
	base := filepath.Join(mounts[i].mountpoint, rel)
	before := map[string]string{}
	for _, f := range []string{"cgroup.subtree_control", "cgroup.procs"} {
		before[f], _ = readString(base, f)
	}
	name := testutil.UniqueName()
	t.Cleanup(func() {
		if err := d.Remove(name); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		if _, err := os.Stat(d.Paths(name)[""]); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("cleanup: cgroup %s left behind (%v)", d.Paths(name)[""], err)
		}
		if got, _ := readString(base, "cgroup.subtree_control"); got != before["cgroup.subtree_control"] {
			t.Errorf("parent %s subtree_control changed: %q -> %q", base, before["cgroup.subtree_control"], got)
		}
	})
	return d, name
}

func TestLiveV2DeviceProgramAndProcs(t *testing.T) {
	d, name := liveV2(t)
	if err := d.Apply(name, nil); err != nil {
		t.Fatal(err)
	}
	dir := d.Paths(name)[""]
	attached := func() int {
		f, err := os.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		q, err := link.QueryPrograms(link.QueryOptions{Target: int(f.Fd()), Attach: ebpf.AttachCGroupDevice})
		if err != nil {
			t.Fatal(err)
		}
		return len(q.Programs)
	}
	if n := attached(); n != 1 {
		t.Fatalf("%d device programs attached, want 1", n)
	}
	blk, chr := deviceNodes(t)
	cmd, _, lines := helper(t, d, name, "open", "/dev/null", blk, chr)
	if pids, err := d.Pids(name); err != nil || !slices.Contains(pids, cmd.Process.Pid) {
		t.Errorf("Pids = %v, %v; want it to hold %d", pids, err, cmd.Process.Pid)
	}
	for _, w := range []string{"/dev/null ok", blk + " EPERM", chr + " EPERM"} {
		if got := nextLine(t, lines); got != w {
			t.Errorf("helper: %q, want %q", got, w)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Stats(name); err != nil {
		t.Errorf("Stats: %v", err)
	}

	// An update replaces the program: now 4:1 may be read, the block node still not.
	res := &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: true, Type: "c", Major: i64(4), Minor: i64(1), Access: "r"}}}
	if err := d.Apply(name, res); err != nil {
		t.Fatal(err)
	}
	if n := attached(); n != 1 {
		t.Fatalf("%d device programs attached after the update, want 1", n)
	}
	cmd, _, lines = helper(t, d, name, "open", blk, chr)
	if got := nextLine(t, lines); got != blk+" EPERM" {
		t.Errorf("helper: %q, want %q", got, blk+" EPERM")
	}
	// Past the device program the open reaches the tty driver, whose answer depends on the
	// host; only the cgroup's EPERM is ruled out.
	if got := nextLine(t, lines); !strings.HasPrefix(got, chr+" ") || got == chr+" EPERM" {
		t.Errorf("helper: %q, want %s opened past the allowlist", got, chr)
	}
	cmd.Wait()
}

func TestLiveV2LimitsNeedControllers(t *testing.T) {
	d, name := liveV2(t)
	avail, _ := readString(filepath.Dir(d.Paths(name)[""]), "cgroup.controllers")
	if strings.Contains(avail, "pids") {
		t.Skip("the parent has the pids controller; this checks the error when it has not")
	}
	err := d.Apply(name, &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(20)}})
	if err == nil || !strings.Contains(err.Error(), "controller pids is not available") {
		t.Errorf("Apply = %v, want a clear error about the missing controller", err)
	}
}

// BenchmarkLiveV1ApplyRemove measures what a container start and delete spend on cgroups on a
// v1 host: create the cgroups, write a typical set of limits and the device allowlist, remove.
func BenchmarkLiveV1ApplyRemove(b *testing.B) {
	testutil.RequireRoot(b)
	d, err := New("")
	if err != nil {
		b.Fatal(err)
	}
	if _, ok := d.(*v1); !ok {
		b.Skip("needs cgroup v1 controllers")
	}
	res := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: i64(64 << 20)},
		CPU:    &specs.LinuxCPU{Shares: u64(512), Quota: i64(50000), Period: u64(100000)},
		Pids:   &specs.LinuxPids{Limit: i64(100)},
	}
	for b.Loop() {
		name := testutil.UniqueName()
		if err := d.Apply(name, res); err != nil {
			d.Remove(name)
			b.Fatal(err)
		}
		if err := d.Remove(name); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDeviceFilter measures compiling the default allowlist into the v2 program (no
// kernel involved).
func BenchmarkDeviceFilter(b *testing.B) {
	rules, err := DeviceRules(nil)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := DeviceFilter(rules); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLiveV1CPUSharesSplit runs two busy helpers pinned to cpu 0, in sibling cgroups with
// cpu shares 512 and 1024, until they have used two cpu-seconds together, and reports how their
// cpu time split (share1024/share512; the scheduler should make it about 2). The check is wide
// on purpose: other load on the cpu and scheduler granularity blur it.
func BenchmarkLiveV1CPUSharesSplit(b *testing.B) {
	testutil.RequireRoot(b)
	d, err := New("")
	if err != nil {
		b.Fatal(err)
	}
	if _, ok := d.(*v1); !ok {
		b.Skip("needs cgroup v1 controllers")
	}
	var ratio float64
	for b.Loop() {
		ratio = sharesSplit(b, d)
	}
	b.ReportMetric(ratio, "share1024/share512")
	if ratio < 1.4 || ratio > 2.8 {
		b.Errorf("cpu time split %.2f, want about 2", ratio)
	}
}

func sharesSplit(b *testing.B, d Driver) float64 {
	names := [2]string{testutil.UniqueName(), testutil.UniqueName()}
	var usage [2]func() uint64
	var stdins [2]io.WriteCloser
	for i, shares := range []uint64{512, 1024} {
		name := names[i]
		b.Cleanup(func() {
			if err := d.Remove(name); err != nil {
				b.Errorf("cleanup: %v", err)
			}
		})
		res := &specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: u64(shares), Cpus: "0", Mems: "0"}}
		if err := d.Apply(name, res); err != nil {
			b.Fatal(err)
		}
		cmd := exec.Command(os.Args[0], "spin")
		cmd.Env = append(os.Environ(), helperEnv+"=1")
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
		})
		if err := d.AddProc(name, cmd.Process.Pid); err != nil {
			b.Fatal(err)
		}
		io.WriteString(stdin, "go\n")
		if l, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || l != "ready\n" {
			b.Fatalf("helper: %q, %v", l, err)
		}
		stdins[i] = stdin
		usage[i] = func() uint64 {
			st, err := d.Stats(name)
			if err != nil {
				b.Fatal(err)
			}
			return st.CPUUsageNanos
		}
	}
	start := [2]uint64{usage[0](), usage[1]()}
	deadline := time.Now().Add(60 * time.Second)
	var used [2]uint64
	for {
		used = [2]uint64{usage[0]() - start[0], usage[1]() - start[1]}
		if used[0]+used[1] >= 2e9 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("only %v ns of cpu used in 60s", used)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, in := range stdins {
		in.Close()
	}
	return float64(used[1]) / float64(max(used[0], 1))
}
