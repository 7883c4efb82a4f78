package monitor

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stackrun/stack/internal/testutil"
)

// BenchmarkMonitorMemory measures the memory of monitors supervising 10 and 30 idle
// containers, as PSS (shared pages counted once across all processes that map them) and RSS
// per monitor, read from /proc/PID/smaps_rollup. The monitors run the real stack binary
// (built here), so its package initialisation counts. Environment knobs (GOGC, GOMEMLIMIT,
// GOMAXPROCS, GODEBUG) are inherited by the monitors; bench/monitor.sh compares them.
func BenchmarkMonitorMemory(b *testing.B) {
	testutil.RequireRoot(b)
	testutil.RequireBinary(b, "runc")
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Dir(file)
	bins := []struct{ name, pkg string }{
		// The stack binary as shipped: every package's init runs in each monitor.
		{"stack", filepath.Join(dir, "../../cmd/stack")},
		// A binary with only the monitor in it: what a separate monitor binary would cost.
		{"minimal", filepath.Join(dir, "testdata/minimal")},
	}
	for _, bin := range bins {
		exe := filepath.Join(b.TempDir(), bin.name)
		out, err := exec.Command("go", "build", "-o", exe, bin.pkg).CombinedOutput()
		if err != nil {
			b.Fatalf("build %s: %v: %s", bin.name, err, out)
		}
		for _, n := range []int{10, 30} {
			b.Run(fmt.Sprintf("binary=%s/containers=%d", bin.name, n), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					pss, rss := measureMonitors(b, exe, n)
					b.ReportMetric(pss, "PSS-KiB/monitor")
					b.ReportMetric(rss, "RSS-KiB/monitor")
				}
			})
		}
	}
}

func measureMonitors(b *testing.B, stack string, n int) (pssKiB, rssKiB float64) {
	var fixtures []*fixture
	var handles []*Handle
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for i := 0; i < n; i++ {
		f := newFixture(b, `while true; do sleep 1; done`)
		f.cfg.Executable = stack
		f.cfg.StopTimeout = 100 * time.Millisecond
		h, err := Launch(ctx, f.cfg)
		if err != nil {
			b.Fatal(err)
		}
		f.pids = append(f.pids, h)
		fixtures = append(fixtures, f)
		handles = append(handles, h)
	}
	// Let the monitors reach their steady state (first GC cycles, idle scavenging).
	time.Sleep(3 * time.Second)
	for _, h := range handles {
		p, r, err := smapsRollup(h.Pid)
		if err != nil {
			b.Fatal(err)
		}
		pssKiB += float64(p)
		rssKiB += float64(r)
	}
	for _, f := range fixtures {
		if err := Stop(ctx, f.cfg.StateDir, f.cfg.RunDir, 0, 0); err != nil {
			st, ierr := Inspect(f.cfg.StateDir, f.cfg.RunDir)
			b.Errorf("%v: %+v %v", err, st, ierr)
		}
	}
	return pssKiB / float64(n), rssKiB / float64(n)
}

// smapsRollup returns Pss and Rss of pid in KiB.
func smapsRollup(pid int) (pss, rss int, err error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/smaps_rollup")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		v, _ := strconv.Atoi(fields[1])
		switch fields[0] {
		case "Pss:":
			pss = v
		case "Rss:":
			rss = v
		}
	}
	return pss, rss, sc.Err()
}
