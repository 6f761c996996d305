#!/usr/bin/env bash
# Builds the busybox OCI image archive that the real-client integration tests load
# (containerd.sh, podman.sh). Nothing is downloaded: the root filesystem is Debian's
# statically linked /bin/busybox (busybox-static) with one symlink per applet, and the
# image is made by stockade itself: `image import` of the rootfs tarball as a one-layer
# linux/amd64 image, then `image export` of it as an OCI archive.
#
#   STOCKADE=target/debug/stockade scripts/integration/busybox-image.sh OUT.tar [NAME]
#
# NAME defaults to localhost/stockade/busybox:latest and is written to the archive's
# index.json as org.opencontainers.image.ref.name.
set -euo pipefail

OUT=${1:?usage: busybox-image.sh OUT.tar [NAME]}
NAME=${2:-localhost/stockade/busybox:latest}
STOCKADE=${STOCKADE:-${CARGO_TARGET_DIR:-target}/debug/stockade}
[ -x "$STOCKADE" ] || { echo "busybox-image.sh: no stockade binary at $STOCKADE" >&2; exit 2; }
[ -x /bin/busybox ] || { echo "busybox-image.sh: /bin/busybox is missing (busybox-static)" >&2; exit 2; }

TMP=$(mktemp -d /tmp/stockade-busybox-image.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

R=$TMP/rootfs
mkdir -p "$R/bin" "$R/etc" "$R/root" "$R/tmp" "$R/proc" "$R/sys" "$R/dev" "$R/run" "$R/var/tmp"
chmod 1777 "$R/tmp" "$R/var/tmp"
cp /bin/busybox "$R/bin/busybox"
for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -s busybox "$R/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$R/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$R/etc/group"
: >"$R/etc/hostname"
: >"$R/etc/hosts"
: >"$R/etc/resolv.conf"
tar --numeric-owner --owner=0 --group=0 -C "$R" -cf "$TMP/rootfs.tar" .

"$STOCKADE" image --image-root "$TMP/store" import --format rootfs --os linux --arch amd64 \
    --tag "$NAME" --env PATH=/bin --cmd '["sh"]' "$TMP/rootfs.tar" >/dev/null
"$STOCKADE" image --image-root "$TMP/store" export --format archive --name "$NAME" "$NAME" "$OUT" >/dev/null
