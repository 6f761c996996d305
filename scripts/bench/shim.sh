#!/usr/bin/env bash
# Shim benchmark: `ctr run --rm <busybox> <id> /bin/true` through stockade's own shim
# (io.containerd.stockade.v1, the runtime in-process) against containerd's runc v2 shim with
# runc (io.containerd.runc.v2), N runs each, taking turns within each round, against one
# private containerd 1.6. Prints the median wall time per run for each, the ratio
# stockade/runc (the issue's goal: <= 0.7), and the stockade shim's RSS while idle (one
# detached sleeping container, after a second).
#
# The shim measured is a RELEASE build (the goal is about the shipped binary; a debug build
# is several times slower and says nothing about it):
#
#   cargo build --release -p stockade-shim && scripts/bench/shim.sh
#   N=30 SHIM=path/to/release/containerd-shim-stockade-v1 scripts/bench/shim.sh
#
# SHIM defaults to $CARGO_TARGET_DIR (else target)/release/containerd-shim-stockade-v1; a
# SHIM outside a release/ directory is refused unless BENCH_ALLOW_DEBUG=1. STOCKADE only
# builds the busybox image (release if built, else debug): it is not timed.
# Needs root, containerd, ctr, containerd-shim-runc-v2, runc, busybox-static, python3.
set -euo pipefail

HERE=$(cd "$(dirname "$0")/../integration" && pwd)
N=${N:-30}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$here/target}
SHIM=${SHIM:-$TARGET/release/containerd-shim-stockade-v1}
if [[ -z ${STOCKADE:-} ]]; then
    STOCKADE=$TARGET/release/stockade
    [[ -x $STOCKADE ]] || STOCKADE=$TARGET/debug/stockade
fi
die() { printf 'shim.sh: %s\n' "$*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || die "must run as root"
[[ -x $SHIM ]] || die "no shim at $SHIM: cargo build --release -p stockade-shim"
[[ -x $STOCKADE ]] || die "no stockade binary at $STOCKADE (it builds the busybox image): cargo build -p stockade"
[[ $SHIM == */release/* || ${BENCH_ALLOW_DEBUG:-0} == 1 ]] \
    || die "$SHIM is not a release build (set BENCH_ALLOW_DEBUG=1 to measure it anyway)"
for t in containerd ctr containerd-shim-runc-v2 runc python3; do command -v "$t" >/dev/null || die "$t is missing"; done
STOCKADE=$(cd "$(dirname "$STOCKADE")" && pwd)/$(basename "$STOCKADE")
SHIM=$(cd "$(dirname "$SHIM")" && pwd)/$(basename "$SHIM")

WORK=$(mktemp -d /tmp/stockade-shimbench.XXXXXX)
SOCK=$WORK/containerd.sock
NS=stockade-shim-bench
IMAGE=localhost/stockade/busybox:latest
CONTAINERD_PID=
cleanup() {
    local p m
    ctr --address "$SOCK" --namespace "$NS" task kill -s KILL b-idle >/dev/null 2>&1 || true
    sleep 0.5
    ctr --address "$SOCK" --namespace "$NS" task delete b-idle >/dev/null 2>&1 || true
    ctr --address "$SOCK" --namespace "$NS" container rm b-idle >/dev/null 2>&1 || true
    [ -n "$CONTAINERD_PID" ] && { kill "$CONTAINERD_PID" 2>/dev/null; wait "$CONTAINERD_PID" 2>/dev/null || true; }
    for p in /proc/[0-9]*; do
        { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -qF -- "$WORK" && kill -KILL "${p#/proc/}" 2>/dev/null
    done
    for m in $(findmnt -rn -o TARGET | grep -F -- "$WORK" | sort -r); do umount -l "$m" 2>/dev/null || true; done
    rm -rf "$WORK"
    # The namespace's parent cgroups (containerd's default cgroupsPath is /<namespace>/<id>),
    # in every hierarchy, once empty; rmdir leaves one still in use alone.
    for m in /sys/fs/cgroup/*/"$NS" /sys/fs/cgroup/"$NS"; do
        [ -d "$m" ] && rmdir "$m" 2>/dev/null || true
    done
}
trap cleanup EXIT

mkdir -p "$WORK/bin" "$WORK/shim-root"
ln -s "$SHIM" "$WORK/bin/containerd-shim-stockade-v1"
cat >"$WORK/config.toml" <<CONF
version = 2
root = "$WORK/root"
state = "$WORK/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[metrics]
  address = ""
CONF
PATH="$WORK/bin:$PATH" STOCKADE_SHIM_ROOT="$WORK/shim-root" containerd --config "$WORK/config.toml" >"$WORK/containerd.log" 2>&1 &
CONTAINERD_PID=$!
C() { timeout -k 5 60 ctr --address "$SOCK" --namespace "$NS" "$@"; }
for _ in $(seq 1 100); do C version >/dev/null 2>&1 && break; sleep 0.1; done
STOCKADE=$STOCKADE "$HERE/busybox-image.sh" "$WORK/busybox-oci.tar" "$IMAGE" >/dev/null
C image import "$WORK/busybox-oci.tar" >/dev/null

# one RUNTIME ID: seconds (float) for one ctr run --rm of /bin/true
one() {
    local t0 t1
    t0=$(date +%s.%N)
    C run --rm --runtime "$1" --fifo-dir "$WORK/fifo" "$IMAGE" "$2" /bin/true >/dev/null
    t1=$(date +%s.%N)
    echo "$t0 $t1" | awk '{ printf "%.6f\n", $2 - $1 }'
}
: >"$WORK/stockade.times"
: >"$WORK/runc.times"
# One warm-up each, not counted.
one io.containerd.stockade.v1 b-warm-s >/dev/null
one io.containerd.runc.v2 b-warm-r >/dev/null
for i in $(seq 1 "$N"); do
    one io.containerd.stockade.v1 "b-s-$i" >>"$WORK/stockade.times"
    one io.containerd.runc.v2 "b-r-$i" >>"$WORK/runc.times"
done
median() { sort -n "$1" | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
ms=$(median "$WORK/stockade.times")
mr=$(median "$WORK/runc.times")
printf 'shim measured: %s\n' "$SHIM"
printf 'ctr run --rm /bin/true, median of %d: stockade shim %.1f ms, runc v2 shim + runc %.1f ms, ratio %.2f (goal <= 0.70)\n' \
    "$N" "$(echo "$ms * 1000" | bc -l)" "$(echo "$mr * 1000" | bc -l)" "$(echo "$ms / $mr" | bc -l)"

C run -d --runtime io.containerd.stockade.v1 --fifo-dir "$WORK/fifo" "$IMAGE" b-idle sleep 1000 >/dev/null
sleep 1
spid=
for p in /proc/[0-9]*; do
    { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -qF -- "containerd-shim-stockade-v1 -namespace $NS -id b-idle -address $SOCK" \
        && spid=${p#/proc/}
done
[ -n "$spid" ] && printf 'stockade shim idle RSS: %s kB (goal <= 10240 kB)\n' "$(awk '/^VmRSS/ { print $2 }' "/proc/$spid/status")"
