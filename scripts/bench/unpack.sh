#!/usr/bin/env bash
# Unpacking benchmark (issue 7). One multi-layer image (>= 200 MB uncompressed, thousands
# of files, whiteouts, an opaque directory, hard links) unpacked side by side by:
#   - stockade's dir driver (`bundle prepare`: every layer verified and applied),
#   - `umoci unpack`,
#   - plain `tar -xzf` of each layer in turn (no whiteout handling at all),
# printing times and ratios. Then, on a zfs-fuse pool on a file vdev (when zfs-fuse can
# run), the cost of a second container root filesystem from an image already unpacked
# (`bundle create`) against a bare `zfs clone` of the same snapshot.
#
#   STOCKADE=target/release/stockade scripts/bench/unpack.sh [RUNS]
#
# SCALE (default 30: about 230 MB uncompressed, 7000+ files) sizes the image. Each figure
# is the median of RUNS (default 3) runs, each into a fresh directory on the same
# filesystem ($BENCH_DIR, default /var/tmp).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
STOCKADE=$(realpath "${STOCKADE:-${CARGO_TARGET_DIR:-target}/release/stockade}")
RUNS=${1:-3}
SCALE=${SCALE:-30}
[ -x "$STOCKADE" ] || { echo "bench/unpack.sh: no stockade binary at $STOCKADE" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "bench/unpack.sh: must run as root" >&2; exit 2; }

TMP=$(mktemp -d "${BENCH_DIR:-/var/tmp}/stockade-bench-unpack.XXXXXX")
POOL=stkbench$$
ZFS_PID= POOL_MADE=
cleanup() {
    if [ -n "$POOL_MADE" ]; then
        for _ in 1 2 3 4 5; do zpool destroy -f "$POOL" >/dev/null 2>&1 && break; sleep 0.5; done
    fi
    [ -z "$ZFS_PID" ] || { kill "$ZFS_PID" 2>/dev/null; wait "$ZFS_PID" 2>/dev/null || true; }
    rm -rf "$TMP"
}
trap cleanup EXIT

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }

echo "# building the image (scale $SCALE)"
python3 "$HERE/../integration/mkimage.py" "$TMP/layout" bench --scale "$SCALE" >"$TMP/layers"
mapfile -t LAYERS <"$TMP/layers"
bytes=0 files=0
for l in "${LAYERS[@]}"; do
    bytes=$((bytes + $(gzip -dc "$l" | wc -c)))
    files=$((files + $(tar -tzf "$l" | wc -l)))
done
echo "# image: ${#LAYERS[@]} layers, $((bytes / 1000000)) MB uncompressed, $files tar entries, $(du -sm "$TMP/layout" | cut -f1) MB compressed"
"$STOCKADE" image --image-root "$TMP/store" import --format oci-dir --tag localhost/bench/unpack:1 "$TMP/layout" >/dev/null

run_stockade() {
    rm -rf "$TMP/st"
    sync
    local t0; t0=$(now)
    "$STOCKADE" bundle --image-root "$TMP/store" --storage-root "$TMP/st" --storage-driver dir prepare --image localhost/bench/unpack:1 >/dev/null
    awk -v a="$t0" -v b="$(now)" 'BEGIN {print b - a}'
}
run_umoci() {
    rm -rf "$TMP/umoci"
    sync
    local t0; t0=$(now)
    umoci unpack --image "$TMP/layout:bench" "$TMP/umoci" >/dev/null
    awk -v a="$t0" -v b="$(now)" 'BEGIN {print b - a}'
}
run_tar() {
    rm -rf "$TMP/tar"; mkdir "$TMP/tar"
    sync
    local t0; t0=$(now)
    # One entry of layer 3 (a directory where layer 2 left a file) makes GNU tar complain
    # and carry on; that is its normal behaviour, so its status is not checked.
    for l in "${LAYERS[@]}"; do tar -xzf "$l" -C "$TMP/tar" 2>/dev/null || true; done
    awk -v a="$t0" -v b="$(now)" 'BEGIN {print b - a}'
}

# One untimed round warms the page cache for the blobs, the same for every contender.
run_stockade >/dev/null; run_umoci >/dev/null; run_tar >/dev/null
S=() U=() T=()
for _ in $(seq "$RUNS"); do
    S+=("$(run_stockade)"); U+=("$(run_umoci)"); T+=("$(run_tar)")
done
s=$(printf '%s\n' "${S[@]}" | median); u=$(printf '%s\n' "${U[@]}" | median); t=$(printf '%s\n' "${T[@]}" | median)
printf '%-34s %8s s   runs: %s\n' "stockade dir driver" "$s" "${S[*]}"
printf '%-34s %8s s   runs: %s\n' "umoci unpack" "$u" "${U[*]}"
printf '%-34s %8s s   runs: %s\n' "tar -xzf, each layer in turn" "$t" "${T[*]}"
echo "stockade / tar   = $(ratio "$s" "$t")   (target <= 0.80)"
echo "stockade / umoci = $(ratio "$s" "$u")   (target <= 0.80)"

# --- zfs: second container rootfs vs bare zfs clone -----------------------------------
if ! command -v zfs-fuse >/dev/null || [ ! -c /dev/fuse ]; then
    echo "# SKIP zfs: zfs-fuse or /dev/fuse is missing"
    exit 0
fi
if ! pgrep -x zfs-fuse >/dev/null; then
    zfs-fuse --no-daemon -p "$TMP/zfs-fuse.pid" >"$TMP/zfs-fuse.log" 2>&1 &
    ZFS_PID=$!
    for _ in $(seq 50); do zpool list >/dev/null 2>&1 && break; sleep 0.1; done
fi
truncate -s 2G "$TMP/vdev"
zpool create -m "$TMP/pool" "$POOL" "$TMP/vdev" && POOL_MADE=1
ZA=(--image-root "$TMP/store" --storage-root "$TMP/zst" --zfs-dataset "$POOL/stockade")
t0=$(now)
chain=$("$STOCKADE" bundle "${ZA[@]}" prepare --image localhost/bench/unpack:1)
echo "# zfs: first unpack into layer datasets took $(awk -v a="$t0" -v b="$(now)" 'BEGIN {print b - a}') s"
"$STOCKADE" bundle "${ZA[@]}" create --image localhost/bench/unpack:1 --name first "$TMP/b-first" >/dev/null 2>&1
snap="$POOL/stockade/layers/${chain#sha256:}@stockade"
C=() B=()
for i in $(seq "$RUNS"); do
    t0=$(now)
    "$STOCKADE" bundle "${ZA[@]}" create --image localhost/bench/unpack:1 --name "c$i" "$TMP/b-c$i" >/dev/null 2>&1
    C+=("$(awk -v a="$t0" -v b="$(now)" 'BEGIN {print b - a}')")
    t0=$(now)
    zfs clone "$snap" "$POOL/bare$i"
    B+=("$(awk -v a="$t0" -v b="$(now)" 'BEGIN {print b - a}')")
done
c=$(printf '%s\n' "${C[@]}" | median); b=$(printf '%s\n' "${B[@]}" | median)
printf '%-34s %8s s   runs: %s\n' "stockade bundle create (2nd+ rootfs)" "$c" "${C[*]}"
printf '%-34s %8s s   runs: %s\n' "bare zfs clone" "$b" "${B[*]}"
echo "second rootfs / zfs clone = $(ratio "$c" "$b")   (target <= 1.50)"
