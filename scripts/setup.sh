#!/usr/bin/env bash
# Installs everything stockade's build, tests and demo need on a fresh Debian 12 machine.
# Idempotent: every step checks before it acts, so a second run costs seconds.
set -euo pipefail

# shellcheck source=lib/cargo-path.sh
source "$(dirname "$0")/lib/cargo-path.sh"

log() { printf 'setup: %s\n' "$*" >&2; }

# Debian packages. busybox-static gives the test and demo root filesystems; runc and crun
# are the peers the lifecycle benchmark compares against; libseccomp-dev and pkg-config link the
# seccomp filter compiler; uidmap (newuidmap/newgidmap) maps rootless user namespaces; jq and
# iproute2 are used by scripts. golang-go and Debian's runtime-tools libraries build the OCI
# runtime-tools validation programs (scripts/integration/runtime-tools.sh). man-db and groff
# render the generated man pages, zsh and fish check the completion scripts (spec-tests group
# packaging). The CNI plugins (containernetworking-plugins) give `run --image` its networks;
# their bridge, portmap and firewall plugins call iptables. protobuf-compiler (protoc) builds the
# CRI test client's generated API (k8s-cri); gcc and libc6-dev build cri.sh's static pause binary.
DEBS=(man-db groff zsh fish busybox-static runc crun uidmap libseccomp-dev pkg-config jq iproute2 python3-pip ca-certificates procps util-linux file time docker-registry skopeo umoci apache2-utils curl zstd xz-utils containerd podman conmon containernetworking-plugins iptables zfs-fuse golang-go golang-github-opencontainers-runtime-tools-dev protobuf-compiler gcc libc6-dev)
missing=()
for p in "${DEBS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
    log "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v rustup >/dev/null 2>&1 || ! command -v cargo >/dev/null 2>&1; then
    log "error: rustup and cargo are needed (Rust 1.87 or newer); install them from https://rustup.rs and run again"
    exit 1
fi
# Rust: the toolchain comes with the machine; the FreeBSD target's standard library does not.
if ! rustup target list --installed | grep -qx x86_64-unknown-freebsd; then
    log "adding the x86_64-unknown-freebsd Rust target"
    rustup target add x86_64-unknown-freebsd
fi
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt

# The FreeBSD linker: zig (from PyPI) driven by cargo-zigbuild.
if ! command -v cargo-zigbuild >/dev/null 2>&1 || ! python3 -c 'import ziglang' 2>/dev/null; then
    log "installing ziglang and cargo-zigbuild from PyPI"
    # Debian 12's own Python refuses system-wide installs (PEP 668) unless told otherwise;
    # these two packages only add the zig toolchain and a cargo subcommand.
    python3 -m pip install --quiet --disable-pip-version-check --break-system-packages ziglang cargo-zigbuild 2>/dev/null ||
        python3 -m pip install --quiet --disable-pip-version-check ziglang cargo-zigbuild
fi

log "done"
