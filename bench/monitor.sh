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
# The monitors are measured once they are past the Go runtime's forced-GC period (2 minutes;
# each sub-benchmark takes that long): they run with GOGC off and do not collect while idle, so
# MONITOR_BENCH_SETTLE=3s (a quick look right after start) reads within about 20 KiB of it.
#
# Last figures (2-core VM, busybox `sleep` loops, medians per monitor, stack-monitor):
#   builtin runtime: 859 KiB PSS / 1652 KiB RSS / 772 KiB anon at 10, 799 / 1650 / 768 at 30
#   runc:            851 / 1644 / 764 at 10, 773 / 1624 / 744 at 30 (before the main-thread
#                    lock of the hand-over, which the builtin figures include: about +15 KiB)
# (before the fresh-process hand-over, minijson and the code unmapping: 1351 KiB PSS at 10,
# 1185 at 30; an empty Go program that only sleeps: about 650 KiB PSS, 520 KiB anon.)
set -eu
cd "$(dirname "$0")/.."
exec go test -count=1 -run '^$' -bench "BenchmarkMonitorMemory/${1:-}" -benchtime 1x -timeout 40m ./runtime/monitor/
