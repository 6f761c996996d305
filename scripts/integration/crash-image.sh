#!/usr/bin/env bash
# Crash safety of the image commands (issue 11), as root on Linux, with a debug build:
# each command is SIGKILLed TRIALS times (default 20): once at each of its named fault
# points (STOCKADE_FAULT=NAME, compiled into debug builds only; docs/storage.md lists
# them), the remaining trials at a random moment. After each kill the clean-up commands
# run (`delete --force ID`, `bundle rm`, `bundle prune`, `image prune`), and the trial is
# clean when nothing is left: no bundle, root filesystem, run record, temporary chain,
# store temporary or container state; every chain that exists equals a reference unpack;
# the store verifies (blobs hash to their names, named images have all their blobs); and
# the same command then works again under the same name.
#
#   STOCKADE=target/debug/stockade scripts/integration/crash-image.sh
#
# Prints "CMD: N trials / N clean" per command, ends with "N passed, N failed".
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tap.sh
source "$HERE/tap.sh"
stockade_binary crash-image.sh
need_root crash-image.sh
need_tools crash-image.sh python3 timeout sha256sum realpath
# The interpreter itself: a version-manager shim costs a shell start per call.
PY=$(python3 -c 'import sys; print(sys.executable)')

TRIALS=${TRIALS:-20}
TMP=$(mktemp -d /tmp/stockade-crash-image.XXXXXX)
cleanup() {
    local id pid m
    for id in $("$STOCKADE" --root "$TMP/run" list -q 2>/dev/null); do
        timeout 20 "$STOCKADE" --root "$TMP/run" delete --force "$id" >/dev/null 2>&1
    done
    for pid in $(pids_mentioning "$TMP/run"); do kill -KILL "$pid" 2>/dev/null; done
    # Overlay mounts a failed trial left: detached before their directories go.
    for m in $(overlay_mounts "$TMP"); do umount -l "$m" 2>/dev/null; done
    rm -rf "$TMP"
}
# overlay_mounts DIR: the overlay mounts under DIR, deepest first.
overlay_mounts() { awk -v d="$1/" '$3 == "overlay" && index($2, d) == 1 {print $2}' /proc/mounts | sort -r; }
trap cleanup EXIT

export STOCKADE_IMAGE_ROOT=$TMP/store STOCKADE_STORAGE_ROOT=$TMP/st
# The sections below check the dir driver's layout; the overlay driver has its own section.
export STOCKADE_STORAGE_DRIVER=dir
unset STOCKADE_FAULT
BB=localhost/stockade/busybox:latest
MULTI=localhost/crash/multi:1
# Clean-up commands get a timeout: one that blocks is a failed trial, not a hung suite.
S() { timeout 30 "$STOCKADE" --root "$TMP/run" "$@"; }


# --- images and the reference chain ---------------------------------------------------
bash "$HERE/busybox-image.sh" "$TMP/bb.tar" >/dev/null || { echo "crash-image.sh: cannot build the busybox image" >&2; exit 2; }
"$PY" "$HERE/mkimage.py" "$TMP/layout" multi >/dev/null
S image import --format oci-archive "$TMP/bb.tar" >/dev/null || exit 2
S image import --format oci-dir --tag "$MULTI" "$TMP/layout" >/dev/null || exit 2
REF=$(S bundle --storage-root "$TMP/ref" prepare --image "$MULTI") || exit 2
REF_DIR=$TMP/ref/chains/${REF#sha256:}

# leftovers STORAGE_ROOT [IMAGE_ROOT] [deep]: prints what a crash left that clean-up did
# not take; with `deep`, also whether the store verifies and the chain equals the reference.
leftovers() {
    local st=$1 store=${2:-$TMP/store} deep=${3:-} d chains=() ns
    # This storage root's namespaces only (/run/stockade/netns/<key>/, the key hashing its
    # canonical path): other roots on the machine may run containers named rm1 as well.
    ns=/run/stockade/netns/$(printf %s "$(realpath -m "$st")" | sha256sum | cut -c1-16)
    for d in "$st"/bundles/* "$st"/containers/* "$st"/provisions/* "$st"/provisions/.* "$st"/chains/.tmp-* \
        "$st"/networks/attachments/* "$st"/networks/attachments/.* "$ns" \
        "$store"/.stockade/tmp/* "$TMP"/run/*; do
        case $d in */.|*/..) continue ;; esac
        if [ -e "$d" ] || [ -L "$d" ]; then echo "left: $d"; fi
    done
    [ -n "$deep" ] || return 0
    [ -d "$st/chains/${REF#sha256:}" ] && chains+=("$st/chains/${REF#sha256:}")
    "$PY" "$HERE/verifystore.py" "$store" "$REF_DIR" "${chains[@]}" || echo "store $store does not verify"
}

# kill_at POINT CMD...: runs CMD with the fault point set, or SIGKILLs it after a random
# delay of up to POINT's milliseconds when POINT is timed:MS.
kill_at() {
    local point=$1 pid ms
    shift
    if [[ $point == timed:* ]]; then
        ms=$((RANDOM % ${point#timed:}))
        "$STOCKADE" --root "$TMP/run" "$@" >/dev/null 2>&1 &
        pid=$!
        sleep "$(printf '0.%03d' "$ms")"
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    else
        # In a subshell of its own, whose stderr also takes the shell's "Killed" notice.
        (STOCKADE_FAULT=$point "$STOCKADE" --root "$TMP/run" "$@" >/dev/null 2>&1; true) 2>/dev/null
    fi
    return 0
}

# point_for N POINT...: the trial's kill point: the named ones first, then timed kills.
point_for() {
    local n=$1 timed=$2
    shift 2
    local points=("$@")
    if [ "$n" -lt "${#points[@]}" ]; then echo "${points[$n]}"; else echo "timed:$timed"; fi
}

# scrub ID: after a trial that left something, removes it by force (killing what still
# runs under the id: an orphaned init, a blocked delete), so the next trial starts clean.
# The trial has been counted as not clean already.
scrub() {
    local id=$1 pid
    for pid in $(pids_mentioning "--name $id --") $(pids_mentioning "delete --force $id"); do
        kill -KILL "$pid" 2>/dev/null
    done
    timeout 10 "$STOCKADE" --root "$TMP/run" delete --force "$id" >/dev/null 2>&1
    rm -rf "${TMP:?}/run/$id" "$TMP/st/bundles/$id" "$TMP/st/containers/$id" "$TMP/st/provisions/$id.json"
}

# add TEXT: appends a non-empty finding to the trial's $out, one per line.
add() { if [ -n "$1" ]; then out+="$1"$'\n'; fi; }

# report NAME CLEAN DETAILS: the per-command line and its TAP result.
report() {
    echo "# $1: $TRIALS trials / $2 clean ($((SECONDS - STARTED)) s)"
    STARTED=$SECONDS
    if [ "$2" -eq "$TRIALS" ]; then ok "$1: every killed trial cleaned up completely"; else not_ok "$1: $((TRIALS - $2)) trials left something" "$3"; fi
}

UNPACK_POINTS=(unpack:tmp-created unpack:before-rename)
STARTED=$SECONDS

# --- image import ---------------------------------------------------------------------
clean=0 details=
for ((i = 0; i < TRIALS; i++)); do
    p=$(point_for "$i" 300 store:blob-synced store:blob-committed store:before-index-write)
    kill_at "$p" image --image-root "$TMP/imp" import --format oci-dir --tag localhost/crash/imp:1 "$TMP/layout"
    S image --image-root "$TMP/imp" rm localhost/crash/imp:1 >/dev/null 2>&1
    S image --image-root "$TMP/imp" prune --storage-root "$TMP/imp-st" >/dev/null 2>&1
    out=; add "$(leftovers "$TMP/imp-st" "$TMP/imp" deep; [ -z "$(ls "$TMP/imp/blobs/sha256")" ] || echo "blobs left after rm and prune")"
    S image --image-root "$TMP/imp" import --format oci-dir --tag localhost/crash/imp:1 "$TMP/layout" >/dev/null 2>&1 || add "import failed after the crash"
    S image --image-root "$TMP/imp" rm localhost/crash/imp:1 >/dev/null 2>&1
    if [ -z "$out" ]; then clean=$((clean + 1)); else details+="[$p] $out"; fi
done
report "image import" "$clean" "$details"

# --- bundle prepare (a fresh storage root per trial, so every trial unpacks) ------------
clean=0 details=
for ((i = 0; i < TRIALS; i++)); do
    p=$(point_for "$i" 400 "${UNPACK_POINTS[@]}")
    st=$TMP/prep$i
    kill_at "$p" bundle --storage-root "$st" prepare --image "$MULTI"
    S bundle --storage-root "$st" prune >/dev/null 2>&1
    out=; add "$(leftovers "$st" "" deep)"
    S bundle --storage-root "$st" prepare --image "$MULTI" >/dev/null 2>&1 || add "prepare failed after the crash"
    add "$(leftovers "$st")"
    if [ -z "$out" ]; then clean=$((clean + 1)); else details+="[$p] $out"; fi
    rm -rf "$st"
done
report "bundle prepare" "$clean" "$details"

# --- bundle create --------------------------------------------------------------------
clean=0 details=
for ((i = 0; i < TRIALS; i++)); do
    p=$(point_for "$i" 500 "${UNPACK_POINTS[@]}" provision:chain-prepared provision:rootfs-created provision:bundle-written)
    st=$TMP/create$i
    kill_at "$p" bundle --storage-root "$st" create --image "$MULTI" --name b "$TMP/b$i"
    S bundle --storage-root "$st" rm b >/dev/null 2>&1
    S bundle --storage-root "$st" prune >/dev/null 2>&1
    rm -rf "$TMP/b$i" # the bundle directory is the caller's
    out=; add "$(leftovers "$st" "" deep)"
    S bundle --storage-root "$st" create --image "$MULTI" --name b "$TMP/b$i" >/dev/null 2>&1 || add "create failed after the crash"
    S bundle --storage-root "$st" rm b >/dev/null 2>&1
    rm -rf "$TMP/b$i"
    add "$(leftovers "$st")"
    if [ -z "$out" ]; then clean=$((clean + 1)); else details+="[$p] $out"; fi
    rm -rf "$st"
done
report "bundle create" "$clean" "$details"

RUN_POINTS=(run-image:recorded provision:chain-prepared provision:rootfs-created provision:bundle-written
    net:recorded net:netns-file net:netns-made net:result-saved net:added create:after-lock)
DELETE_POINTS=(delete:network-removed net:deleted net:netns-removed delete:rootfs-removed delete:bundle-removed)

# --- run --image --rm (foreground) ------------------------------------------------------
clean=0 details=
for ((i = 0; i < TRIALS; i++)); do
    p=$(point_for "$i" 400 "${RUN_POINTS[@]}" run-image:after-run "${DELETE_POINTS[@]}")
    kill_at "$p" run --image "$BB" --rm --name rm$i -- true
    out=
    d=$(S delete --force rm$i 2>&1) || add "delete --force rm$i: ${d:-timed out}"
    add "$(leftovers "$TMP/st" "" deep)"
    S run --image "$BB" --rm --name rm$i -- true >/dev/null 2>&1 || add "the same name failed after clean-up"
    add "$(leftovers "$TMP/st")"
    if [ -z "$out" ]; then clean=$((clean + 1)); else details+="[$p] $out"; scrub rm$i; fi
done
report "run --image --rm" "$clean" "$details"

# --- run --image -d, then delete ------------------------------------------------------
clean=0 details=
for ((i = 0; i < TRIALS; i++)); do
    p=$(point_for "$i" 400 "${RUN_POINTS[@]}" "${DELETE_POINTS[@]}")
    case $p in
    delete:* | net:deleted | net:netns-removed)
        # The kill hits the delete that follows a detached run.
        S run --image "$BB" -d --name d$i -- sleep 30 >/dev/null 2>&1
        kill_at "$p" delete --force d$i
        ;;
    *) kill_at "$p" run --image "$BB" -d --name d$i -- sleep 30 ;;
    esac
    out=
    d=$(S delete --force d$i 2>&1) || add "delete --force d$i: ${d:-timed out}"
    add "$(leftovers "$TMP/st" "" deep)"
    if S run --image "$BB" -d --name d$i -- sleep 30 >/dev/null 2>&1; then
        S delete --force d$i >/dev/null 2>&1 || add "delete --force failed"
    else
        add "the same name failed after clean-up"
    fi
    add "$(leftovers "$TMP/st")"
    if [ -z "$out" ]; then clean=$((clean + 1)); else details+="[$p] $out"; scrub d$i; fi
done
report "run --image -d + delete" "$clean" "$details"

# --- image rm and image prune (chains and blobs) ---------------------------------------
clean=0 details=
for ((i = 0; i < TRIALS; i++)); do
    p=$(point_for "$i" 300 prune:keep-computed prune:chain-renamed store:prune-blob-removed)
    st=$TMP/prune$i
    S image import --format oci-dir --tag localhost/crash/gone:1 "$TMP/layout" >/dev/null 2>&1
    S bundle --storage-root "$st" prepare --image localhost/crash/gone:1 >/dev/null 2>&1
    S image rm localhost/crash/gone:1 >/dev/null 2>&1
    S image rm "$MULTI" >/dev/null 2>&1 # the same layers: both names go, then come back
    if [ $((i % 2)) -eq 0 ]; then
        kill_at "$p" image prune --storage-root "$st"
    else
        kill_at "$p" bundle --storage-root "$st" prune
    fi
    S image prune --storage-root "$st" >/dev/null 2>&1
    out=; add "$(leftovers "$st" "" deep; [ -z "$(ls "$st/chains")" ] || echo "a chain no image needs was kept")"
    S image import --format oci-dir --tag "$MULTI" "$TMP/layout" >/dev/null 2>&1 || add "re-import failed"
    S bundle --storage-root "$st" prepare --image "$MULTI" >/dev/null 2>&1 || add "prepare failed after the crash"
    add "$(leftovers "$st")"
    if [ -z "$out" ]; then clean=$((clean + 1)); else details+="[$p] $out"; fi
    rm -rf "$st"
done
report "image rm/prune" "$clean" "$details"

# --- run --image --rm with the overlay driver (a fresh storage root per trial) ----------
# Checks that nothing is left: no container directory (so no upper directory), no
# overlay mount, no temporary layer, record or bundle; and that the run then works.
if [ "$(uname -s)" = Linux ]; then
    export STOCKADE_STORAGE_DRIVER=overlay
    OVERLAY_POINTS=(overlay:layer-tmp-created overlay:layers-unpacked run-image:recorded overlay:before-mount overlay:mounted provision:rootfs-created provision:bundle-written run-image:after-run overlay:unmounted delete:rootfs-removed)
    clean=0 details=
    for ((i = 0; i < TRIALS; i++)); do
        p=$(point_for "$i" 500 "${OVERLAY_POINTS[@]}")
        st=$TMP/ovl$i
        kill_at "$p" run --image "$BB" --storage-root "$st" --rm --name o$i -- true
        out=
        d=$(S delete --force --storage-root "$st" o$i 2>&1) || add "delete --force o$i: ${d:-timed out}"
        S bundle --storage-root "$st" prune >/dev/null 2>&1
        add "$(leftovers "$st")"
        for d in "$st"/overlay/containers/* "$st"/overlay/layers/.tmp-*; do
            if [ -e "$d" ]; then add "left: $d"; fi
        done
        add "$(overlay_mounts "$st" | sed 's/^/still mounted: /')"
        r=$(S run --image "$BB" --storage-root "$st" --rm --name o$i -- cat /etc/passwd 2>&1) && grep -q '^root:' <<<"$r" ||
            add "the same name failed after clean-up: $r"
        add "$(leftovers "$st")"
        if [ -z "$out" ]; then clean=$((clean + 1)); else details+="[$p] $out"; fi
        for m in $(overlay_mounts "$st"); do umount -l "$m"; done
        rm -rf "$st"
    done
    report "run --image --rm (overlay)" "$clean" "$details"
    export STOCKADE_STORAGE_DRIVER=dir
fi

# --- bounds, through the CLI flags -------------------------------------------------------
"$PY" - "$TMP/bomb" <<'PY'
import gzip, hashlib, io, json, os, sys, tarfile
out = sys.argv[1]; blobs = os.path.join(out, "blobs", "sha256"); os.makedirs(blobs)
def put(b):
    d = hashlib.sha256(b).hexdigest(); open(os.path.join(blobs, d), "wb").write(b); return d
class Zeros(io.RawIOBase):
    def __init__(self, n): self.n = n
    def readinto(self, b):
        k = min(len(b), self.n); b[:k] = bytes(k); self.n -= k; return k
raw = io.BytesIO()
with tarfile.open(fileobj=raw, mode="w") as t:
    d = "/".join(["d"] * 200); ti = tarfile.TarInfo(d + "/deep"); t.addfile(ti, io.BytesIO())
    ti = tarfile.TarInfo("bomb"); ti.size = 256 << 20; t.addfile(ti, Zeros(ti.size))
raw = raw.getvalue(); gz = gzip.compress(raw, 1)
cfg = json.dumps({"os": "linux", "architecture": "amd64", "config": {"Cmd": ["/x"]},
                  "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw).hexdigest()]}}).encode()
m = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + put(cfg), "size": len(cfg)},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "sha256:" + put(gz), "size": len(gz)}]}).encode()
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
    "digest": "sha256:" + put(m), "size": len(m), "annotations": {"org.opencontainers.image.ref.name": "bomb"}}]},
    open(os.path.join(out, "index.json"), "w"))
json.dump({"imageLayoutVersion": "1.0.0"}, open(os.path.join(out, "oci-layout"), "w"))
PY
echo "# bound images made ($((SECONDS - STARTED)) s)"
S image import --format oci-dir --tag localhost/crash/bomb:1 "$TMP/bomb" >/dev/null 2>&1
BOMB_LAYER=$("$PY" -c "import json,sys; m=json.load(open(sys.argv[1]+'/index.json'))['manifests'][0]['digest'].split(':')[1]; print(json.load(open(sys.argv[1]+'/blobs/sha256/'+m))['layers'][0]['digest'])" "$TMP/bomb")
mkdir -p "$TMP/small"
if mount -t tmpfs -o size=64m stockade-crash "$TMP/small" 2>/dev/null; then
    out=$(S bundle --storage-root "$TMP/small/st" --max-unpacked-size 32m prepare --image localhost/crash/bomb:1 2>&1)
    if [ $? -ne 0 ] && grep -q -- "$BOMB_LAYER" <<<"$out" && grep -q -- --max-unpacked-size <<<"$out"; then
        ok "a 256 MiB bomb stops at --max-unpacked-size 32m on a 64 MiB tmpfs, naming the layer"
    else
        not_ok "bomb with --max-unpacked-size" "$out"
    fi
    out=$(S bundle --storage-root "$TMP/small/st" --max-path-depth 100 prepare --image localhost/crash/bomb:1 2>&1)
    if [ $? -ne 0 ] && grep -q -- "$BOMB_LAYER" <<<"$out" && grep -q -- --max-path-depth <<<"$out"; then
        ok "a 200-deep entry is refused with --max-path-depth 100, naming the layer"
    else
        not_ok "deep entry with --max-path-depth" "$out"
    fi
    check "nothing of the refused unpacks is left on the tmpfs" bash -c "[ -z \"\$(ls -A '$TMP/small/st/chains')\" ]"
    umount "$TMP/small"
else
    not_ok "mounting a 64 MiB tmpfs for the bound tests"
fi

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
