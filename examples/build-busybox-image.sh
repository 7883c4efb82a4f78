#!/usr/bin/env bash
# Builds a busybox image offline from Debian's busybox-static: every applet linked in /bin, as a
# rootfs tar imported into stack's image store, so counter.yaml and webapp.yaml (image: busybox)
# run with no registry. Usage: examples/build-busybox-image.sh STACK_BIN [REF]   (honours STACK_ROOT)
set -euo pipefail
stack=${1:?usage: build-busybox-image.sh STACK_BIN [REF]}
ref=${2:-busybox:latest}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

busybox=$(command -v busybox || true)
# ldd fails on a static binary: that is the one we want (the rootfs has no libc).
if [ -z "$busybox" ] || ldd "$busybox" >/dev/null 2>&1; then
  echo "build-busybox-image: need Debian's busybox-static (apt-get install busybox-static)" >&2; exit 1
fi

root=$work/rootfs
mkdir -p "$root"/{bin,tmp,etc,root}
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
  [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$root/etc/passwd"
echo 'nobody:x:65534:65534:nobody:/:/bin/false' >> "$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
chmod 1777 "$root/tmp"
tar -C "$root" --numeric-owner -cf "$work/rootfs.tar" .
"$stack" image import "$work/rootfs.tar" "$ref"
