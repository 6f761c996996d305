#!/usr/bin/env bash
# Integration test of registry mirrors from the config file (`[registries."HOST"] mirrors`)
# against real docker-registry instances on 127.0.0.1: a mirror that is down and one that
# lacks the repository are skipped with a warning and the registry is used; with the
# registry stopped, the image comes from the mirror that has it, stored under the name asked
# for and with the registry's digest; without the mirror the same pull fails.
#
#   STOCKADE=target/debug/stockade scripts/integration/mirrors.sh
#
# Needs: docker-registry python3 curl busybox-static (scripts/setup.sh installs them). Ends
# with "N passed, N failed"; every registry and temporary file goes away on exit.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tap.sh
source "$HERE/tap.sh"
stockade_binary mirrors.sh
need_tools mirrors.sh docker-registry python3 curl

WORK=$(mktemp -d /tmp/stockade-mirrors.XXXXXX)
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
declare -A PORT PID
start_registry() { # start_registry NAME; sets PORT[NAME] and PID[NAME]
    local name=$1 port dir
    port=$(free_port)
    dir=$WORK/registry-$name
    mkdir -p "$dir/storage"
    {
        printf 'version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n'
        printf 'storage:\n  filesystem:\n    rootdirectory: %s\n' "$dir/storage"
        printf 'http:\n  addr: 127.0.0.1:%s\n' "$port"
    } >"$dir/config.yml"
    REGISTRY_HTTP_SECRET=stockade-test docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
    PIDS+=($!)
    PID[$name]=$!
    for _ in $(seq 1 100); do
        curl -s -o /dev/null "http://127.0.0.1:$port/v2/" && break
        sleep 0.1
    done
    PORT[$name]=$port
}

start_registry origin
start_registry mirror
start_registry empty
ORIGIN=127.0.0.1:${PORT[origin]}
MIRROR=127.0.0.1:${PORT[mirror]}
EMPTY=127.0.0.1:${PORT[empty]}
DOWN=127.0.0.1:$(free_port) # nothing listens there

export HOME=$WORK/home
unset REGISTRY_AUTH_FILE XDG_RUNTIME_DIR DOCKER_CONFIG STOCKADE_CONFIG STOCKADE_IMAGE_ROOT
mkdir -p "$HOME"
S() { "$STOCKADE" "$@"; }
store_digest() { "$STOCKADE" image --image-root "$1" ls --json | python3 -c 'import json,sys; n=sys.argv[1]; print([i["digest"] for i in json.load(sys.stdin) if i["name"]==n][0])' "$2"; }

python3 "$HERE/mkimage.py" "$WORK/layout" v1 --layer busybox --layer file:etc/app.conf=hello >/dev/null \
    || { echo "mirrors.sh: building the image failed" >&2; exit 2; }
ST=$WORK/store
S image --image-root "$ST" import --tag "$ORIGIN/lib/app:v1" "$WORK/layout" >/dev/null \
    || { echo "mirrors.sh: import failed" >&2; exit 2; }
WANT=$(store_digest "$ST" "$ORIGIN/lib/app:v1")
if ! S image --image-root "$ST" push "$ORIGIN/lib/app:v1" >/dev/null 2>&1 \
    || ! S image --image-root "$ST" push "$ORIGIN/lib/app:v1" "$MIRROR/lib/app:v1" >/dev/null 2>&1; then
    echo "mirrors.sh: pushing the fixtures failed" >&2
    exit 2
fi

CONF=$WORK/stockade.conf
printf '[registries."%s"]\nmirrors = ["%s", "%s", "%s"]\n' "$ORIGIN" "$DOWN" "$EMPTY" "$MIRROR" >"$CONF"
ONLY_BROKEN=$WORK/broken.conf
printf '[registries."%s"]\nmirrors = ["%s", "%s"]\n' "$ORIGIN" "$DOWN" "$EMPTY" >"$ONLY_BROKEN"

# ---------------------------------------------------------------------------------------
out=$(S --config "$ONLY_BROKEN" image --image-root "$WORK/s1" pull -q "$ORIGIN/lib/app:v1" 2>&1)
if [ "$(tail -1 <<<"$out")" = "$WANT" ] && grep -q "mirror $DOWN failed" <<<"$out" \
    && grep -q "mirror $EMPTY failed" <<<"$out"; then
    ok "a mirror that is down and one without the repository are skipped with a warning each; the registry serves"
else
    not_ok "fallback to the registry" "$out"
fi

kill "${PID[origin]}"
wait "${PID[origin]}" 2>/dev/null
out=$(S --config "$CONF" image --image-root "$WORK/s2" pull -q "$ORIGIN/lib/app:v1" 2>&1)
if [ "$(tail -1 <<<"$out")" = "$WANT" ] && [ "$(store_digest "$WORK/s2" "$ORIGIN/lib/app:v1")" = "$WANT" ]; then
    ok "with the registry down, the third mirror serves; stored under the registry's name with its digest"
else
    not_ok "pull through a mirror" "$out"
fi
out=$(STOCKADE_CONFIG=$CONF S image --image-root "$WORK/s3" pull -q "$ORIGIN/lib/app@$WANT" 2>&1)
if [ "$(tail -1 <<<"$out")" = "$WANT" ]; then
    ok "a pull by digest through a mirror (STOCKADE_CONFIG names the file)"
else
    not_ok "pull by digest through a mirror" "$out"
fi
empty_conf=$WORK/empty.conf
: >"$empty_conf"
if S --config "$empty_conf" image --image-root "$WORK/s4" pull -q "$ORIGIN/lib/app:v1" >"$WORK/out4" 2>&1; then
    not_ok "without mirrors the pull must fail (the registry is down)" "$(cat "$WORK/out4")"
else
    ok "without the mirrors the same pull fails (so the mirror is what served)"
fi

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
