#!/bin/sh
# Memory of stack's per-container monitors: PSS (shared pages counted once, from
# /proc/PID/smaps_rollup), RSS and anonymous memory per monitor, medians over 10 and over 30
# idle busybox containers. The monitors run from stack-monitor, as `stack up` starts them, with
# stack's own runtime (runtime=builtin, the default) and with runc; binary=stack-shim runs them
# from stack-shim (the fallback: cgo and the runtime's dependencies linked in), for comparison.
#
# Needs root, runc and busybox-static. Go runtime knobs set in the environment (GOGC,
# GOMEMLIMIT, GOMAXPROCS, GODEBUG) reach the monitors and override the monitor's own tuning, e.g.
#   GOGC=100 GOMAXPROCS=2 GOMEMLIMIT=off bench/monitor.sh   # Go defaults, for comparison
# Arguments narrow the run: bench/monitor.sh 'binary=stack-monitor/runtime=builtin'
# The monitors are measured once they are past the Go runtime's forced GC (2 minutes; each
# sub-benchmark takes that long); MONITOR_BENCH_SETTLE=3s measures them right after start, which
# reads about 300 KiB lower than what they keep.
set -eu
cd "$(dirname "$0")/.."
exec go test -count=1 -run '^$' -bench "BenchmarkMonitorMemory/${1:-}" -benchtime 1x -timeout 40m ./runtime/monitor/
