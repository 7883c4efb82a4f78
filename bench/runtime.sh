#!/bin/sh
# bench/runtime.sh [RUNS]: create + start + wait of a container running `true` (no network),
# median wall time over RUNS (default 21), for stack's runtime (through the stack CLI, and as
# cmd/stack-runtime, its lean binary of its own), runc and crun side by side.
#
# Needs root, busybox-static, and runc/crun (skipped when missing). Everything runs inside a
# private mount + cgroup namespace made with unshare, where the cgroup v1 hierarchies are
# mounted afresh (so "/" is this script's own cgroup: no runtime can create a cgroup anywhere
# else) and the hybrid host's empty /sys/fs/cgroup/unified is unmounted (crun would pick
# cgroup v2 otherwise). Nothing of this is visible on the host.
set -eu
RUNS=${1:-21}
HERE=$(cd "$(dirname "$0")/.." && pwd)

if [ "${_STACK_BENCH_INNER:-}" != 1 ]; then
	[ "$(id -u)" = 0 ] || { echo "bench/runtime.sh: needs root" >&2; exit 1; }
	command -v busybox >/dev/null || { echo "bench/runtime.sh: needs busybox-static" >&2; exit 1; }
	WORK=$(mktemp -d /tmp/stk-bench.XXXXXX)
	trap 'rm -rf "$WORK"' EXIT
	(cd "$HERE" && go build -o "$WORK/stack" ./cmd/stack && go build -o "$WORK/stack-shim" ./cmd/stack-shim &&
		go build -o "$WORK/stack-runtime" ./cmd/stack-runtime)
	_STACK_BENCH_INNER=1 WORK=$WORK unshare --mount --cgroup --propagation private sh "$0" "$RUNS"
	exit
fi

# --- inside the private namespaces ---
umount /sys/fs/cgroup/unified 2>/dev/null || true
while IFS=: read -r _ ctrls _; do
	case "$ctrls" in
	"") continue ;;
	name=*) dir=/sys/fs/cgroup/${ctrls#name=}; opts=none,$ctrls ;;
	*) dir=/sys/fs/cgroup/$ctrls; opts=$ctrls ;;
	esac
	# A hierarchy whose own cgroup is already "/" (name=systemd here) can stay as it is.
	[ -d "$dir" ] && { mount -t cgroup -o "$opts" cgroup "$dir" 2>/dev/null || [ "$(grep ":$ctrls:" /proc/self/cgroup | cut -d: -f3)" = / ]; }
done < /proc/self/cgroup
CG=stk-bench-$$

mkdir -p "$WORK/bundle/rootfs/bin"
cp "$(command -v busybox)" "$WORK/bundle/rootfs/bin/busybox"
ln -s busybox "$WORK/bundle/rootfs/bin/true"
(cd "$WORK/bundle" && runc spec 2>/dev/null || crun spec)
sed -i -e 's/"terminal": true/"terminal": false/' -e 's/"sh"$/"true"/' \
	-e "s|\"linux\": {|\"linux\": {\n\t\t\"cgroupsPath\": \"/$CG/c\",|" "$WORK/bundle/config.json"

median() { sort -n | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)] }'; }

bench() { # NAME CMD...: RUNS timed runs of CMD with a fresh container id each
	name=$1; shift
	: > "$WORK/times"
	i=0
	while [ $i -lt "$RUNS" ]; do
		t0=$(date +%s%N)
		"$@" "b$i" > /dev/null 2>&1 || { echo "$name: run $i failed:" >&2; "$@" "b$i-again" >&2 || true; return; }
		t1=$(date +%s%N)
		echo $(((t1 - t0) / 1000)) >> "$WORK/times"
		i=$((i + 1))
	done
	printf '%-13s median %6.1f ms  min %6.1f ms  (%d runs)\n' "$name" \
		"$(median < "$WORK/times" | awk '{ print $1 / 1000 }')" \
		"$(sort -n "$WORK/times" | head -1 | awk '{ print $1 / 1000 }')" "$RUNS"
}

bench stack "$WORK/stack" runtime --root "$WORK/stack-state" run --bundle "$WORK/bundle"
bench stack-runtime "$WORK/stack-runtime" --root "$WORK/stack-state" run --bundle "$WORK/bundle"
command -v runc >/dev/null && bench runc runc --root "$WORK/runc-state" run --bundle "$WORK/bundle"
command -v crun >/dev/null && bench crun crun --root "$WORK/crun-state" run --bundle "$WORK/bundle"

for d in /sys/fs/cgroup/*/"$CG"; do
	[ -d "$d" ] && rmdir "$d" 2>/dev/null || true
done
