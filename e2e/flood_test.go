package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stackrun/stack/engine/local"
	"github.com/stackrun/stack/engine/oci"
	"github.com/stackrun/stack/runtime/monitor/logfile"
)

// floodWritten is what the flood service writes before it marks the point: 100 MiB of 100-byte
// lines, over three times the default log cap before the records' own overhead.
const floodWritten = 100 << 20

// floodStack: a fork bomb, a yes flood and a quiet service, with the default limits unless
// bombLimit (the bomb's pids_limit) is set. The bomb runs under stack's tiny init, which
// reaps, so it keeps forking at the limit instead of filling it with zombies once.
func floodStack(bombLimit int) string {
	limit := ""
	if bombLimit > 0 {
		limit = fmt.Sprintf("\n    pids_limit: %d", bombLimit)
	}
	return fmt.Sprintf(`
services:
  bomb:
    image: busybox:latest
    init: true
    command: ["sh", "-c", "b() { b | b & }; b; exec sleep 3600"]%s
  flood:
    image: busybox:latest
    command: ["sh", "-c", "yes %s | head -c %d; touch /tmp/written; exec yes"]
  quiet:
    image: busybox:latest
    command: ["sleep", "3600"]
`, limit, strings.Repeat("x", 99), floodWritten)
}

// cgroupInt reads one integer file of a cgroup directory.
func cgroupInt(t *testing.T, dir, file string) int64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		t.Fatalf("read %s: %v", file, err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatalf("%s: %q: %v", file, b, err)
	}
	return n
}

// pidsEvents is the "max" count of a pids cgroup: forks refused for the limit.
func pidsEvents(dir string) int64 {
	b, _ := os.ReadFile(filepath.Join(dir, "pids.events"))
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), " "); ok && k == "max" {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

// logBytes sums the sizes of the log files of the container whose current log is path (the
// current file and the rotated ones).
func logBytes(t *testing.T, path string) (total int64, files int) {
	t.Helper()
	all, err := filepath.Glob(path + "*")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range all {
		fi, err := os.Stat(f)
		if err != nil {
			continue // rotated away meanwhile
		}
		total += fi.Size()
		files++
	}
	return total, files
}

// killCgroup SIGKILLs every process of a container's own cgroup until it is empty: the test's
// safety net under down, so a fork bomb never outlives a failed test.
func killCgroup(dir string, initPid int) {
	if initPid > 0 {
		_ = syscall.Kill(initPid, syscall.SIGKILL) // its pid namespace goes with it
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		if err != nil || len(strings.TrimSpace(string(b))) == 0 {
			return
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL) // members of our own container's cgroup
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// timed runs fn, bounded by a generous deadline, and returns how long it took.
func timed(t *testing.T, what string, fn func(ctx context.Context) error) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	if err := fn(ctx); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return time.Since(start)
}

// TestHardenForkBombAndLogFlood: issue 11 acceptance 7. A fork bomb under the default pids
// limit and a yes flood under the default log cap run next to a quiet service. While they
// run, the host runs a process, the quiet service and the flood answer exec, and ps and stats
// answer; the bomb's cgroup never holds more than the limit (it reaches it: forks are
// refused); the flood's log files stay under the cap after it has written 100 MiB; down ends
// the bomb and leaves nothing. Waits are bounded generously; no timing is asserted (the
// latencies are logged).
//
// The default is 2048: at 4096 the bomb loaded the 2-core test VM for minutes (load average
// near 2000; in one of two runs a host `true` took 10 s and an exec 2 min), at 2048 and below
// the host stayed responsive (docs/security.md has the figures).
func TestHardenForkBombAndLogFlood(t *testing.T) {
	storm(t, 0)
}

// storm runs acceptance 7 with the bomb's pids_limit set to bombLimit (0: the default).
func storm(t *testing.T, bombLimit int) {
	e := newEnv(t)
	e.busyboxImage()
	f := e.stackFile(floodStack(bombLimit))
	own := ownLinks{}
	e.must(append(f, "up", "-d")...)
	own.sample(t, e)

	var infos []local.ContainerInfo
	e.decode(&infos, append(f, "inspect", "bomb", "flood")...)
	if len(infos) != 2 {
		t.Fatalf("inspect: %d containers", len(infos))
	}
	bomb, flood := infos[0], infos[1]
	if bomb.Service != "bomb" {
		bomb, flood = flood, bomb
	}
	pidsDir := bomb.CgroupPaths["pids"]
	if pidsDir == "" {
		t.Fatalf("bomb: no pids cgroup in %v", bomb.CgroupPaths)
	}
	t.Cleanup(func() { killCgroup(pidsDir, bomb.State.Pid) }) // runs before newEnv's down
	limit, want := cgroupInt(t, pidsDir, "pids.max"), int64(oci.DefaultPidsLimit)
	if bombLimit > 0 {
		want = int64(bombLimit)
	}
	if limit != want {
		t.Errorf("bomb's pids.max = %d, want %d", limit, want)
	}
	if flood.LogPath == "" {
		t.Fatalf("flood: no log path")
	}

	// The storm: sample until the bomb has hit its limit, the flood has written its 100 MiB,
	// and at least 10 rounds of checks ran meanwhile.
	var maxTrue, maxExec time.Duration
	var maxPids, maxLog int64
	hitLimit, written := false, false
	deadline := time.Now().Add(10 * time.Minute)
	for round := 0; round < 10 || !hitLimit || !written; round++ {
		if time.Now().After(deadline) {
			t.Fatalf("after %d rounds: bomb hit its limit %v (pids.current %d), flood wrote its %d bytes %v",
				round, hitLimit, cgroupInt(t, pidsDir, "pids.current"), floodWritten, written)
		}
		n := cgroupInt(t, pidsDir, "pids.current")
		if n > limit {
			t.Errorf("bomb holds %d pids, over its limit %d", n, limit)
		}
		maxPids = max(maxPids, n)
		hitLimit = hitLimit || pidsEvents(pidsDir) > 0

		maxTrue = max(maxTrue, timed(t, "host true", func(ctx context.Context) error {
			return exec.CommandContext(ctx, "true").Run()
		}))
		maxExec = max(maxExec, timed(t, "exec quiet", func(ctx context.Context) error {
			out, err := e.run(append(f, "exec", "quiet", "echo", "alive")...)
			if err == nil && strings.TrimSpace(out) != "alive" {
				err = fmt.Errorf("output %q", out)
			}
			return err
		}))
		if !written {
			_, err := e.run(append(f, "exec", "flood", "test", "-f", "/tmp/written")...)
			written = err == nil
		}
		size, files := logBytes(t, flood.LogPath)
		if size > logfile.DefaultMaxSize*logfile.DefaultMaxFiles || files > logfile.DefaultMaxFiles {
			t.Errorf("flood's logs: %d bytes in %d files, over the cap of %d files of %d bytes", size, files,
				logfile.DefaultMaxFiles, logfile.DefaultMaxSize)
		}
		maxLog = max(maxLog, size)
		if bs, bf := logBytes(t, bomb.LogPath); bs > logfile.DefaultMaxSize*logfile.DefaultMaxFiles || bf > logfile.DefaultMaxFiles {
			t.Errorf("bomb's logs: %d bytes in %d files, over the cap", bs, bf)
		}
		time.Sleep(500 * time.Millisecond)
	}

	// Still under way: the bomb and the flood run, ps and stats answer.
	for svc, c := range e.lifePs(f) {
		if c.State != "running" {
			t.Errorf("%s is %s during the storm, want running", svc, c.State)
		}
	}
	out := e.must(append(f, "stats", "--no-stream", "--format", "json", "bomb")...)
	var st statsLine
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &st); err != nil {
		t.Fatalf("stats json: %v\n%s", err, out)
	}
	if st.PidsLimit != uint64(limit) || st.Pids > st.PidsLimit || st.Pids == 0 {
		t.Errorf("stats bomb: pids %d, limit %d; want at most the default %d", st.Pids, st.PidsLimit, limit)
	}
	if tail := e.must(append(f, "logs", "--no-log-prefix", "--tail", "3", "flood")...); strings.Count(tail, "y\n") != 3 {
		t.Errorf("logs --tail 3 of the flood:\n%s", tail)
	}
	peak := int64(-1)
	if _, err := os.Stat(filepath.Join(pidsDir, "pids.peak")); err == nil {
		peak = cgroupInt(t, pidsDir, "pids.peak")
		if peak > limit {
			t.Errorf("bomb's pids.peak %d is over its limit %d", peak, limit)
		}
	}
	size, files := logBytes(t, flood.LogPath)
	if size > logfile.DefaultMaxSize*logfile.DefaultMaxFiles || files > logfile.DefaultMaxFiles {
		t.Errorf("flood's logs: %d bytes in %d files, over the cap", size, files)
	}
	maxLog = max(maxLog, size)
	t.Logf("bomb: pids.max %d, highest pids.current seen %d, pids.peak %d, forks refused %d", limit, maxPids, peak, pidsEvents(pidsDir))
	t.Logf("flood: wrote %d MiB before the mark and kept writing; its logs hold %d bytes in %d files now, at most %d seen (cap %d)",
		floodWritten>>20, size, files, maxLog, logfile.DefaultMaxSize*logfile.DefaultMaxFiles)
	t.Logf("slowest host `true` %s, slowest `stack exec quiet echo` %s", maxTrue, maxExec)

	// down ends the bomb: its cgroup goes, no process of the roots is left.
	e.must(append(f, "down", "-t", "1")...)
	if _, err := os.Stat(pidsDir); err == nil {
		t.Errorf("the bomb's cgroup %s is still there after down", pidsDir)
	}
	if d := leaks(t, e, own); d != "" {
		t.Errorf("after down:\n%s", d)
	}
}
