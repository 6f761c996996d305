#!/usr/bin/env bash
# Crash safety of `image pull` (issue 11), as root, with a debug build: a pull from a
# docker-registry on loopback (a private config and port, stopped at the end) is SIGKILLed
# TRIALS times (default 20): once at each named fault point of the pull path
# (STOCKADE_FAULT=NAME; docs/storage.md lists them), the remaining trials at a random
# moment within the time an undisturbed pull takes. After each kill `image prune` runs
# (under a timeout: the killed pull's lock must not block it), and the trial is clean
# when: no temporary file is left in the store, every blob hashes to its name (nothing
# partial under a final name), a re-pull succeeds and leaves a store that verifies with
# all of the image's blobs, and after `image rm` + `image prune` no blob is left.
#
#   STOCKADE=target/debug/stockade scripts/integration/crash-pull.sh
#
# Prints "image pull: N trials / N clean", ends with "N passed, N failed".
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tap.sh
source "$HERE/tap.sh"
stockade_binary crash-pull.sh
need_root crash-pull.sh
need_tools crash-pull.sh docker-registry skopeo python3 curl timeout

TRIALS=${TRIALS:-20}
TMP=$(mktemp -d /tmp/stockade-crash-pull.XXXXXX)
REG_PID=
cleanup() {
    [ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null && wait "$REG_PID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
unset STOCKADE_FAULT

# --- the registry, as registry.sh runs it -------------------------------------------------
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$TMP/registry/storage"
{
    printf 'version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n'
    printf 'storage:\n  filesystem:\n    rootdirectory: %s\n' "$TMP/registry/storage"
    printf 'http:\n  addr: 127.0.0.1:%s\n' "$PORT"
} >"$TMP/registry/config.yml"
REGISTRY_HTTP_SECRET=stockade-test docker-registry serve "$TMP/registry/config.yml" >"$TMP/registry/log" 2>&1 &
REG_PID=$!
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/v2/" && break; sleep 0.1; done
curl -s -o /dev/null "http://127.0.0.1:$PORT/v2/" || { echo "crash-pull.sh: the registry did not start" >&2; exit 2; }

# A several-layer image of a few MB (the unpack tests' image), pushed with skopeo.
python3 "$HERE/mkimage.py" "$TMP/layout" multi --scale 4 >/dev/null || exit 2
REF=127.0.0.1:$PORT/crash/pull:1
skopeo copy -q --dest-tls-verify=false "oci:$TMP/layout:multi" "docker://$REF" || { echo "crash-pull.sh: pushing failed" >&2; exit 2; }

STORE=$TMP/store
S() { timeout 30 "$STOCKADE" image --image-root "$STORE" "$@"; }


# The random window: how long an undisturbed pull takes here.
t0=$(date +%s%N)
S pull "$REF" >/dev/null 2>&1 || { echo "crash-pull.sh: the first pull failed" >&2; exit 2; }
PULL_MS=$((($(date +%s%N) - t0) / 1000000 + 1))
S rm "$REF" >/dev/null 2>&1
S prune >/dev/null 2>&1
echo "# an undisturbed pull takes $PULL_MS ms"

POINTS=(pull:blob-partial store:blob-synced store:blob-committed pull:blobs-fetched
    pull:manifest-stored store:before-index-write)
STARTED=$SECONDS
clean=0 details= temps=0
for ((i = 0; i < TRIALS; i++)); do
    if [ "$i" -lt "${#POINTS[@]}" ]; then
        p=${POINTS[$i]}
        (STOCKADE_FAULT=$p "$STOCKADE" image --image-root "$STORE" pull "$REF" >/dev/null 2>&1; true) 2>/dev/null
    else
        ms=$((RANDOM % PULL_MS))
        p="timed:${ms}ms"
        "$STOCKADE" image --image-root "$STORE" pull "$REF" >/dev/null 2>&1 &
        pid=$!
        sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    fi
    out=
    [ -n "$(ls -A "$STORE/.stockade/tmp" 2>/dev/null)" ] && temps=$((temps + 1))
    S prune >/dev/null 2>&1 || out+="prune failed or blocked"$'\n'
    left=$(ls -A "$STORE/.stockade/tmp" 2>/dev/null)
    [ -z "$left" ] || out+="temporaries left after prune: $left"$'\n'
    v=$(python3 "$HERE/verifystore.py" "$STORE") || out+="after the crash: $v"$'\n'
    S pull "$REF" >/dev/null 2>&1 || out+="the re-pull failed"$'\n'
    v=$(python3 "$HERE/verifystore.py" "$STORE") || out+="after the re-pull: $v"$'\n'
    S ls -q | grep -qxF "$REF" || out+="the re-pulled image is not named"$'\n'
    S rm "$REF" >/dev/null 2>&1
    S prune >/dev/null 2>&1
    [ -z "$(ls -A "$STORE/blobs/sha256")" ] || out+="blobs left after rm and prune"$'\n'
    if [ -z "$out" ]; then clean=$((clean + 1)); else details+="[$p] $out"; fi
done
echo "# image pull: $TRIALS trials / $clean clean ($((SECONDS - STARTED)) s; $temps kills left temporaries for prune)"
if [ "$clean" -eq "$TRIALS" ]; then ok "image pull: every killed trial cleaned up completely"; else not_ok "image pull: $((TRIALS - clean)) trials left something" "$details"; fi
# The suite proves something only if kills did leave temporaries behind.
if [ "$temps" -gt 0 ]; then ok "killed pulls left temporaries (the kills hit the download)"; else not_ok "no killed pull left a temporary file: the kills missed the download"; fi

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
