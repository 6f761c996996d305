#!/usr/bin/env bash
# Root filesystems from images, end to end (issue 7), as root on Linux:
#   1. the dir driver's result compared file by file (type, mode, owner, content, link
#      target, hard-link groups) with `umoci unpack` of the same multi-layer image with
#      whiteouts, an opaque directory, hard links within and across layers;
#   2. a hostile layer refused, with nothing outside the storage touched;
#   3. the zfs driver on a real pool: zfs-fuse on a file-backed vdev that this script
#      creates and destroys (skipped, with the reason, when zfs-fuse cannot run);
#   4. `stockade run --image` on a busybox image imported from a rootfs tarball.
#
#   STOCKADE=target/debug/stockade scripts/integration/unpack.sh
#
# Ends with "N passed, N failed"; exits non-zero when anything failed.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tap.sh
source "$(dirname "${BASH_SOURCE[0]}")/tap.sh"
stockade_binary unpack.sh
need_root unpack.sh

TMP=$(mktemp -d /tmp/stockade-unpack.XXXXXX)
POOL=stkunpack$$
ZFS_PID=
POOL_MADE=
cleanup() {
    if [ -n "$POOL_MADE" ]; then
        for _ in 1 2 3 4 5; do zpool destroy -f "$POOL" >/dev/null 2>&1 && break; sleep 0.5; done
    fi
    if [ -n "$ZFS_PID" ]; then
        kill "$ZFS_PID" 2>/dev/null
        wait "$ZFS_PID" 2>/dev/null
    fi
    # Overlay root filesystems a failed check left mounted.
    awk -v d="$TMP/" '$3 == "overlay" && index($2, d) == 1 {print $2}' /proc/mounts | sort -r |
        while read -r m; do umount -l "$m"; done
    rm -rf "$TMP"
}
trap cleanup EXIT


STORE=$TMP/store
ST=$TMP/storage
IMG=localhost/unpack/test:1
S() { "$STOCKADE" --root "$TMP/run" "$@"; }

# --- 1. dir driver vs umoci -----------------------------------------------------------
python3 "$HERE/mkimage.py" "$TMP/layout" test >/dev/null
check "image import of the multi-layer test image" S image --image-root "$STORE" import --format oci-dir --tag "$IMG" "$TMP/layout"
check "umoci unpack of the same image" umoci unpack --image "$TMP/layout:test" "$TMP/umoci"
check "bundle create with the dir driver" S bundle --image-root "$STORE" --storage-root "$ST" --storage-driver dir create --image "$IMG" --name cmp "$TMP/bundle"
check "dir driver rootfs equals umoci's (type, mode, owner, content, link target, hard links)" \
    python3 "$HERE/treecmp.py" "$TMP/umoci/rootfs" "$ST/containers/cmp"
check "the stored chain equals umoci's too" python3 "$HERE/treecmp.py" "$TMP/umoci/rootfs" "$(ls -d "$ST"/chains/[0-9a-f]*)"
check "config.json names the rootfs and the image's command" \
    python3 -c "import json,sys; c=json.load(open('$TMP/bundle/config.json')); assert c['root']['path']=='$ST/containers/cmp', c['root']; assert c['process']['args']==['/bin/sh'], c['process']; assert any(m['type']=='linprocfs' for m in c['mounts'])"
echo changed >"$ST/containers/cmp/etc/passwd"
check "a container's rootfs does not share files with the chain" \
    bash -c "! grep -q changed $ST/chains/*/etc/passwd"
check "a second rootfs from the same chain" S bundle --image-root "$STORE" --storage-root "$ST" --storage-driver dir create --image "$IMG" --name cmp2 "$TMP/bundle2"
check "bundle rm removes a rootfs" bash -c "'$STOCKADE' bundle --image-root '$STORE' --storage-root '$ST' --storage-driver dir rm cmp2 && [ ! -e '$ST/containers/cmp2' ]"
check "bundle create with the overlay driver" S bundle --image-root "$STORE" --storage-root "$TMP/ost" --storage-driver overlay create --image "$IMG" --name ocmp "$TMP/obundle"
check "overlay rootfs equals umoci's (whiteouts, opaque directories, links to lower layers)" \
    python3 "$HERE/treecmp.py" "$TMP/umoci/rootfs" "$TMP/ost/overlay/containers/ocmp/merged"
check "bundle rm unmounts and removes an overlay rootfs" bash -c "'$STOCKADE' bundle --image-root '$STORE' --storage-root '$TMP/ost' --storage-driver overlay rm ocmp && [ ! -e '$TMP/ost/overlay/containers/ocmp' ] && ! grep -q ' $TMP/ost/' /proc/mounts"

# --- 2. a hostile layer ---------------------------------------------------------------
python3 - "$TMP/evil" <<'PY'
import gzip, hashlib, io, json, os, sys, tarfile
out = sys.argv[1]; blobs = os.path.join(out, "blobs", "sha256"); os.makedirs(blobs)
def put(b):
    d = hashlib.sha256(b).hexdigest(); open(os.path.join(blobs, d), "wb").write(b); return d
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w") as t:
    s = tarfile.TarInfo("escape"); s.type = tarfile.SYMTYPE; s.linkname = "../../../../../../../tmp"; t.addfile(s)
    f = tarfile.TarInfo("escape/stockade-unpack-pwned"); f.size = 5; t.addfile(f, io.BytesIO(b"pwned"))
raw = buf.getvalue(); gz = gzip.compress(raw)
cfg = json.dumps({"os": "linux", "architecture": "amd64", "config": {"Cmd": ["/x"]},
                  "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw).hexdigest()]}}).encode()
m = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + put(cfg), "size": len(cfg)},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "sha256:" + put(gz), "size": len(gz)}]}).encode()
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
    "digest": "sha256:" + put(m), "size": len(m), "annotations": {"org.opencontainers.image.ref.name": "evil"}}]},
    open(os.path.join(out, "index.json"), "w"))
json.dump({"imageLayoutVersion": "1.0.0"}, open(os.path.join(out, "oci-layout"), "w"))
PY
S image --image-root "$STORE" import --format oci-dir --tag localhost/unpack/evil:1 "$TMP/evil" >/dev/null
out=$(S bundle --image-root "$STORE" --storage-root "$ST" create --image localhost/unpack/evil:1 --name evil "$TMP/bundle-evil" 2>&1)
if [ $? -ne 0 ] && grep -q 'escape/stockade-unpack-pwned' <<<"$out" && grep -q symlink <<<"$out"; then
    ok "a write through a planted symlink is refused, naming the entry"
else
    not_ok "a write through a planted symlink is refused, naming the entry" "$out"
fi
check "nothing was written outside the storage" test ! -e /tmp/stockade-unpack-pwned
check "no half-unpacked chain is left behind" bash -c "[ -z \"\$(ls -A '$ST/chains' | grep -v '^[0-9a-f]\{64\}$')\" ] && [ ! -e '$ST/containers/evil' ]"

# --- 3. zfs driver on a real pool -----------------------------------------------------
zfs_skip=
if ! command -v zfs-fuse >/dev/null || ! command -v zpool >/dev/null; then
    zfs_skip="zfs-fuse is not installed (Debian package zfs-fuse; scripts/setup.sh installs it)"
elif [ ! -c /dev/fuse ]; then
    zfs_skip="/dev/fuse is missing, so zfs-fuse cannot run here"
else
    if ! pgrep -x zfs-fuse >/dev/null; then
        zfs-fuse --no-daemon -p "$TMP/zfs-fuse.pid" >"$TMP/zfs-fuse.log" 2>&1 &
        ZFS_PID=$!
        for _ in $(seq 50); do zpool list >/dev/null 2>&1 && break; sleep 0.1; done
    fi
    truncate -s 1G "$TMP/vdev"
    if err=$(zpool create -m "$TMP/pool" "$POOL" "$TMP/vdev" 2>&1); then
        POOL_MADE=1
    else
        zfs_skip="zpool create on a file vdev failed: $err $(cat "$TMP/zfs-fuse.log" 2>/dev/null)"
    fi
fi
if [ -n "$zfs_skip" ]; then
    echo "# SKIP zfs driver: $zfs_skip"
else
    ZA=(--image-root "$STORE" --storage-root "$ST" --zfs-dataset "$POOL/stockade")
    check "bundle create with the zfs driver" S bundle "${ZA[@]}" create --image "$IMG" --name z1 "$TMP/zb1"
    check "one dataset per chainID, each a clone of its parent's snapshot" bash -c "
        [ \$(zfs list -H -r -t filesystem -o name $POOL/stockade/layers | wc -l) = 4 ] &&
        [ \$(zfs list -H -r -t filesystem -o origin $POOL/stockade/layers | grep -c @stockade) = 2 ] &&
        [ \$(zfs list -H -r -t snapshot -o name $POOL/stockade/layers | wc -l) = 3 ]"
    check "the container rootfs is a clone of the top snapshot" bash -c "zfs get -H -o value origin $POOL/stockade/containers/z1 | grep -q @stockade"
    check "zfs driver rootfs equals umoci's" python3 "$HERE/treecmp.py" "$TMP/umoci/rootfs" "$ST/zfs/z1"
    check "a second container is another clone" S bundle "${ZA[@]}" create --image "$IMG" --name z2 "$TMP/zb2"
    check "bundle rm destroys the clone" bash -c "'$STOCKADE' bundle ${ZA[*]} rm z2 && ! zfs list $POOL/stockade/containers/z2 2>/dev/null"
    check "prune keeps layers an image or container uses" bash -c "'$STOCKADE' bundle ${ZA[*]} prune >/dev/null && [ \$(zfs list -H -r -t filesystem -o name $POOL/stockade/layers | wc -l) = 4 ]"
    "$STOCKADE" bundle "${ZA[@]}" rm z1 >/dev/null
    "$STOCKADE" image --image-root "$STORE" rm "$IMG" >/dev/null
    check "prune destroys layer datasets no image uses" bash -c "'$STOCKADE' bundle ${ZA[*]} prune >/dev/null && [ \$(zfs list -H -r -t filesystem -o name $POOL/stockade/layers | wc -l) = 1 ]"
    S image --image-root "$STORE" import --format oci-dir --tag "$IMG" "$TMP/layout" >/dev/null
fi

# --- 4. run --image on busybox --------------------------------------------------------
if [ -x /bin/busybox ]; then
    R=$TMP/bbroot
    mkdir -p "$R/bin" "$R/etc" "$R/tmp" "$R/proc" "$R/sys" "$R/dev" "$R/home/nobody"
    cp /bin/busybox "$R/bin/busybox"
    for applet in sh echo id cat ls pwd sleep; do ln -s busybox "$R/bin/$applet"; done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home/nobody:/bin/false\n' >"$R/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$R/etc/group"
    tar --numeric-owner --owner=0 --group=0 -C "$R" -czf "$TMP/bb.tar.gz" .
    S image --image-root "$STORE" import --format rootfs --os linux --arch amd64 --tag localhost/unpack/busybox:1 \
        --env PATH=/bin --cmd '["sh","-c","echo image default command"]' "$TMP/bb.tar.gz" >/dev/null
    RA=(--image-root "$STORE" --storage-root "$ST" --storage-driver dir)
    out=$(S run --image localhost/unpack/busybox:1 "${RA[@]}" --rm 2>&1)
    if [ "$out" = "image default command" ]; then ok "run --image runs the image's Cmd"; else not_ok "run --image runs the image's Cmd" "$out"; fi
    out=$(S run --image localhost/unpack/busybox:1 "${RA[@]}" --rm --name e2e -- sh -c 'echo "$(id -u) $(pwd)"; exit 7' 2>&1); rc=$?
    if [ "$out" = "0 /" ] && [ $rc = 7 ]; then ok "run --image -- CMD runs CMD and exits with its status"; else not_ok "run --image -- CMD runs CMD and exits with its status" "rc=$rc out=$out"; fi
    check "--rm removed the rootfs and the bundle" bash -c "[ ! -e '$ST/containers/e2e' ] && [ ! -e '$ST/bundles/e2e' ]"
    out=$(S run --image localhost/unpack/busybox:1 "${RA[@]}" --rm --name lim --pids-limit 8 -- \
        sh -c 'for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 30 & done; echo started' 2>&1)
    if grep -qi fork <<<"$out"; then ok "run --image --pids-limit 8: forks beyond the limit fail"; else not_ok "run --image --pids-limit 8" "$out"; fi
    out=$("$STOCKADE" bundle "${RA[@]}" create --image localhost/unpack/busybox:1 --name limb --memory 64m --cpus 0.5 "$TMP/limb" 2>&1)
    res=$(jq -c -S '.linux.resources' "$TMP/limb/config.json" 2>&1)
    if [ "$res" = '{"cpu":{"period":100000,"quota":50000},"memory":{"limit":67108864}}' ]; then
        ok "bundle create --memory --cpus: the limits are the bundle's linux.resources"
    else
        not_ok "bundle create --memory --cpus" "$out $res"
    fi
    "$STOCKADE" bundle "${RA[@]}" rm limb >/dev/null 2>&1
    # The default network where there is one (root on Linux with the CNI plugins): bundle rm
    # of a run --image container takes its network too.
    NETA=(--network host)
    [ -x /usr/lib/cni/bridge ] && NETA=()
    KEPT=kept$$
    out=$(S run --image localhost/unpack/busybox:1 "${RA[@]}" --name "$KEPT" "${NETA[@]}" -- echo kept 2>&1); rc=$?
    check "without --rm the rootfs and bundle stay" bash -c "[ $rc = 0 ] && [ -d '$ST/containers/$KEPT/bin' ] && [ -f '$ST/bundles/$KEPT/config.json' ]"
    out=$(S run --bundle "$ST/bundles/$KEPT" kept2 2>&1); rc=$?
    if [ "$out" = kept ] && [ $rc = 0 ]; then ok "run --bundle B ID still runs a bundle"; else not_ok "run --bundle B ID still runs a bundle" "rc=$rc out=$out"; fi
    check "bundle rm of a run --image container" S bundle "${RA[@]}" rm "$KEPT"
    left=$(find "$ST/containers/$KEPT" "$ST/bundles/$KEPT" "$ST/provisions/$KEPT.json" "$ST/networks/attachments/$KEPT.json" 2>/dev/null; find /run/stockade/netns -name "$KEPT" 2>/dev/null)
    if [ -z "$left" ]; then ok "bundle rm of a run --image container leaves no rootfs, bundle, record or network namespace"; else not_ok "bundle rm of a run --image container" "$left"; fi
    # A dir container deleted without --storage-driver (the default may be overlay): the
    # recorded driver is used.
    S run --image localhost/unpack/busybox:1 "${RA[@]}" --name "d$KEPT" --network host -- true >/dev/null 2>&1
    check "delete --force without --storage-driver of a dir container" S delete --force --storage-root "$ST" "d$KEPT"
    check "it took the dir rootfs and the bundle" bash -c "[ ! -e '$ST/containers/d$KEPT' ] && [ ! -e '$ST/bundles/d$KEPT' ]"
    if [ -z "$zfs_skip" ]; then
        out=$(S run --image localhost/unpack/busybox:1 --image-root "$STORE" --storage-root "$ST" --zfs-dataset "$POOL/stockade" --rm --name zr -- echo on zfs 2>&1); rc=$?
        if [ "$out" = "on zfs" ] && [ $rc = 0 ] && ! zfs list "$POOL/stockade/containers/zr" >/dev/null 2>&1; then
            ok "run --image --rm on the zfs driver"
        else
            not_ok "run --image --rm on the zfs driver" "rc=$rc out=$out"
        fi
    fi
else
    echo "# SKIP run --image: /bin/busybox is missing (Debian package busybox-static)"
fi

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
