package monitor

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stackrun/stack/internal/testutil"
)

// BenchmarkMonitorMemory measures the memory of monitors supervising 10 and 30 idle
// containers, as PSS (shared pages counted once across all processes that map them) and RSS
// per monitor, read from /proc/PID/smaps_rollup; each metric is the median over the monitors.
//
// The monitors run cmd/stack-monitor, built here as make build builds it (CGO_ENABLED=0), as
// `stack up` runs them: with stack's own runtime (runtime=builtin, the default of `stack up`,
// run in stack-shim's runtime helper) and with runc (runtime=runc). binary=stack-shim runs
// them from stack-shim instead, stack's fallback when stack-monitor is missing, to show what
// the runtime's dependencies and cgo add. Environment knobs (GOGC, GOMEMLIMIT, GOMAXPROCS,
// GODEBUG) are inherited by the monitors; bench/monitor.sh compares them.
func BenchmarkMonitorMemory(b *testing.B) {
	testutil.RequireRoot(b)
	testutil.RequireBinary(b, "runc")
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Dir(file)
	bins := []struct {
		name, pkg string
		cgo       bool
		runtimes  []string
	}{
		{"stack-monitor", filepath.Join(dir, "../../cmd/stack-monitor"), false, []string{"builtin", "runc"}},
		{"stack-shim", filepath.Join(dir, "../../cmd/stack-shim"), true, []string{"builtin"}},
	}
	tmp := b.TempDir()
	built := map[string]string{}
	for _, bin := range bins {
		exe := filepath.Join(tmp, bin.name)
		cmd := exec.Command("go", "build", "-o", exe, bin.pkg)
		if !bin.cgo {
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("build %s: %v: %s", bin.name, err, out)
		}
		built[bin.name] = exe
	}
	for _, bin := range bins {
		for _, rt := range bin.runtimes {
			for _, n := range []int{10, 30} {
				b.Run(fmt.Sprintf("binary=%s/runtime=%s/containers=%d", bin.name, rt, n), func(b *testing.B) {
					for i := 0; i < b.N; i++ {
						m := measureMonitors(b, built[bin.name], built["stack-shim"], rt, n)
						b.ReportMetric(m.pss, "PSS-KiB/monitor")
						b.ReportMetric(m.rss, "RSS-KiB/monitor")
						b.ReportMetric(m.anon, "anon-KiB/monitor")
					}
				})
			}
		}
	}
}

// memFigures are per-monitor medians in KiB.
type memFigures struct{ pss, rss, anon float64 }

// measureMonitors runs n monitors from exe, running stack's runtime in helper (rt builtin).
func measureMonitors(b *testing.B, exe, helper, rt string, n int) memFigures {
	var fixtures []*fixture
	var handles []*Handle
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for i := 0; i < n; i++ {
		f := newFixture(b, `while true; do sleep 1; done`)
		f.cfg.Executable = exe
		f.cfg.StopTimeout = 100 * time.Millisecond
		if rt == "builtin" {
			f.cfg.Runtime, f.cfg.RuntimeHelper = "builtin", helper
		}
		h, err := Launch(ctx, f.cfg)
		if err != nil {
			b.Fatal(err)
		}
		f.pids = append(f.pids, h)
		fixtures = append(fixtures, f)
		handles = append(handles, h)
	}
	// Measure what the monitors keep: past the Go runtime's forced-GC period (2 minutes),
	// after which a Go process that collects keeps the collector's metadata resident. The
	// monitors run with GOGC off and never collect while idle, so the figure should not move;
	// waiting shows that it does not (and catches a change that makes them collect).
	time.Sleep(settleTime(b))
	var pss, rss, anon []int
	for _, h := range handles {
		r, err := smapsRollup(h.Pid)
		if err != nil {
			b.Fatal(err)
		}
		pss, rss, anon = append(pss, r["Pss"]), append(rss, r["Rss"]), append(anon, r["Anonymous"])
	}
	// A fresh deadline: the settling may have outlasted the launch one.
	ctx, cancel = context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, f := range fixtures {
		if err := Stop(ctx, f.cfg.StateDir, f.cfg.RunDir, 0, 0); err != nil {
			st, ierr := Inspect(f.cfg.StateDir, f.cfg.RunDir)
			b.Errorf("%v: %+v %v", err, st, ierr)
		}
	}
	return memFigures{median(pss), median(rss), median(anon)}
}

// settleTime is how long monitors run before they are measured: past the Go runtime's forced
// GC period (2 minutes), or MONITOR_BENCH_SETTLE (a duration) for a quick look.
func settleTime(b *testing.B) time.Duration {
	if v := os.Getenv("MONITOR_BENCH_SETTLE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatalf("MONITOR_BENCH_SETTLE: %v", err)
		}
		return d
	}
	return 135 * time.Second
}

func median(v []int) float64 {
	s := append([]int(nil), v...)
	sort.Ints(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return float64(s[len(s)/2])
	}
	return float64(s[len(s)/2-1]+s[len(s)/2]) / 2
}

// smapsRollup returns the fields of /proc/PID/smaps_rollup in KiB, keyed without the colon.
func smapsRollup(pid int) (map[string]int, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/smaps_rollup")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 3 && fields[2] == "kB" {
			v, _ := strconv.Atoi(fields[1])
			out[strings.TrimSuffix(fields[0], ":")] = v
		}
	}
	return out, sc.Err()
}
