#!/bin/sh
# Runs stockade's checks on a FreeBSD 14 host, as root, in one command:
#   scripts/freebsd/check.sh
# 1. installs what is needed with pkg (rust, unless cargo is on PATH), 2. builds, 3. runs the unit tests
# (including the executor against the model kernel), 4. runs the spec-tests FreeBSD
# profile (--group freebsd: bundles from `stockade spec` with the host's /rescue as the
# container's tools) against real jails, 5. a Podman smoke test when podman is installed.
# Ends with one plain "N passed, N failed" line. It has not been run on FreeBSD yet: the
# development machines have none (see README.md).
set -eu

cd "$(dirname "$0")/../.."

if [ "$(uname -s)" != FreeBSD ]; then
    echo "check.sh: this is for a FreeBSD host (uname says $(uname -s))" >&2
    exit 2
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "check.sh: run as root (jails, nmount and rctl need it)" >&2
    exit 2
fi

export ASSUME_ALWAYS_YES=yes
export CARGO_TERM_COLOR=never
# A cargo already on PATH (rustup) is used as it is; otherwise pkg's rust, which must be
# at least the workspace's rust-version.
command -v cargo >/dev/null 2>&1 || pkg install -y rust

# Kernel modules the containers use; a missing one is reported, not fatal.
for m in nullfs tmpfs fdescfs; do
    kldstat -q -m "$m" || kldload "$m" || echo "check.sh: could not load $m" >&2
done
if [ "$(sysctl -n kern.racct.enable 2>/dev/null || echo 0)" != 1 ]; then
    echo "check.sh: kern.racct.enable is 0: the rctl checks are skipped" \
         "(set kern.racct.enable=1 in /boot/loader.conf and reboot to run them)" >&2
fi

passed=0
failed=0
failures=""
log=$(mktemp /tmp/stockade-check.XXXXXX)
trap 'rm -f "$log"' EXIT

# count LOG: adds cargo's "test result:" and the spec-tests' "N passed, N failed" lines.
count() {
    eval "$(sed -nE \
        -e 's/^test result: [a-zA-Z]+\. ([0-9]+) passed; ([0-9]+) failed.*/passed=$((passed + \1)); failed=$((failed + \2));/p' \
        -e 's/^([0-9]+) passed, ([0-9]+) failed.*/passed=$((passed + \1)); failed=$((failed + \2));/p' \
        "$1")"
}

step() {
    name=$1
    shift
    printf '\n==> %s\n' "$name"
    if "$@" >"$log" 2>&1; then
        cat "$log"
        printf '<== %s: ok\n' "$name"
    else
        cat "$log"
        printf '<== %s: FAILED\n' "$name"
        failures="$failures $name"
    fi
    count "$log"
}

step build cargo build --workspace
step unit-tests cargo test --workspace
target=${CARGO_TARGET_DIR:-$PWD/target}
step spec-tests-freebsd "$target/debug/stockade-spec-tests" \
    --stockade "$target/debug/stockade" --group freebsd

podman_smoke() {
    # Podman with stockade as its OCI runtime runs one container and removes it; the
    # result is printed as a count line for `count`.
    if podman --runtime "$target/debug/stockade" run --rm \
        "${STOCKADE_PODMAN_IMAGE:-docker.io/freebsd/freebsd-runtime:14.3}" \
        /bin/echo stockade-ok | grep -qx stockade-ok; then
        echo "1 passed, 0 failed"
    else
        echo "0 passed, 1 failed"
        return 1
    fi
}
if command -v podman >/dev/null 2>&1; then
    step podman-smoke podman_smoke
else
    echo "check.sh: podman is not installed: the Podman smoke test is skipped"
fi

echo
if [ -n "$failures" ]; then
    echo "failed steps:$failures"
fi
echo "$passed passed, $failed failed"
[ -z "$failures" ] && [ "$failed" -eq 0 ]
