#!/bin/sh
# Network benchmarks (root): the median time to attach one container to a network, and HTTP
# throughput through a published port (nftables DNAT + masquerade) against throughput straight
# to the container's address, with wrk over the loopback/bridge of a sandbox namespace. Nothing
# is made in the real host namespace: see network/integration_test.go.
#
#   bench/network.sh            # 5s per wrk run
#   STACK_BENCH_DURATION=20s bench/network.sh
set -eu
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "needs wrk (apt-get install -y wrk)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "needs root" >&2; exit 2; }

echo "== attach one container (veth + peer in netns + addresses + routes + record)"
go test ./network/ -run '^$' -bench BenchmarkAttach -benchtime 200x | grep -E '^Benchmark'

echo "== wrk: published port vs direct container address"
STACK_BENCH_WRK=1 go test ./network/ -run '^TestWrkThroughput$' -count=1 -v | grep -E '^direct|^(--- )?(PASS|FAIL)'
echo "load while measuring: $(cut -d' ' -f1-3 /proc/loadavg)"
