#!/usr/bin/env bash
# stockade's main job, end to end: a real container from a busybox root filesystem made on
# the spot from Debian's busybox-static, run in the foreground with `stockade run`.
# Usage: scripts/demo.sh [COMMAND ARG...]   (default: a short tour of the container)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
    echo "demo: stockade creates jails (namespaces on Linux) and needs root; run it with sudo" >&2
    exit 1
fi
[ -x /bin/busybox ] || bash scripts/setup.sh
STOCKADE="${STOCKADE:-}"
if [ -z "$STOCKADE" ]; then
    cargo build --release -q -p stockade
    STOCKADE="${CARGO_TARGET_DIR:-target}/release/stockade"
fi

work="$(mktemp -d /tmp/stockade-demo.XXXXXX)"
id="demo-$$"
cleanup() { "$STOCKADE" --root "$work/state" delete --force "$id" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# A busybox root filesystem: the static binary and a link per applet.
rootfs="$work/bundle/rootfs"
mkdir -p "$rootfs"/{bin,etc,proc,sys,dev,tmp,root}
cp /bin/busybox "$rootfs/bin/busybox"
for applet in $(/bin/busybox --list); do [ "$applet" = busybox ] || ln -sf busybox "$rootfs/bin/$applet"; done
echo 'root:x:0:0:root:/root:/bin/sh' > "$rootfs/etc/passwd"
echo 'root:x:0:' > "$rootfs/etc/group"

# A FreeBSD-flavoured config (devfs, fdescfs) from `stockade spec`, adjusted for the demo:
# the Linux backend maps devfs to a /dev with the standard devices and adds procfs.
"$STOCKADE" spec --bundle "$work/bundle"
if (($#)); then args=$(printf '%s\n' "$@" | jq -R . | jq -s .); else
    args='["sh","-c","echo \"hello from $(hostname): $(uname -s) pid $$, uid $(id -u)\"; echo mounts:; cat /proc/mounts | cut -d\" \" -f1-3; echo processes:; ps"]'
fi
jq --argjson args "$args" '.process.args = $args
    | .hostname = "stockade-demo"
    | .mounts += [{"destination": "/proc", "type": "procfs", "source": "proc"}]' \
    "$work/bundle/config.json" > "$work/config.json" && mv "$work/config.json" "$work/bundle/config.json"

"$STOCKADE" --root "$work/state" run --bundle "$work/bundle" "$id"
