#!/bin/sh
# bench/image.sh: pull a 50 MiB, 5-layer image from a local registry with `stack image pull`
# (download + verify + unpack) and with `skopeo copy docker://... dir:` (download + verify
# only), three runs each in the same session; prints each time and the medians.
# Needs docker-registry and skopeo (apt-get install docker-registry skopeo).
set -eu
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
work=$(mktemp -d /tmp/stack-bench-image.XXXXXX)
regpid=""
cleanup() {
	if [ -n "$regpid" ]; then
		kill "$regpid" 2>/dev/null || true
		wait "$regpid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

go build -o "$work/stack" ./cmd/stack
go build -o "$work/stack-load" ./cmd/stack-load

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
host=127.0.0.1:$port
cat >"$work/registry.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: $host
YML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
regpid=$!
i=0
until curl -fs "http://$host/v2/" >/dev/null 2>&1 || wget -q -O /dev/null "http://$host/v2/" 2>/dev/null; do
	i=$((i + 1)); [ $i -gt 300 ] && { echo "registry did not start"; cat "$work/registry.log"; exit 1; }
	sleep 0.05
done

# A docker-archive by hand: five layers of 10 MiB of random data each.
mkdir -p "$work/arch"
layers="" diffs=""
for n in 1 2 3 4 5; do
	mkdir -p "$work/l$n/data"
	head -c 10485760 /dev/urandom >"$work/l$n/data/blob$n"
	tar -C "$work/l$n" -cf "$work/arch/l$n.tar" data
	d=$(sha256sum "$work/arch/l$n.tar" | cut -d' ' -f1)
	layers="$layers${layers:+,}\"l$n.tar\""
	diffs="$diffs${diffs:+,}\"sha256:$d\""
done
printf '{"architecture":"amd64","os":"linux","config":{"Cmd":["/data"]},"rootfs":{"type":"layers","diff_ids":[%s]}}' "$diffs" >"$work/arch/config.json"
printf '[{"Config":"config.json","RepoTags":["bench:1"],"Layers":[%s]}]' "$layers" >"$work/arch/manifest.json"
tar -C "$work/arch" -cf "$work/bench.tar" manifest.json config.json l1.tar l2.tar l3.tar l4.tar l5.tar
skopeo --insecure-policy copy --quiet --dest-tls-verify=false "docker-archive:$work/bench.tar" "docker://$host/bench:1"

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
: >"$work/t.stack"; : >"$work/t.skopeo"
for r in $(seq "$RUNS"); do
	t0=$(now)
	"$work/stack" --root "$work/root$r" image pull -q "$host/bench:1" >/dev/null
	t1=$(now)
	skopeo --insecure-policy copy --quiet --src-tls-verify=false "docker://$host/bench:1" "dir:$work/dir$r"
	t2=$(now)
	s=$(echo "$t1 - $t0" | bc); k=$(echo "$t2 - $t1" | bc)
	echo "$s" >>"$work/t.stack"; echo "$k" >>"$work/t.skopeo"
	printf 'run %d: stack image pull %.3fs   skopeo copy dir: %.3fs\n' "$r" "$s" "$k"
	rm -rf "$work/root$r" "$work/dir$r"
done
t0=$(now)
"$work/stack" --root "$work/rootw" image pull -q "$host/bench:1" >/dev/null
t1=$(now)
"$work/stack" --root "$work/rootw" image pull -q "$host/bench:1" >/dev/null
t2=$(now)
printf 'median: stack image pull %.3fs   skopeo copy dir: %.3fs   (50 MiB, 5 layers, %d runs)\n' \
	"$(median <"$work/t.stack")" "$(median <"$work/t.skopeo")" "$RUNS"
printf 'stack image pull of an image already in the store: %.3fs\n' "$(echo "$t2 - $t1" | bc)"
