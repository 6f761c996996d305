#!/usr/bin/env bash
# stockade's main job, end to end: a real container from a real image. The default image,
# localhost/stockade/busybox:latest, is built here from Debian's busybox-static and
# imported into stockade's image store on first use, so no network is needed; then
# `stockade run --image … --rm` unpacks it into a root filesystem, writes the bundle, runs
# the container in the foreground, exits with its status and removes everything. Without
# arguments it goes on with a service: a busybox httpd started with `run --image -d` on a
# published port, reached with curl, its log, then `stop` (its --rm removes it).
# Whatever happens, nothing of the demo is left behind.
#
#   scripts/demo.sh                      # a short tour of the container, then a service
#   scripts/demo.sh sh -c 'id; hostname' # any command
#   IMAGE=docker.io/library/alpine:3.20 scripts/demo.sh   # another image (pulled if missing)
#   PORT=8081 scripts/demo.sh            # the service's host port (default 18080)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/cargo-path.sh
source scripts/lib/cargo-path.sh
if [ "$(id -u)" != 0 ]; then
    echo "demo: stockade creates jails (namespaces on Linux) and needs root; run it with sudo" >&2
    exit 1
fi
command -v jq >/dev/null && command -v curl >/dev/null && [ -x /bin/busybox ] &&
    [ -x /usr/lib/cni/bridge ] || bash scripts/setup.sh
STOCKADE="${STOCKADE:-}"
if [ -z "$STOCKADE" ]; then
    cargo build --release -q -p stockade
    STOCKADE="${CARGO_TARGET_DIR:-target}/release/stockade"
fi
IMAGE="${IMAGE:-localhost/stockade/busybox:latest}"
PORT="${PORT:-18080}"
SERVICE="stockade-demo-web-$$"

work="$(mktemp -d /tmp/stockade-demo.XXXXXX)"
# Not replaced by `exec` below (the commands run as children): the service and the work
# directory go whatever ends the demo.
cleanup() {
    "$STOCKADE" rm -f "$SERVICE" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$IMAGE" = localhost/stockade/busybox:latest ] && ! "$STOCKADE" image inspect "$IMAGE" >/dev/null 2>&1; then
    echo "demo: building $IMAGE from /bin/busybox (busybox-static) and importing it" >&2
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
    status=0
    "$STOCKADE" run --image "$IMAGE" --rm -- "$@" || status=$?
    exit "$status"
fi
"$STOCKADE" run --image "$IMAGE" --rm -- sh -c \
    'echo "hello from $(hostname): $(uname -s), pid $$, uid $(id -u)"; echo mounts:; cut -d" " -f1-3 /proc/mounts; echo processes:; ps'

# A service: detached, on the default network, port $PORT of 127.0.0.1 published to its
# 8080. Its shell traps TERM (pid 1 of a container has no default action for it).
echo
echo "demo: a service: stockade run --image $IMAGE -d --rm -p 127.0.0.1:$PORT:8080 …"
id=$("$STOCKADE" run --image "$IMAGE" -d --rm --name "$SERVICE" -p "127.0.0.1:$PORT:8080" -- sh -c \
    'mkdir -p /www && echo "hello from $(hostname), a service on port 8080" > /www/index.html
     trap "echo stopping; exit 0" TERM; httpd -f -v -p 8080 -h /www & wait')
echo "demo: started $id"
for _ in $(seq 50); do curl -sf -m 1 "http://127.0.0.1:$PORT/" >/dev/null && break; sleep 0.2; done
echo "demo: curl http://127.0.0.1:$PORT/"
curl -sS -m 5 "http://127.0.0.1:$PORT/"
echo "demo: stockade logs $id"
"$STOCKADE" logs "$id" 2>&1
echo "demo: stockade stop $id (--rm: the monitor removes it)"
"$STOCKADE" stop "$id" >/dev/null
"$STOCKADE" inspect "$id" >/dev/null 2>&1 && echo "demo: $id is still there" >&2 || echo "demo: $id is gone"

