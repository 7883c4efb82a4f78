#!/usr/bin/env bash
# bench/up.sh: stack's reconcile figures, medians over REPS runs, for stacks of N busybox
# services (mem_limit 64m, cpu_shares 512, a sleep that exits on SIGTERM), the same shape
# (gen_compose in lib.sh) the peer benchmarks in
# ../shared/bench-peers use:  up -d (from nothing), no-op up, changed up (one service), down.
# PEERS=1 also runs the peers' engine benchmark (docker-compose, podman-compose; ~19 min) in the
# same run, so the figures stand side by side (see ../shared/bench-peers/README.md).
# Usage (root): bench/up.sh            NS="1 10 30" REPS=3 by default
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
NS=${NS:-"1 10 30"}
REPS=${REPS:-3}
work=$(mktemp -d "${TMPDIR:-/tmp}/stk-bench-up.XXXXXX")
export STACK_ROOT=$work/root STACK_RUN_ROOT=$work/run
stack=$work/stack
cleanup() {
	for n in $NS; do "$stack" -p "stk-bench-$n" down -v -t 1 >/dev/null 2>&1 || true; done
	rm -rf "$work"
}
trap cleanup EXIT

(cd "$here" && go build -tags urfave_cli_no_docs -o "$stack" ./cmd/stack && go build -o "$work/stack-shim" ./cmd/stack-shim &&
	CGO_ENABLED=0 go build -o "$work/stack-monitor" ./cmd/stack-monitor && go build -o "$work/stack-load" ./cmd/stack-load)
"$here/examples/build-image.sh" "$stack" stack-bench:latest >/dev/null

ms() { echo $(( ($2 - $1) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END{print (NR%2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}'; }

gen() { # gen N TAG > file
	echo "name: stk-bench-$1"
	echo "services:"
	for i in $(seq 1 "$1"); do
		cat <<YAML
  s$i:
    image: stack-bench:latest
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
    mem_limit: 64m
    cpu_shares: 512
    environment:
      TAG: "$2"
YAML
	done
}

printf '%-8s %10s %12s %14s %10s\n' services "up (ms)" "no-op (ms)" "changed (ms)" "down (ms)"
for n in $NS; do
	f=$work/stack-$n.yaml
	up=() noop=() changed=() down=()
	for r in $(seq 1 "$REPS"); do
		gen "$n" a >"$f"
		t0=$(date +%s%N); "$stack" -f "$f" up -d -q; t1=$(date +%s%N); up+=("$(ms "$t0" "$t1")")
		t0=$(date +%s%N); "$stack" -f "$f" up -d -q; t1=$(date +%s%N); noop+=("$(ms "$t0" "$t1")")
		# one service changed: only it is recreated
		sed -i '0,/TAG: "a"/s//TAG: "b"/' "$f"
		t0=$(date +%s%N); "$stack" -f "$f" up -d -q; t1=$(date +%s%N); changed+=("$(ms "$t0" "$t1")")
		t0=$(date +%s%N); "$stack" -f "$f" down -q -t 1; t1=$(date +%s%N); down+=("$(ms "$t0" "$t1")")
	done
	printf '%-8s %10s %12s %14s %10s\n' "$n" \
		"$(printf '%s\n' "${up[@]}" | median)" "$(printf '%s\n' "${noop[@]}" | median)" \
		"$(printf '%s\n' "${changed[@]}" | median)" "$(printf '%s\n' "${down[@]}" | median)"
done

if [ "${PEERS:-0}" = 1 ]; then
	WORK=$work/peers RES=$work/peers-results NS_LIST="$NS" "$here/../shared/bench-peers/run_all.sh"
	cat "$work/peers-results/summary"* 2>/dev/null || true
fi
