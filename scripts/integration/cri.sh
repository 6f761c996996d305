#!/usr/bin/env bash
# Kubernetes CRI through stockade's shim: a private containerd (Debian's 1.6) with its CRI
# plugin configured for runtime_type io.containerd.stockade.v1, a CNI bridge network from
# Debian's containernetworking-plugins, and a pause image built here (pause.c). The checks
# are made by stockade-critest (critest/), a CRI v1 gRPC client on containerd's socket; this
# script sets up, runs it, and checks that nothing is left on the host afterwards.
#
#   STOCKADE=target/debug/stockade scripts/integration/cri.sh
#
# (the shim and stockade-critest are taken from beside $STOCKADE, or SHIM= and CRITEST=).
# Needs root, containerd, ctr, containernetworking-plugins, gcc, busybox-static, iproute2.
# Ends with "N passed, N failed"; exits non-zero if anything failed. containerd, the shims,
# every container, mount, network namespace, the bridge and the temporary files go away.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tap.sh
source "$HERE/tap.sh"
stockade_binary cri.sh
need_root cri.sh
need_tools cri.sh containerd ctr findmnt timeout sha256sum gcc ip
BIN_DIR=$(dirname "$STOCKADE")
SHIM=${SHIM:-$BIN_DIR/containerd-shim-stockade-v1}
CRITEST=${CRITEST:-$BIN_DIR/stockade-critest}
for b in "$SHIM" "$CRITEST"; do
    [ -x "$b" ] || { echo "cri.sh: no binary at $b (cargo build -p stockade-shim -p stockade-critest)" >&2; exit 2; }
done
SHIM=$(cd "$(dirname "$SHIM")" && pwd)/$(basename "$SHIM")
CNI_BIN=/usr/lib/cni
for p in bridge host-local loopback; do
    [ -x "$CNI_BIN/$p" ] || { echo "cri.sh: $CNI_BIN/$p is missing (containernetworking-plugins)" >&2; exit 2; }
done
START=$SECONDS

WORK=$(mktemp -d /tmp/stockade-cri.XXXXXX)
SOCK=$WORK/containerd.sock
NS=k8s.io # CRI's containerd namespace
SHIM_ROOT=$WORK/shim-root
IMAGE=localhost/stockade/busybox:latest
PAUSE=localhost/stockade/pause:latest
BRIDGE=stkcri0
SUBNET=10.231.77.0/24
IDS=() # CRI picks the ids; the shims' sockets are found by name below
names_in() { find "$1" -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort; }
NETNS_BEFORE=$(names_in /var/run/netns)
SOCKETS_BEFORE=$(names_in /run/containerd/s)
FORWARD_BEFORE=$(cat /proc/sys/net/ipv4/ip_forward)
# shellcheck source=ctrlib.sh
source "$HERE/ctrlib.sh"

cri_cleanup() {
    local n s
    ctr_cleanup "$SHIM_ROOT"
    # What the CNI plugins leave when a pod was not torn down: its netns, the bridge, the
    # host-local leases (under $WORK, gone with it) and libcni's result cache.
    for n in $(names_in /var/run/netns); do
        grep -qx -- "$n" <<<"$NETNS_BEFORE" || ip netns delete "$n" 2>/dev/null
    done
    ip link delete "$BRIDGE" 2>/dev/null
    rm -f /var/lib/cni/results/stockade-cri-* 2>/dev/null
    echo "$FORWARD_BEFORE" >/proc/sys/net/ipv4/ip_forward
    # Sockets of shims killed above (their names are hashes of the pod ids).
    for s in $(names_in /run/containerd/s); do
        grep -qx -- "$s" <<<"$SOCKETS_BEFORE" || rm -f "/run/containerd/s/$s"
    done
    [ -n "$HAD_RUN_CONTAINERD" ] || rmdir /run/containerd/s /run/containerd/fifo /run/containerd 2>/dev/null
}
trap cri_cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------
# CNI: one bridge network (host-local addresses, leases kept under $WORK); loopback is
# set up by containerd itself from the same plugin directory.
# ---------------------------------------------------------------------------------------
mkdir -p "$WORK/cni/net.d" "$WORK/bin" "$SHIM_ROOT" "$WORK/pods"
cat >"$WORK/cni/net.d/10-stockade-cri.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "stockade-cri",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "ipam": {
        "type": "host-local",
        "ranges": [[{ "subnet": "$SUBNET" }]],
        "routes": [{ "dst": "0.0.0.0/0" }],
        "dataDir": "$WORK/cni/ipam"
      }
    }
  ]
}
EOF

# ---------------------------------------------------------------------------------------
# containerd with CRI: the stockade shim is the default runtime; the pause image is ours.
# ---------------------------------------------------------------------------------------
ln -s "$SHIM" "$WORK/bin/containerd-shim-stockade-v1"
CTR_CRI_CONFIG=$(cat <<EOF

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE"
  disable_apparmor = true
  # The sandbox asks for oom_score_adj -998; lowering it needs CAP_SYS_RESOURCE, which root
  # lacks on this machine (and in many containers): CRI then keeps it at containerd's own.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "stockade"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.stockade]
      runtime_type = "io.containerd.stockade.v1"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN"
    conf_dir = "$WORK/cni/net.d"
    max_conf_num = 1
EOF
)
export CTR_CRI_CONFIG
start_containerd PATH="$WORK/bin:$PATH" STOCKADE_SHIM_ROOT="$SHIM_ROOT"

STOCKADE=$STOCKADE "$HERE/busybox-image.sh" "$WORK/busybox-oci.tar" "$IMAGE" \
    || { echo "cri.sh: building the busybox image failed" >&2; exit 2; }
STOCKADE=$STOCKADE "$HERE/pause-image.sh" "$WORK/pause-oci.tar" "$PAUSE" \
    || { echo "cri.sh: building the pause image failed" >&2; exit 2; }
for pair in "$IMAGE:$WORK/busybox-oci.tar" "$PAUSE:$WORK/pause-oci.tar"; do
    name=${pair%:/*} tar=/${pair#*:/}
    if out=$(C image import "$tar" 2>&1) && C image ls -q | grep -qx "$name"; then
        ok "ctr -n k8s.io image import $name"
    else
        not_ok "ctr -n k8s.io image import $name" "$out"
        echo "$PASSED passed, $FAILED failed"
        exit 1
    fi
done

# ---------------------------------------------------------------------------------------
# The CRI checks (TAP from stockade-critest; its tally is added to ours)
# ---------------------------------------------------------------------------------------
"$CRITEST" --socket "$SOCK" --image "$IMAGE" --log-dir "$WORK/pods" | tee "$WORK/critest.out"
rc=${PIPESTATUS[0]}
p=$(sed -nE 's/^([0-9]+) passed, ([0-9]+) failed$/\1/p' "$WORK/critest.out")
f=$(sed -nE 's/^([0-9]+) passed, ([0-9]+) failed$/\2/p' "$WORK/critest.out")
PASSED=$((PASSED + ${p:-0})) FAILED=$((FAILED + ${f:-0}))
if [ "$rc" -ne 0 ] && [ "${f:-0}" -eq 0 ]; then
    not_ok "stockade-critest ended with status $rc" "$(grep -iE 'shim|stockade|error' "$WORK/containerd.log" | tail -20)"
elif [ "${f:-0}" -ne 0 ]; then
    echo "# the shims' warnings and errors, then containerd's last lines about shims or errors:"
    grep -E 'containerd_shim_stockade_v1.*(WARN|ERROR)' "$WORK/containerd.log" | tail -20 | sed 's/^/#   /'
    grep -iE 'shim|stockade|level=error' "$WORK/containerd.log" | tail -20 | sed 's/^/#   /'
    [ -n "${CRI_KEEP_LOG:-}" ] && cp "$WORK/containerd.log" "$CRI_KEEP_LOG"
fi

# ---------------------------------------------------------------------------------------
# Nothing left: stockade state, network namespaces, the CNI lease, mounts
# ---------------------------------------------------------------------------------------
left=$("$STOCKADE" --root "$SHIM_ROOT/$NS" list -q 2>/dev/null)
check "no container left in the shim's stockade state" test -z "$left"
netns_now=$(names_in /var/run/netns)
check "no network namespace left" test "$netns_now" = "$NETNS_BEFORE"
leases=$(find "$WORK/cni/ipam/stockade-cri" -name '[0-9]*.*' 2>/dev/null)
check "the pod's address is released (host-local leases)" test -z "$leases"
mounts=$(findmnt -rn -o TARGET | grep -F -- "$WORK/state" || true)
check "no container mount left under containerd's state" test -z "$mounts"

echo "# cri.sh took $((SECONDS - START)) s"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
