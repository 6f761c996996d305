#!/usr/bin/env bash
# Every benchmark in one run, side by side with its peers, and the physical floors measured
# on the same machine; ends with one table of ratios (markdown, for the README).
#
#   lifecycle (plain, confined)  scripts/bench/lifecycle.sh  stockade vs crun and runc; peak RSS
#   pull                         scripts/bench/pull.sh       stockade vs skopeo, local registry
#   unpack, rootfs per driver    scripts/bench/unpack.sh     stockade dir/overlay vs tar, umoci;
#                                                            first/second rootfs, removal; zfs clone
#   shim                         scripts/bench/shim.sh       ctr run --rm through the stockade shim
#                                                            vs the runc v2 shim; its idle RSS
#   floors                       here and in unpack.sh       unshare + chroot + exec /bin/true;
#                                                            tar into tmpfs; sha256 of the blobs
#
#   STOCKADE=target/release/stockade scripts/bench/all.sh
#
# The shim benchmark needs a release shim next to the binary
# (cargo build --release -p stockade -p stockade-shim); SHIM names another.
#
# N (lifecycles per runtime, default 100), PULL_ROUNDS (default 3), UNPACK_RUNS (default 3),
# SHIM_RUNS (ctr runs per shim, default 30) and SCALE (unpack image size, default 30)
# trade time for noise. A benchmark, not a test:
# it exits 0 unless a benchmark could not run. Needs root and what scripts/setup.sh installs.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
STOCKADE=$(realpath "${STOCKADE:-${CARGO_TARGET_DIR:-$HERE/../../target}/release/stockade}")
N=${N:-100}
PULL_ROUNDS=${PULL_ROUNDS:-3}
UNPACK_RUNS=${UNPACK_RUNS:-3}
SHIM_RUNS=${SHIM_RUNS:-30}
SHIM=$(realpath -m "${SHIM:-$(dirname "$STOCKADE")/containerd-shim-stockade-v1}")
BUSYBOX=${BUSYBOX:-/bin/busybox}
[ -x "$STOCKADE" ] || { echo "all.sh: no stockade binary at $STOCKADE (cargo build --release -p stockade)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "all.sh: must run as root" >&2; exit 2; }

OUT=$(mktemp -d /tmp/stockade-bench-all.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
failed=()

# bench NAME CMD...: runs one benchmark script, its output kept for the table.
bench() {
    local name=$1
    shift
    echo "==> $name"
    if ! "$@" 2>&1 | tee "$OUT/$name.log"; then
        failed+=("$name")
    fi
}

bench lifecycle env STOCKADE="$STOCKADE" N="$N" RSS_RUNS=10 bash "$HERE/lifecycle.sh"
bench pull env STOCKADE="$STOCKADE" ROUNDS="$PULL_ROUNDS" bash "$HERE/pull.sh"
bench unpack env STOCKADE="$STOCKADE" bash "$HERE/unpack.sh" "$UNPACK_RUNS"
if [ -x "$SHIM" ]; then
    bench shim env STOCKADE="$STOCKADE" SHIM="$SHIM" N="$SHIM_RUNS" bash "$HERE/shim.sh"
else
    echo "==> shim: no shim binary at $SHIM (cargo build --release -p stockade-shim)"
    failed+=(shim)
fi

# --- the lifecycle floor: namespaces + chroot + exec of /bin/true --------------------------
echo "==> floor: unshare + chroot + /bin/true"
ROOT=$OUT/floor-rootfs
mkdir -p "$ROOT/bin"
cp "$BUSYBOX" "$ROOT/bin/busybox"
ln -s busybox "$ROOT/bin/true"
: >"$OUT/floor-times"
for ((i = 0; i < N; i++)); do
    t0=$(date +%s%N)
    unshare --mount --uts --ipc --net --pid --fork chroot "$ROOT" /bin/true
    echo $((($(date +%s%N) - t0) / 1000)) >>"$OUT/floor-times"
done
FLOOR_MS=$(sort -n "$OUT/floor-times" | awk '{v[NR]=$1} END {printf "%.3f", v[int((NR+1)/2)] / 1000}')
echo "median: $FLOOR_MS ms"

# --- the table -----------------------------------------------------------------------------
# life CASE RUNTIME: the median ms of a runtime in a lifecycle case.
life() {
    awk -v c="$1" -v rt="$2" '$1 == "case:" {cur = $2} cur == c && $1 == rt && NF == 3 {print $2}' "$OUT/lifecycle.log" | tail -n 1
}
res() { awk -v k="$1" '$1 == "result:" && $2 == k {print $3}' "$OUT/unpack.log" | tail -n 1; }
div() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}' || echo "n/a"; }
or_na() { if [ -n "$1" ]; then echo "$1"; else echo "n/a"; fi; }

pull_line=$(grep '^median: stockade' "$OUT/pull.log" | tail -n 1)
pull_s=$(sed -nE 's/^median: stockade ([0-9.]+) s, skopeo ([0-9.]+) s.*/\1/p' <<<"$pull_line")
pull_k=$(sed -nE 's/^median: stockade ([0-9.]+) s, skopeo ([0-9.]+) s.*/\2/p' <<<"$pull_line")
pull_sha=$(sed -nE 's/^floor: sha256 of the blobs ([0-9.]+) s.*/\1/p' "$OUT/pull.log" | tail -n 1)
rss=$(sed -nE 's/^plain stockade peak RSS: ([0-9]+) KiB.*/\1/p' "$OUT/lifecycle.log" | tail -n 1)
tar_s=$(res tar-disk-s)

echo
echo "## Benchmarks ($(date -u +%Y-%m-%d), $(git -C "$HERE" rev-parse --short HEAD 2>/dev/null || echo '?'))"
echo
echo "Machine: $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)), $(free -g | awk '/^Mem:/ {print $2}') GiB, Linux $(uname -r), storage on $(df -T "${BENCH_DIR:-/var/tmp}" | awk 'NR == 2 {print $2}')."
echo
echo "| benchmark | stockade | peer | ratio | target | floor on this machine |"
echo "|---|---|---|---|---|---|"
for c in plain confined; do
    s=$(life "$c" stockade) k=$(life "$c" crun) r=$(life "$c" runc)
    echo "| lifecycle $c (ms) | $(or_na "$s") | crun $(or_na "$k"), runc $(or_na "$r") | $(div "$s" "$k") × crun, $(div "$s" "$r") × runc | | unshare+chroot+exec $FLOOR_MS ms ($(div "$s" "$FLOOR_MS") ×) |"
done
echo "| pull (s) | $(or_na "$pull_s") | skopeo $(or_na "$pull_k") | $(div "$pull_s" "$pull_k") | ≤ 0.7 | sha256 of the same blobs, one thread $(or_na "$pull_sha") s |"
for d in dir overlay; do
    p=$(res "prep-$d-s")
    [ -n "$p" ] || continue
    echo "| unpack, bundle prepare, $d (s, sync incl.) | $p | tar -xzf $(or_na "$tar_s"), umoci $(or_na "$(res umoci-s)") | $(res "unpack-$d-vs-tar") × tar | ≤ 0.6 × tar | tar into tmpfs $(or_na "$(res floor-tar-tmpfs-s)") s |"
    echo "| first rootfs / prepare alone, $d | $(res "first-$d-s") s | | $(res "first-rootfs-vs-prepare-$d") | ≤ 1.3 | |"
    echo "| second rootfs, $d (s) | $(res "second-rootfs-$d-s") | | | ≤ 0.1 s | |"
    echo "| rootfs removal, $d (s) | $(res "rootfs-removal-$d-s") | | | O(1) | |"
done
z=$(res second-rootfs-zfs-vs-clone)
if [ -n "$z" ]; then
    echo "| second rootfs, zfs (s) | $(res zfs-second-s) | bare zfs clone $(res zfs-clone-s) | $z | ≤ 1.5 | clone + stockade's process start ($(or_na "$(res stockade-start-s)") s) |"
else
    echo "| second rootfs, zfs | n/a (zfs-fuse could not run) | | | | |"
fi
echo "| peak RSS (lifecycle) | $(or_na "$rss") KiB | | | | |"
shim_line=$(grep '^ctr run --rm /bin/true' "$OUT/shim.log" 2>/dev/null | tail -n 1)
shim_s=$(sed -nE 's/.*stockade shim ([0-9.]+) ms.*/\1/p' <<<"$shim_line")
shim_r=$(sed -nE 's/.*runc v2 shim \+ runc ([0-9.]+) ms.*/\1/p' <<<"$shim_line")
shim_rss=$(sed -nE 's/^stockade shim idle RSS: ([0-9]+) kB.*/\1/p' "$OUT/shim.log" 2>/dev/null | tail -n 1)
echo "| shim: ctr run --rm /bin/true (ms) | $(or_na "$shim_s") | runc v2 shim + runc $(or_na "$shim_r") | $(div "$shim_s" "$shim_r") | ≤ 0.7 | |"
echo "| shim idle RSS | $(or_na "$shim_rss") KiB | | | ≤ 10240 KiB | |"
if ((${#failed[@]})); then
    echo
    echo "benchmarks that failed: ${failed[*]}"
    exit 1
fi
