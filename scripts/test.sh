#!/usr/bin/env bash
# The whole test suite: formatting, clippy on Linux and FreeBSD, a linked FreeBSD release
# binary, unit tests, the black-box spec-tests, and the real-client integration scripts.
# Ends with one plain "N passed, N failed" line summing every test that ran.
set -uo pipefail

# shellcheck source=lib/cargo-path.sh
source "$(dirname "$0")/lib/cargo-path.sh"
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
export CARGO_TARGET_DIR="$TARGET_DIR"
LOG_DIR="$(mktemp -d /tmp/stockade-test.XXXXXX)"
trap 'rm -rf "$LOG_DIR"' EXIT

passed=0 failed=0 step_failures=()

# Runs one step, streaming its output; on failure records the step's name.
step() {
    local name="$1"; shift
    printf '\n==> %s\n' "$name"
    local start=$SECONDS
    if "$@" 2>&1 | tee "$LOG_DIR/step.log"; then
        printf '<== %s: ok (%ss)\n' "$name" $((SECONDS - start))
    else
        printf '<== %s: FAILED (%ss)\n' "$name" $((SECONDS - start))
        step_failures+=("$name")
    fi
    count "$LOG_DIR/step.log"
}

# Adds the test counts a step printed: cargo's "test result:" lines and the plain
# "N passed, N failed" lines of our own suites.
count() {
    local p f
    while read -r p f; do
        passed=$((passed + p)); failed=$((failed + f))
    done < <(sed -nE 's/^test result: [a-zA-Z]+\. ([0-9]+) passed; ([0-9]+) failed.*/\1 \2/p; s/^([0-9]+) passed, ([0-9]+) failed.*/\1 \2/p' "$1")
}

step "cargo fmt --check" cargo fmt --all --check
step "clippy (linux)" cargo clippy --workspace --all-targets -- -D warnings
step "clippy (freebsd)" cargo clippy --workspace --target x86_64-unknown-freebsd -- -D warnings
step "no import circles between modules" bash -c 'python3 scripts/lib/modcycles_test.py && python3 scripts/lib/modcycles.py'
step "freebsd release binary (zigbuild)" bash -c '
    cargo zigbuild --release --target x86_64-unknown-freebsd -p stockade -p stockade-shim &&
    file "$CARGO_TARGET_DIR/x86_64-unknown-freebsd/release/stockade" | tee /dev/stderr | grep -q "FreeBSD" &&
    file "$CARGO_TARGET_DIR/x86_64-unknown-freebsd/release/containerd-shim-stockade-v1" | tee /dev/stderr | grep -q "FreeBSD"'
step "unit tests" cargo test --workspace
step "build binaries" cargo build -p stockade -p stockade-spec-tests -p stockade-shim -p stockade-critest
export STOCKADE="$TARGET_DIR/debug/stockade"
step "spec-tests" "$TARGET_DIR/debug/stockade-spec-tests" --stockade "$STOCKADE"
step "packaging: rc.d script (stub rc.subr)" sh packaging/freebsd/test-rc.sh
step "packaging: port crate list matches Cargo.lock" packaging/freebsd/gen-crates.sh --check
# The real-client and real-service suites (each ends with its own "N passed, N failed").
for suite in registry push mirrors containerd shim cri podman unpack crash-image crash-pull runtime-tools network service; do
    script="scripts/integration/$suite.sh"
    [ -e "$script" ] || continue
    step "integration: $suite" bash "$script"
done

echo
if ((${#step_failures[@]})); then
    printf 'failed steps: %s\n' "${step_failures[*]}"
    # A step that failed without reporting a test failure (fmt, clippy, a build) still
    # counts as one failure, so the closing line never reads as a clean run.
    ((failed == 0)) && failed=${#step_failures[@]}
fi
echo "$passed passed, $failed failed"
((${#step_failures[@]} == 0))
