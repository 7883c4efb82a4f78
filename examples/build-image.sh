#!/usr/bin/env bash
# Builds the example image offline: the static example app plus Debian's busybox-static, as a
# rootfs tar imported into stack's image store (`stack image import`, like `docker import`).
# Usage: examples/build-image.sh STACK_BIN [REF]   (honours STACK_ROOT)
set -euo pipefail
stack=${1:?usage: build-image.sh STACK_BIN [REF]}
ref=${2:-stack-example:latest}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

busybox=$(command -v busybox || true)
# ldd fails on a static binary: that is the one we want (the rootfs has no libc).
if [ -z "$busybox" ] || ldd "$busybox" >/dev/null 2>&1; then
  echo "build-image: need Debian's busybox-static (apt-get install busybox-static)" >&2; exit 1
fi

root=$work/rootfs
mkdir -p "$root"/{bin,data,tmp,etc}
cp "$busybox" "$root/bin/busybox"
for t in sh wget cat ls echo sleep ps hostname id env; do ln -s busybox "$root/bin/$t"; done
# No -trimpath: it is part of every package's build cache key, so with it this build would
# compile the whole standard library again instead of reusing most of what building stack
# just compiled (about half a minute on two cores from a clean cache).
(cd "$here/.." && CGO_ENABLED=0 go build -ldflags '-s -w' -o "$root/app" ./examples/app)
echo 'root:x:0:0:root:/:/bin/sh' > "$root/etc/passwd"
echo 'root:x:0:' > "$root/etc/group"
chmod 1777 "$root/tmp"
tar -C "$root" --numeric-owner -cf "$work/rootfs.tar" .
"$stack" image import "$work/rootfs.tar" "$ref"
