#!/bin/sh
# Memory of stack's per-container monitors: PSS (shared pages counted once, from
# /proc/PID/smaps_rollup) and RSS per monitor, for 10 and 30 idle busybox containers under runc,
# for the shipped stack binary and for a binary holding only the monitor.
#
# Needs root, runc and busybox-static. Go runtime knobs set in the environment (GOGC,
# GOMEMLIMIT, GOMAXPROCS) reach the monitors and override the monitor's own tuning, e.g.
#   GOGC=100 GOMAXPROCS=2 GOMEMLIMIT=off bench/monitor.sh   # Go defaults, for comparison
set -eu
cd "$(dirname "$0")/.."
exec go test -count=1 -run '^$' -bench 'BenchmarkMonitorMemory' -benchtime 1x -timeout 20m ./runtime/monitor/
