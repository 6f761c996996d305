#!/usr/bin/env bash
# stockade's main job, end to end: a real container from a real image. The default image,
# localhost/stockade/busybox:latest, is built here from Debian's busybox-static and
# imported into stockade's image store on first use, so no network is needed; then
# `stockade run --image … --rm` unpacks it into a root filesystem, writes the bundle, runs
# the container in the foreground, exits with its status and removes everything.
#
#   scripts/demo.sh                      # a short tour of the container
#   scripts/demo.sh sh -c 'id; hostname' # any command
#   IMAGE=docker.io/library/alpine:3.20 scripts/demo.sh   # another image (pulled if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/cargo-path.sh
source scripts/lib/cargo-path.sh
if [ "$(id -u)" != 0 ]; then
    echo "demo: stockade creates jails (namespaces on Linux) and needs root; run it with sudo" >&2
    exit 1
fi
command -v jq >/dev/null && [ -x /bin/busybox ] || bash scripts/setup.sh
STOCKADE="${STOCKADE:-}"
if [ -z "$STOCKADE" ]; then
    cargo build --release -q -p stockade
    STOCKADE="${CARGO_TARGET_DIR:-target}/release/stockade"
fi
IMAGE="${IMAGE:-localhost/stockade/busybox:latest}"

if [ "$IMAGE" = localhost/stockade/busybox:latest ] && ! "$STOCKADE" image inspect "$IMAGE" >/dev/null 2>&1; then
    echo "demo: building $IMAGE from /bin/busybox (busybox-static) and importing it" >&2
    work="$(mktemp -d /tmp/stockade-demo.XXXXXX)"
    trap 'rm -rf "$work"' EXIT
    r="$work/rootfs"
    mkdir -p "$r"/{bin,etc,root,tmp,proc,sys,dev,run}
    chmod 1777 "$r/tmp"
    cp /bin/busybox "$r/bin/busybox"
    for applet in $(/bin/busybox --list); do [ "$applet" = busybox ] || ln -s busybox "$r/bin/$applet"; done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$r/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' > "$r/etc/group"
    tar --numeric-owner --owner=0 --group=0 -C "$r" -cf "$work/rootfs.tar" .
    "$STOCKADE" image import --format rootfs --os linux --tag "$IMAGE" --env PATH=/bin:/sbin \
        --cmd '["sh"]' "$work/rootfs.tar" >/dev/null
fi

if (($#)); then
    exec "$STOCKADE" run --image "$IMAGE" --rm -- "$@"
fi
exec "$STOCKADE" run --image "$IMAGE" --rm -- sh -c \
    'echo "hello from $(hostname): $(uname -s), pid $$, uid $(id -u)"; echo mounts:; cut -d" " -f1-3 /proc/mounts; echo processes:; ps'
