#!/usr/bin/env bash
# Pull benchmark: the same multi-layer image (>= 200 MB) pulled from a local docker-registry
# on 127.0.0.1 by `stockade image pull` and by `skopeo copy docker://… oci:…`, side by
# side, alternating, several rounds; prints each tool's median wall time and the ratio.
# Target: stockade <= 0.7 x skopeo. A benchmark, not a test: it exits 0 unless a pull fails.
#
#   STOCKADE=target/release/stockade ROUNDS=5 LAYERS=5 LAYER_MB=45 scripts/bench/pull.sh
set -euo pipefail

STOCKADE=${STOCKADE:-target/release/stockade}
STOCKADE=$(cd "$(dirname "$STOCKADE")" && pwd)/$(basename "$STOCKADE")
ROUNDS=${ROUNDS:-5}
LAYERS=${LAYERS:-5}
LAYER_MB=${LAYER_MB:-45}
JOBS=${JOBS:-4}
[ -x "$STOCKADE" ] || { echo "pull.sh: no stockade binary at $STOCKADE (cargo build --release -p stockade)" >&2; exit 2; }
for tool in docker-registry skopeo python3 curl; do
    command -v "$tool" >/dev/null || { echo "pull.sh: $tool is missing (run scripts/setup.sh)" >&2; exit 2; }
done

WORK=$(mktemp -d /tmp/stockade-bench-pull.XXXXXX)
REG_PID=
cleanup() {
    set +e
    if [ -n "$REG_PID" ]; then
        kill "$REG_PID" 2>/dev/null
        wait "$REG_PID" 2>/dev/null
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$WORK/registry"
cat >"$WORK/registry.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $WORK/registry
http:
  addr: 127.0.0.1:$PORT
EOF
REGISTRY_HTTP_SECRET=bench docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
REG_PID=$!
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/v2/" && break; sleep 0.1; done

# An OCI layout of LAYERS gzip layers, each a tar of LAYER_MB of random data.
python3 - "$WORK/layout" "$LAYERS" "$LAYER_MB" <<'PY'
import gzip, hashlib, io, json, os, sys, tarfile
root, layers, mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.makedirs(root + "/blobs/sha256")
def put(data):
    d = hashlib.sha256(data).hexdigest()
    open(root + "/blobs/sha256/" + d, "wb").write(data)
    return {"digest": "sha256:" + d, "size": len(data)}
descs, diff_ids = [], []
for i in range(layers):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        data = os.urandom(mb * 1024 * 1024)
        ti = tarfile.TarInfo("data/layer-%d.bin" % i); ti.size = len(data)
        t.addfile(ti, io.BytesIO(data))
    raw = buf.getvalue()
    diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
    descs.append(dict(put(gzip.compress(raw, compresslevel=1, mtime=0)), mediaType="application/vnd.oci.image.layer.v1.tar+gzip"))
config = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}, "config": {}}
c = dict(put(json.dumps(config).encode()), mediaType="application/vnd.oci.image.config.v1+json")
m = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": c, "layers": descs}
top = dict(put(json.dumps(m).encode()), mediaType="application/vnd.oci.image.manifest.v1+json",
           annotations={"org.opencontainers.image.ref.name": "big"})
json.dump({"schemaVersion": 2, "manifests": [top]}, open(root + "/index.json", "w"))
json.dump({"imageLayoutVersion": "1.0.0"}, open(root + "/oci-layout", "w"))
PY
IMAGE=127.0.0.1:$PORT/bench/big:v1
skopeo copy -q --dest-tls-verify=false "oci:$WORK/layout:big" "docker://$IMAGE"
SIZE_MB=$(du -sm "$WORK/layout/blobs" | cut -f1)
echo "image: $IMAGE, $LAYERS layers, ${SIZE_MB} MB compressed; $ROUNDS rounds; stockade --jobs $JOBS"

now() { date +%s.%N; }
declare -a T_STOCKADE T_SKOPEO
for round in $(seq 1 "$ROUNDS"); do
    # Alternate which tool goes first so neither always gets the warmer cache.
    order=(stockade skopeo)
    ((round % 2 == 0)) && order=(skopeo stockade)
    for tool in "${order[@]}"; do
        rm -rf "$WORK/out-$tool"
        start=$(now)
        if [ "$tool" = stockade ]; then
            "$STOCKADE" image --image-root "$WORK/out-$tool" pull -q --jobs "$JOBS" "$IMAGE" >/dev/null
            t=$(awk -v a="$start" -v b="$(now)" 'BEGIN {printf "%.3f", b - a}')
            T_STOCKADE+=("$t")
        else
            skopeo copy -q --src-tls-verify=false "docker://$IMAGE" "oci:$WORK/out-$tool:big" >/dev/null
            t=$(awk -v a="$start" -v b="$(now)" 'BEGIN {printf "%.3f", b - a}')
            T_SKOPEO+=("$t")
        fi
        printf 'round %d  %-8s %6.3f s\n' "$round" "$tool" "$t"
    done
done

# The floor: sha256 of the image's blobs in one thread, from the page cache (median of 3),
# with openssl, which uses the CPU's SHA instructions as stockade's sha2 does (coreutils'
# sha256sum does not, and is several times slower).
SHA=(sha256sum)
command -v openssl >/dev/null && SHA=(openssl dgst -sha256)
T_SHA=()
for _ in 1 2 3; do
    start=$(now)
    cat "$WORK"/layout/blobs/sha256/* | "${SHA[@]}" >/dev/null
    T_SHA+=("$(awk -v a="$start" -v b="$(now)" 'BEGIN {printf "%.3f", b - a}')")
done

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
MS=$(median "${T_STOCKADE[@]}")
MK=$(median "${T_SKOPEO[@]}")
RATIO=$(awk -v a="$MS" -v b="$MK" 'BEGIN {printf "%.3f", a / b}')
printf 'median: stockade %.3f s, skopeo %.3f s, ratio %s (target <= 0.7)\n' "$MS" "$MK" "$RATIO"
printf 'floor: sha256 of the blobs %.3f s (%s, one thread)\n' "$(median "${T_SHA[@]}")" "${SHA[*]}"
awk -v s="$SIZE_MB" -v a="$MS" -v b="$MK" 'BEGIN {printf "throughput: stockade %.0f MB/s, skopeo %.0f MB/s\n", s / a, s / b}'
