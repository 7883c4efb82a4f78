#!/bin/sh
# bench/runtime-cpu.sh [SECONDS]: two busy containers pinned to one cpu, with cpu shares 512
# and 1024, run side by side for SECONDS (default 5); prints the cpu time each got and the
# ratio, which should be about 1:2. A benchmark-style check: the tolerance is for a human
# (or a wide assertion), the machine may be busy with other work.
set -eu
SECS=${1:-5}
HERE=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "bench/runtime-cpu.sh: needs root" >&2; exit 1; }
WORK=$(mktemp -d /tmp/stk-bench-cpu.XXXXXX)
S="$WORK/stack"
R="--root $WORK/state --cgroup-parent stk-bench-cpu-$$"
cleanup() {
	"$S" runtime $R delete --force low high >/dev/null 2>&1 || true
	for d in /sys/fs/cgroup/*/stk-bench-cpu-$$ /sys/fs/cgroup/memory/*/*/stk-bench-cpu-$$; do
		[ -d "$d" ] && rmdir "$d" 2>/dev/null || true
	done
	rm -rf "$WORK"
}
trap cleanup EXIT
(cd "$HERE" && go build -o "$S" ./cmd/stack && go build -o "$(dirname "$S")/stack-shim" ./cmd/stack-shim)

# The parent cgroup, below our own in each hierarchy (stack only creates below it).
own() { awk -F: -v c="$1" '$2 == c { print $3 }' /proc/self/cgroup; }
for c in cpu cpuacct cpuset memory pids devices freezer; do
	d=/sys/fs/cgroup/$c$(own $c)/stk-bench-cpu-$$
	mkdir -p "$d"
	if [ $c = cpuset ]; then
		cat "$(dirname "$d")/cpuset.cpus" > "$d/cpuset.cpus"
		cat "$(dirname "$d")/cpuset.mems" > "$d/cpuset.mems"
	fi
done

mkdir -p "$WORK/rootfs/bin"
cp "$(command -v busybox)" "$WORK/rootfs/bin/busybox"
ln -s busybox "$WORK/rootfs/bin/sh"
for name in low:512 high:1024; do
	id=${name%:*} shares=${name#*:}
	mkdir -p "$WORK/$id"
	cat > "$WORK/$id/config.json" <<JSON
{
  "ociVersion": "1.2.0",
  "root": {"path": "$WORK/rootfs"},
  "process": {"args": ["sh", "-c", "while :; do :; done"], "cwd": "/", "env": ["PATH=/bin"]},
  "linux": {
    "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"}, {"type": "network"}],
    "resources": {"cpu": {"shares": $shares, "cpus": "0"}}
  }
}
JSON
done
"$S" runtime $R run -d -b "$WORK/low" low
"$S" runtime $R run -d -b "$WORK/high" high
sleep "$SECS"
usage() { "$S" runtime $R stats "$1" | awk -F'[:,]' '/CPUUsageNanos/ { print $2 + 0 }'; }
low=$(usage low) high=$(usage high)
awk -v l="$low" -v h="$high" 'BEGIN {
	printf "cpu time: shares 512 %.2fs, shares 1024 %.2fs, ratio 1:%.2f (want about 1:2)\n", l / 1e9, h / 1e9, h / l
}'
