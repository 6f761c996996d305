#!/usr/bin/env bash
# The OCI runtime-tools validation suite, run against runc and against stockade side by
# side. Each validation program (validation/<name>/ of opencontainers/runtime-tools) is a
# TAP-producing binary that drives the runtime named by $RUNTIME through create, start,
# state, kill and delete, often with `runtimetest` (cmd/runtimetest) checking the
# container from inside. A test passes when its program exits 0 and prints no `not ok`.
#
#   STOCKADE=target/debug/stockade RUNTIME_TOOLS_SRC=/path/to/runtime-tools \
#       scripts/integration/runtime-tools.sh [FILTER]
#
# Prints a table (test, runc, stockade) and fails if a test that runc passes fails with
# stockade; tests that runc fails too are shown and not counted. FILTER (a substring)
# limits the run to matching test names. Ends with "N passed, N failed", one result per
# test runc passes (or per test that failed to build). Exits 2 when something it needs is
# missing, and 0 with a SKIPPED line when no validation sources are there (see below).
#
# Where the suite comes from. Debian 12's golang-github-opencontainers-runtime-tools-dev
# (installed by scripts/setup.sh) ships the libraries (generate, specerror, cgroups,
# validate) but not validation/ nor cmd/runtimetest, and Debian has no package of
# github.com/mndrix/tap-go, which they import. So the validation sources are taken from
# $RUNTIME_TOOLS_SRC (a checkout of opencontainers/runtime-tools: validation/,
# cmd/runtimetest/, and, if it has one, its vendor/ and rootfs-amd64.tar.gz), else from
# Debian's tree should a later package carry validation/. The programs are built offline in
# GOPATH mode against /usr/share/gocode; tap-go comes from runtime-tools/tap/ beside this
# script (an API-compatible TAP writer written for stockade) unless the checkout vendors
# it. Programs that do not compile against Debian's libraries are listed as such (a
# failure: the run is incomplete). Without a rootfs-amd64.tar.gz in the checkout, a busybox
# root filesystem (busybox-static) takes its place.
#
# Needs root, go (golang-go), busybox-static, runc, timeout. Every container, bundle and
# state directory goes away on exit.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tap.sh
source "$HERE/tap.sh"
stockade_binary runtime-tools.sh
need_root runtime-tools.sh

FILTER=${1:-}
# Each validation program gets this long; a runtime that hangs fails its test, not the run.
TEST_TIMEOUT=${RUNTIME_TOOLS_TIMEOUT:-60}
DEBIAN_SRC=/usr/share/gocode/src/github.com/opencontainers/runtime-tools
SRC=${RUNTIME_TOOLS_SRC:-}
if [ -z "$SRC" ] && [ -d "$DEBIAN_SRC/validation" ]; then SRC=$DEBIAN_SRC; fi
if [ -z "$SRC" ] || [ ! -d "$SRC/validation" ] || [ ! -d "$SRC/cmd/runtimetest" ]; then
    echo "runtime-tools.sh: SKIPPED: no runtime-tools validation sources."
    echo "# Debian's golang-github-opencontainers-runtime-tools-dev ships no validation/ or"
    echo "# cmd/runtimetest; set RUNTIME_TOOLS_SRC to a runtime-tools checkout that has both."
    echo "0 passed, 0 failed"
    exit 0
fi
need_tools runtime-tools.sh go runc timeout tar
[ -d /usr/share/gocode/src ] || { echo "runtime-tools.sh: /usr/share/gocode is missing (run scripts/setup.sh)" >&2; exit 2; }

WORK=$(mktemp -d /tmp/stockade-runtime-tools.XXXXXX)
chmod 755 "$WORK"
# The cgroups tests use cgroupsPath "testdir/cgrouptest/container" (relative); the runtimes
# remove the container's cgroup on delete but not the parents they made for it.
HAD_TESTDIR=$(ls -d /sys/fs/cgroup/testdir /sys/fs/cgroup/*/testdir 2>/dev/null)
cleanup() {
    local root id rt
    for root in "$WORK/runc-root" "$WORK/stockade-root"; do
        [ -d "$root" ] || continue
        case $root in *runc-root) rt=(runc --root "$root") ;; *) rt=("$STOCKADE" --root "$root") ;; esac
        for id in $(ls "$root" 2>/dev/null); do
            "${rt[@]}" delete --force "$id" >/dev/null 2>&1
        done
    done
    rm -rf "$WORK"
    if [ -z "$HAD_TESTDIR" ]; then
        for root in /sys/fs/cgroup /sys/fs/cgroup/*; do
            [ -d "$root/testdir" ] || continue
            rmdir "$root/testdir/cgrouptest" "$root/testdir" 2>/dev/null
        done
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------
# Build: a GOPATH of Debian's Go sources, the runtime-tools checkout, and the TAP writer
# ---------------------------------------------------------------------------------------
GP=$WORK/gopath
mkdir -p "$GP/src/github.com/opencontainers" "$GP/src/github.com/mndrix"
for d in /usr/share/gocode/src/*; do
    [ "$(basename "$d")" = github.com ] || ln -s "$d" "$GP/src/"
done
for d in /usr/share/gocode/src/github.com/*; do
    case $(basename "$d") in opencontainers | mndrix) ;; *) ln -s "$d" "$GP/src/github.com/" ;; esac
done
for d in /usr/share/gocode/src/github.com/opencontainers/*; do
    [ "$(basename "$d")" = runtime-tools ] || ln -s "$d" "$GP/src/github.com/opencontainers/"
done
RT=$GP/src/github.com/opencontainers/runtime-tools
cp -r "$SRC" "$RT"
# GOPATH mode: a go.mod would switch the build to modules (and to the network).
rm -f "$RT/go.mod" "$RT/go.sum"
if [ ! -d "$RT/vendor/github.com/mndrix/tap-go" ] && [ ! -d /usr/share/gocode/src/github.com/mndrix/tap-go ]; then
    mkdir -p "$GP/src/github.com/mndrix/tap-go"
    cp "$HERE/runtime-tools/tap/tap.go" "$GP/src/github.com/mndrix/tap-go/"
fi
export GOPATH=$GP GO111MODULE=off GOFLAGS= CGO_ENABLED=0 GOPROXY=off

BIN=$WORK/bin
mkdir -p "$BIN"
build_log=$WORK/build.log
if ! (cd "$RT" && go build -o "$BIN/runtimetest" ./cmd/runtimetest) >"$build_log" 2>&1; then
    not_ok "build cmd/runtimetest" "$(cat "$build_log")"
    echo "$PASSED passed, $FAILED failed"
    exit 1
fi
# The programs: every validation/<name>/ whose package is main (newer layout), and every
# validation/<name>.go main (the older one-file layout).
TESTS=()
BROKEN=()
MAINS=()
for d in "$RT"/validation/*/; do
    name=$(basename "$d")
    [[ -z $FILTER || $name == *"$FILTER"* ]] || continue
    grep -qs '^package main' "$d"*.go && MAINS+=("./validation/$name")
done
# One go build for all of them is much faster than one each; if any fails to compile, each
# is built alone so that the others still run.
((${#MAINS[@]})) && (cd "$RT" && go build -o "$BIN/" "${MAINS[@]}") >"$build_log" 2>&1
for m in "${MAINS[@]}"; do
    name=$(basename "$m")
    if [ -x "$BIN/$name" ]; then
        TESTS+=("$name")
    elif (cd "$RT" && go build -o "$BIN/$name" "$m") >"$build_log" 2>&1; then
        TESTS+=("$name")
    else
        BROKEN+=("$name")
        not_ok "build validation/$name" "$(cat "$build_log")"
    fi
done
for f in "$RT"/validation/*.go; do
    [ -e "$f" ] || continue
    name=$(basename "$f" .go)
    [[ $name == *_test ]] && continue
    [[ -z $FILTER || $name == *"$FILTER"* ]] || continue
    [ -e "$BIN/$name" ] && continue
    grep -qs '^package main' "$f" || continue
    if (cd "$RT" && go build -o "$BIN/$name" "$f") >"$build_log" 2>&1; then
        TESTS+=("$name")
    else
        BROKEN+=("$name")
        not_ok "build validation/$name.go" "$(cat "$build_log")"
    fi
done

# ---------------------------------------------------------------------------------------
# The run directory: runtimetest and the root filesystem tarball the programs expect in
# their working directory, and one wrapper per runtime with a private --root.
# ---------------------------------------------------------------------------------------
RUN=$WORK/run
mkdir -p "$RUN" "$WORK/runc-root" "$WORK/stockade-root"
cp "$BIN/runtimetest" "$RUN/runtimetest"
if [ -f "$SRC/rootfs-amd64.tar.gz" ]; then
    cp "$SRC/rootfs-amd64.tar.gz" "$RUN/"
else
    [ -x /bin/busybox ] || { echo "runtime-tools.sh: /bin/busybox is missing (busybox-static)" >&2; exit 2; }
    R=$WORK/rootfs
    mkdir -p "$R/bin" "$R/sbin" "$R/etc" "$R/tmp" "$R/proc" "$R/sys" "$R/dev" "$R/root"
    chmod 1777 "$R/tmp"
    cp /bin/busybox "$R/bin/busybox"
    for applet in $(/bin/busybox --list); do
        [ "$applet" = busybox ] || ln -s busybox "$R/bin/$applet"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\n' >"$R/etc/passwd"
    printf 'root:x:0:\n' >"$R/etc/group"
    tar --numeric-owner --owner=0 --group=0 -C "$R" -czf "$RUN/rootfs-amd64.tar.gz" .
fi
printf '#!/bin/sh\nexec runc --root %s "$@"\n' "$WORK/runc-root" >"$WORK/runc"
printf '#!/bin/sh\nexec %s --root %s "$@"\n' "$STOCKADE" "$WORK/stockade-root" >"$WORK/stockade"
chmod +x "$WORK/runc" "$WORK/stockade"

# known_difference NAME: the reason, from runtime-tools/known-differences.txt, why NAME
# fails with stockade where it passes with runc (a documented design difference, not a
# bug); fails when NAME has none.
known_difference() {
    awk -F'\t' -v n="$1" '$1 == n { print $2; found = 1 } END { exit !found }' \
        "$HERE/runtime-tools/known-differences.txt"
}

# run_one RUNTIME NAME: pass when the program exits 0 and reports no failure.
run_one() {
    local out=$WORK/out/$2.$(basename "$1") status
    # TMPDIR: the programs make their bundles with ioutil.TempDir("", …); keep them here.
    (cd "$RUN" && TMPDIR=$WORK/tmp RUNTIME=$1 timeout -k 5 "$TEST_TIMEOUT" "$BIN/$2") >"$out" 2>&1
    status=$?
    ((status == 0)) && ! grep -v '# TODO' "$out" | grep -q '^not ok' && return 0
    ((status == 124)) && echo "# timed out after ${TEST_TIMEOUT}s" >>"$out"
    return 1
}

mkdir -p "$WORK/out" "$WORK/tmp"
start=$SECONDS
rows=()
for name in "${TESTS[@]}"; do
    r=FAIL s=FAIL
    run_one "$WORK/runc" "$name" && r=pass
    run_one "$WORK/stockade" "$name" && s=pass
    if [ "$r" = pass ]; then
        if [ "$s" = pass ]; then
            ok "$name"
        elif reason=$(known_difference "$name"); then
            s="known"
            echo "# $name: runc passes, stockade fails: known difference: $reason"
        else
            not_ok "$name (runc passes, stockade fails)" "$(grep -v '^ok' "$WORK/out/$name.stockade" | head -40)"
        fi
    fi
    rows+=("$(printf '%-44s %-6s %-6s' "$name" "$r" "$s")")
done

echo
printf '%-44s %-6s %-6s\n' test runc stockade
printf '%s\n' "${rows[@]}"
for name in "${BROKEN[@]}"; do printf '%-44s %-6s %-6s\n' "$name" build build; done
echo "# ${#TESTS[@]} programs in $((SECONDS - start))s; tests runc fails too are not counted"
echo "$PASSED passed, $FAILED failed"
((FAILED == 0))
