#!/usr/bin/env bash
# Builds the pod sandbox ("pause") image for cri.sh as an OCI archive: one static binary,
# /pause (pause.c beside this script: holds the pod's namespaces, reaps, exits 0 on TERM or
# INT), compiled here with gcc; the image is made by stockade itself (`image import` of the
# rootfs tarball, `image export` as an archive), as busybox-image.sh does. Nothing is pulled.
#
#   STOCKADE=target/debug/stockade scripts/integration/pause-image.sh OUT.tar [NAME]
set -euo pipefail

OUT=${1:?usage: pause-image.sh OUT.tar [NAME]}
NAME=${2:-localhost/stockade/pause:latest}
HERE=$(cd "$(dirname "$0")" && pwd)
STOCKADE=${STOCKADE:-${CARGO_TARGET_DIR:-target}/debug/stockade}
[ -x "$STOCKADE" ] || { echo "pause-image.sh: no stockade binary at $STOCKADE" >&2; exit 2; }
command -v gcc >/dev/null || { echo "pause-image.sh: gcc is missing" >&2; exit 2; }

TMP=$(mktemp -d /tmp/stockade-pause-image.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

R=$TMP/rootfs
mkdir -p "$R/proc" "$R/sys" "$R/dev" "$R/etc"
gcc -static -Os -Wall -Werror -o "$R/pause" "$HERE/pause.c"
strip "$R/pause"
: >"$R/etc/hostname"
: >"$R/etc/hosts"
: >"$R/etc/resolv.conf"
tar --numeric-owner --owner=0 --group=0 -C "$R" -cf "$TMP/rootfs.tar" .

"$STOCKADE" image --image-root "$TMP/store" import --format rootfs --os linux --arch amd64 \
    --tag "$NAME" --entrypoint '["/pause"]' "$TMP/rootfs.tar" >/dev/null
"$STOCKADE" image --image-root "$TMP/store" export --format archive --name "$NAME" "$NAME" "$OUT" >/dev/null
