#!/usr/bin/env bash
# Unpacking benchmark (issues 7 and 17). One multi-layer image (>= 200 MB uncompressed,
# thousands of files, whiteouts, an opaque directory, hard links) unpacked side by side,
# alternating within each round, every timing including a final `sync`:
#   - stockade `bundle prepare` with the dir driver (layers flattened into one tree),
#   - stockade `bundle prepare` with the overlay driver (each layer into its own directory),
#   - `umoci unpack`,
#   - plain `tar -xzf` of each layer in turn (no whiteout handling at all),
# and the physical floors measured on the same machine: the same tars into a tmpfs (the
# cost without the disk) and sha256 of the image's layer blobs. Then the cost of a first
# root filesystem (`bundle create` into a fresh storage: prepare + rootfs) against prepare
# alone, and of a second root filesystem of the image, per driver; on a zfs-fuse pool on
# a file vdev (when zfs-fuse can run), a second zfs rootfs against a bare `zfs clone`.
#
#   STOCKADE=target/release/stockade scripts/bench/unpack.sh [RUNS]
#
# SCALE (default 30: about 230 MB uncompressed, 7000+ files) sizes the image. Each figure
# is the median of RUNS (default 3) runs, each into a fresh directory on the same
# filesystem ($BENCH_DIR, default /var/tmp). Lines starting with `result:` are read by
# scripts/bench/all.sh.
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
    awk -v d="$TMP/" '$3 == "overlay" && index($2, d) == 1 {print $2}' /proc/mounts | sort -r |
        while read -r m; do umount -l "$m"; done
    mountpoint -q "$TMP/tmpfs" && umount -l "$TMP/tmpfs"
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

# timed CMD...: runs CMD then `sync`, printing the seconds both took.
timed() {
    sync
    local t0; t0=$(now)
    "$@" >/dev/null 2>"$TMP/err" || { cat "$TMP/err" >&2; return 1; }
    sync
    awk -v a="$t0" -v b="$(now)" 'BEGIN {print b - a}'
}
# fresh DIR: removes DIR (unmounting overlays under it first).
fresh() {
    awk -v d="$1/" '$3 == "overlay" && index($2, d) == 1 {print $2}' /proc/mounts | sort -r |
        while read -r m; do umount -l "$m"; done
    rm -rf "$1"
}
SK=("$STOCKADE" bundle --image-root "$TMP/store")
IMG=localhost/bench/unpack:1
prep() { fresh "$TMP/st-$1"; timed "${SK[@]}" --storage-root "$TMP/st-$1" --storage-driver "$1" prepare --image "$IMG"; }
first() { fresh "$TMP/st-$1"; rm -rf "$TMP/b-first"; timed "${SK[@]}" --storage-root "$TMP/st-$1" --storage-driver "$1" create --image "$IMG" --name first "$TMP/b-first"; }
run_umoci() { rm -rf "$TMP/umoci"; timed umoci unpack --image "$TMP/layout:bench" "$TMP/umoci"; }
# One entry of layer 3 (a directory where layer 2 left a file) makes GNU tar complain and
# carry on; that is its normal behaviour, so its status is not checked.
tar_all() { for l in "${LAYERS[@]}"; do tar -xzf "$l" -C "$1" 2>/dev/null || true; done; }
run_tar() { rm -rf "$1"; mkdir -p "$1"; timed tar_all "$1"; }
# openssl uses the CPU's SHA instructions, as stockade does; coreutils' sha256sum does not.
SHA=(sha256sum)
command -v openssl >/dev/null && SHA=(openssl dgst -sha256)
sha_all() { cat "${LAYERS[@]}" | "${SHA[@]}"; }

mkdir -p "$TMP/tmpfs"
mount -t tmpfs -o size=2g stockade-bench "$TMP/tmpfs"
HAVE_OVERLAY=1
"${SK[@]}" --storage-root "$TMP/st-probe" --storage-driver overlay prepare --image "$IMG" >/dev/null 2>&1 || HAVE_OVERLAY=
fresh "$TMP/st-probe"
DRIVERS=(dir); [ -n "$HAVE_OVERLAY" ] && DRIVERS+=(overlay)

# One untimed round warms the page cache for the blobs, the same for every contender.
for d in "${DRIVERS[@]}"; do prep "$d" >/dev/null; done
run_umoci >/dev/null; run_tar "$TMP/tar" >/dev/null
declare -A R
add() { R[$1]="${R[$1]:-} $2"; }
for i in $(seq "$RUNS"); do
    # The order rotates each round so that no contender always follows the same one.
    contenders=("${DRIVERS[@]}" umoci tar tmpfs sha)
    for ((k = 0; k < i % ${#contenders[@]}; k++)); do contenders=("${contenders[@]:1}" "${contenders[0]}"); done
    for c in "${contenders[@]}"; do
        case $c in
        dir | overlay) add "prep-$c" "$(prep "$c")" ;;
        umoci) add umoci "$(run_umoci)" ;;
        tar) add tar "$(run_tar "$TMP/tar")" ;;
        tmpfs) add tmpfs "$(run_tar "$TMP/tmpfs/t")" ;;
        sha) add sha "$(timed sha_all)" ;;
        esac
    done
    for d in "${DRIVERS[@]}"; do
        add "first-$d" "$(first "$d")"
        # The second root filesystem of an image already in storage.
        rm -rf "$TMP/b-second"
        add "second-$d" "$(timed "${SK[@]}" --storage-root "$TMP/st-$d" --storage-driver "$d" create --image "$IMG" --name "second$i" "$TMP/b-second")"
        add "rm-$d" "$(timed "${SK[@]}" --storage-root "$TMP/st-$d" --storage-driver "$d" rm "second$i")"
    done
done
med() { printf '%s\n' ${R[$1]} | median; }
show() {
    printf '%-46s %8s s   runs:%s\n' "$2" "$(med "$1")" "${R[$1]}"
    echo "result: $1-s $(med "$1")"
}
for d in "${DRIVERS[@]}"; do show "prep-$d" "stockade bundle prepare, $d driver"; done
show umoci "umoci unpack"
show tar "tar -xzf, each layer in turn"
show tmpfs "floor: tar -xzf into tmpfs"
show sha "floor: sha256 of the layer blobs"
for d in "${DRIVERS[@]}"; do
    show "first-$d" "first rootfs (bundle create), $d driver"
    show "second-$d" "second rootfs (bundle create), $d driver"
    show "rm-$d" "rootfs removal (bundle rm), $d driver"
done
t=$(med tar)
for d in "${DRIVERS[@]}"; do
    p=$(med "prep-$d")
    echo "result: unpack-$d-vs-tar $(ratio "$p" "$t") (target <= 0.60)"
    echo "result: unpack-$d-vs-umoci $(ratio "$p" "$(med umoci)")"
    echo "result: first-rootfs-vs-prepare-$d $(ratio "$(med "first-$d")" "$p") (target <= 1.30)"
    echo "result: second-rootfs-$d-s $(med "second-$d") (target <= 0.10 s)"
    echo "result: rootfs-removal-$d-s $(med "rm-$d")"
done
echo "result: floor-tar-tmpfs-s $(med tmpfs)"
echo "result: floor-sha256-s $(med sha)"
echo "result: tar-disk-s $t"

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
# Alternating, the order swapped every round; more rounds than the unpacks, since a
# clone costs milliseconds and the machine's scheduling noise is of the same order.
ZFS_RUNS=${ZFS_RUNS:-$((RUNS * 5))}
C=() B=() V=()
zfs_stockade() {
    local t0; t0=$(now)
    "$STOCKADE" bundle "${ZA[@]}" create --image localhost/bench/unpack:1 --name "c$1" "$TMP/b-c$1" >/dev/null 2>&1
    C+=("$(awk -v a="$t0" -v b="$(now)" 'BEGIN {print b - a}')")
}
zfs_bare() {
    local t0; t0=$(now)
    zfs clone "$snap" "$POOL/bare$1"
    B+=("$(awk -v a="$t0" -v b="$(now)" 'BEGIN {print b - a}')")
}
# What stockade adds to the clone at least: starting its own process (--version).
zfs_start() {
    local t0; t0=$(now)
    "$STOCKADE" --version >/dev/null
    V+=("$(awk -v a="$t0" -v b="$(now)" 'BEGIN {print b - a}')")
}
for i in $(seq "$ZFS_RUNS"); do
    if ((i % 2)); then zfs_stockade "$i"; zfs_bare "$i"; else zfs_bare "$i"; zfs_stockade "$i"; fi
    zfs_start
done
v=$(printf '%s\n' "${V[@]}" | median)
printf '%-34s %8s s   runs: %s\n' "stockade --version (process start)" "$v" "${V[*]}"
echo "result: stockade-start-s $v"
c=$(printf '%s\n' "${C[@]}" | median); b=$(printf '%s\n' "${B[@]}" | median)
printf '%-34s %8s s   runs: %s\n' "stockade bundle create (2nd+ rootfs)" "$c" "${C[*]}"
printf '%-34s %8s s   runs: %s\n' "bare zfs clone" "$b" "${B[*]}"
echo "result: zfs-second-s $c"
echo "result: zfs-clone-s $b"
echo "result: second-rootfs-zfs-vs-clone $(ratio "$c" "$b") (target <= 1.50)"
