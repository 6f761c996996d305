#!/usr/bin/env bash
# Registry integration tests for `stockade image`: a real docker-registry (Debian's
# `docker-registry`, distribution 2.8) on 127.0.0.1, filled with images this script builds
# and pushes with skopeo, plus a small python proxy on loopback for bearer tokens and for
# connections that drop mid-blob. Nothing leaves the machine.
#
#   STOCKADE=target/debug/stockade scripts/integration/registry.sh
#
# Needs: docker-registry skopeo umoci apache2-utils (htpasswd) python3 curl zstd xz-utils
# busybox-static (scripts/setup.sh installs them). Ends with "N passed, N failed"; exits
# non-zero if anything failed. Every registry, proxy and temporary file goes away on exit.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tap.sh
source "$HERE/tap.sh"
stockade_binary registry.sh
need_tools registry.sh docker-registry skopeo umoci htpasswd python3 curl zstd xz sha256sum

WORK=$(mktemp -d /tmp/stockade-registry.XXXXXX)
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM


free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_http() { # wait_http URL: until it answers at all
    local i
    for i in $(seq 1 100); do
        curl -s -o /dev/null "$1" && return 0
        sleep 0.1
    done
    echo "registry.sh: $1 never answered" >&2
    return 1
}

# ---------------------------------------------------------------------------------------
# Registries and proxies
# ---------------------------------------------------------------------------------------
start_registry() { # start_registry NAME [HTPASSWD_FILE]; sets PORT_<NAME> and REGDIR_<NAME>
    local name=$1 htpasswd=${2:-} port dir
    port=$(free_port)
    dir=$WORK/registry-$name
    mkdir -p "$dir/storage"
    {
        printf 'version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n'
        printf 'storage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\n' "$dir/storage"
        printf 'http:\n  addr: 127.0.0.1:%s\n' "$port"
        if [ -n "$htpasswd" ]; then
            printf 'auth:\n  htpasswd:\n    realm: stockade-test\n    path: %s\n' "$htpasswd"
        fi
    } >"$dir/config.yml"
    # The Debian package's defaults would otherwise pull in /etc/docker/registry settings.
    REGISTRY_HTTP_SECRET=stockade-test docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
    PIDS+=($!)
    wait_http "http://127.0.0.1:$port/v2/" || exit 2
    printf -v "PORT_$name" '%s' "$port"
    printf -v "REGDIR_$name" '%s' "$dir"
}

start_proxy() { # start_proxy NAME BACKEND_PORT ARGS...; sets PORT_<NAME>, log in $WORK/proxy-NAME.log
    local name=$1 backend=$2 port
    shift 2
    port=$(free_port)
    python3 "$HERE/registry_proxy.py" --port "$port" --backend "$backend" --log "$WORK/proxy-$name.log" "$@" \
        >"$WORK/proxy-$name.out" 2>&1 &
    PIDS+=($!)
    touch "$WORK/proxy-$name.log"
    wait_http "http://127.0.0.1:$port/v2/" || exit 2
    printf -v "PORT_$name" '%s' "$port"
}

htpasswd -Bbc "$WORK/htpasswd" tester s3cret >/dev/null 2>&1
start_registry open
start_registry auth "$WORK/htpasswd"
OPEN=127.0.0.1:$PORT_open
AUTH=127.0.0.1:$PORT_auth

# ---------------------------------------------------------------------------------------
# Images: built here, pushed with skopeo
# ---------------------------------------------------------------------------------------
push() { # push LAYOUT TAG DEST [skopeo args...]
    local layout=$1 tag=$2 dest=$3
    shift 3
    skopeo copy -q --dest-tls-verify=false "$@" "oci:$layout:$tag" "docker://$dest" \
        || { echo "registry.sh: pushing $dest failed" >&2; exit 2; }
}
mk() { python3 "$HERE/mkimage.py" "$@" || { echo "registry.sh: building $1 failed" >&2; exit 2; }; }

L=$WORK/layouts
mk "$L/app" v1 --layer busybox --layer random:3000000 --layer file:etc/app.conf=hello
push "$L/app" v1 "$OPEN/test/app:v1"
push "$L/app" v1 "$OPEN/test/app:docker" --format v2s2
mk "$L/multi" multi --platform freebsd/amd64 --platform linux/amd64 --layer busybox --layer random:500000
push "$L/multi" multi "$OPEN/test/multi:v1" --all
push "$L/multi" multi "$OPEN/test/multi:docker" --all --format v2s2
mk "$L/big" v1 --layer random:8000000 --layer random:6000000 --layer busybox
push "$L/big" v1 "$OPEN/test/big:v1"
for bad in corrupt trunc; do
    mk "$L/$bad" v1 --layer random:1500000 --layer busybox
    push "$L/$bad" v1 "$OPEN/test/$bad:v1"
done
push "$L/app" v1 "$AUTH/test/private:v1" --dest-creds tester:s3cret

# Damage what the registry serves: one byte of a layer flipped, another layer cut short.
big_layer() { python3 "$HERE/registry_helpers.py" big-layer "$1"; } # digest hex of the largest layer
blob_data() { echo "$REGDIR_open/storage/docker/registry/v2/blobs/sha256/${1:0:2}/$1/data"; }
CORRUPT_HEX=$(big_layer "$L/corrupt")
python3 "$HERE/registry_helpers.py" flip-byte "$(blob_data "$CORRUPT_HEX")"
TRUNC_HEX=$(big_layer "$L/trunc")
truncate -s 700000 "$(blob_data "$TRUNC_HEX")"

# Manifests that lie about a layer's size (the registry does not check sizes on push).
put_manifest_with_size_delta() { # REPO SRC_TAG NEW_TAG DELTA
    local m
    m=$(curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$OPEN/v2/$1/manifests/$2") || exit 2
    printf '%s' "$m" | python3 "$HERE/registry_helpers.py" size-delta "$4" >"$WORK/manifest-$3.json"
    curl -sf -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
        --data-binary "@$WORK/manifest-$3.json" "http://$OPEN/v2/$1/manifests/$3" >/dev/null || exit 2
}
put_manifest_with_size_delta test/app v1 toolong 7
put_manifest_with_size_delta test/app v1 tooshort -7

# ---------------------------------------------------------------------------------------
# Store checks
# ---------------------------------------------------------------------------------------
S() { "$STOCKADE" image --image-root "$1" "${@:2}"; }

store_problems() { # prints what is wrong with a store; nothing if it is clean
    local store=$1
    if [ -d "$store/.stockade/tmp" ] && [ -n "$(ls -A "$store/.stockade/tmp")" ]; then
        echo "temporary files left: $(ls -A "$store/.stockade/tmp" | tr '\n' ' ')"
    fi
    # Every blob hashes to its name and has its descriptor's size; every named image has its blobs.
    python3 "$HERE/verifystore.py" "$store"
}

# expect_failure NAME STORE PATTERN COMMAND...: the command fails, says PATTERN (grep -E),
# and the store is clean with index.json unchanged.
expect_failure() {
    local name=$1 store=$2 pattern=$3 before out rc problems
    shift 3
    before=$(sha256sum <"$store/index.json" 2>/dev/null)
    out=$("$@" 2>&1)
    rc=$?
    problems=$(store_problems "$store")
    if [ "$rc" -eq 0 ]; then
        not_ok "$name" "succeeded but should have failed: $out"
    elif ! grep -Eq -- "$pattern" <<<"$out"; then
        not_ok "$name" "error does not match /$pattern/: $out"
    elif [ -n "$problems" ]; then
        not_ok "$name" "store not clean after the failure: $problems"
    elif [ "$before" != "$(sha256sum <"$store/index.json")" ]; then
        not_ok "$name" "index.json changed although the command failed"
    else
        ok "$name"
        echo "#   $(tail -1 <<<"$out")"
    fi
}

registry_digest() { # registry_digest HOST/REPO:TAG: the manifest digest the registry reports
    local hostrepo=${1%:*} tag=${1##*:}
    curl -sfI -H 'Accept: application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' \
        "http://${hostrepo%%/*}/v2/${hostrepo#*/}/manifests/$tag" | tr -d '\r' | awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}'
}

# ---------------------------------------------------------------------------------------
# Pull
# ---------------------------------------------------------------------------------------
ST=$WORK/store
out=$(S "$ST" pull "$OPEN/test/app:v1" 2>&1)
want=$(registry_digest "$OPEN/test/app:v1")
if [ "$(tail -1 <<<"$out")" = "$want" ] && [ -z "$(store_problems "$ST")" ]; then ok "pull by tag (OCI manifest, 3 layers)"; else not_ok "pull by tag (OCI manifest, 3 layers)" "$out / want $want / $(store_problems "$ST")"; fi

out=$(S "$ST" pull "$OPEN/test/app:docker" 2>&1)
want=$(registry_digest "$OPEN/test/app:docker")
if [ "$(tail -1 <<<"$out")" = "$want" ] && grep -q 'already stored' <<<"$out" && S "$ST" inspect "$OPEN/test/app:docker" | grep 'vnd.docker.distribution.manifest.v2' >/dev/null; then
    ok "pull by tag (Docker v2 schema 2), shared layers reused"
else
    not_ok "pull by tag (Docker v2 schema 2), shared layers reused" "$out / want $want"
fi

DIGEST_APP=$(registry_digest "$OPEN/test/app:v1")
ST2=$WORK/store-digest
out=$(S "$ST2" pull "$OPEN/test/app@$DIGEST_APP" 2>&1)
if [ "$(tail -1 <<<"$out")" = "$DIGEST_APP" ] && S "$ST2" ls -q | grep -x "$OPEN/test/app@$DIGEST_APP" >/dev/null; then ok "pull by digest"; else not_ok "pull by digest" "$out"; fi

for mt in v1 docker; do
    for plat in freebsd/amd64 linux/amd64; do
        out=$(S "$ST" pull --platform "$plat" "$OPEN/test/multi:$mt" 2>&1)
        got=$(S "$ST" inspect "$OPEN/test/multi:$mt" 2>&1 | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["config"]["os"]+"/"+d["config"]["architecture"], d["platform"])' 2>&1)
        if [ "$got" = "$plat $plat" ]; then ok "multi-platform index ($mt): --platform $plat selects $plat"; else not_ok "multi-platform index ($mt): --platform $plat" "$out / $got"; fi
    done
done
INDEX_DIGEST=$(registry_digest "$OPEN/test/multi:v1")
out=$(S "$ST" pull --platform freebsd/amd64 "$OPEN/test/multi@$INDEX_DIGEST" 2>&1)
if [ $? -eq 0 ] && S "$ST" inspect "$OPEN/test/multi@$INDEX_DIGEST" | grep '"os": "freebsd"' >/dev/null; then ok "pull an index by digest selects the platform"; else not_ok "pull an index by digest" "$out"; fi

expect_failure "unknown platform: error lists what the index offers" "$ST" \
    'no image for platform linux/riscv64.*offers: freebsd/amd64, linux/amd64' \
    S "$ST" pull --platform linux/riscv64 "$OPEN/test/multi:v1"
expect_failure "explicit platform that a single-platform image lacks" "$ST" \
    'is for linux/amd64, not the requested freebsd/amd64' \
    S "$ST" pull --platform freebsd/amd64 "$OPEN/test/app:v1"
expect_failure "missing manifest" "$ST" 'manifest .*test/app:nosuchtag not found' \
    S "$ST" pull "$OPEN/test/app:nosuchtag"
expect_failure "missing repository" "$ST" 'not found' \
    S "$ST" pull "$OPEN/test/nosuchrepo:v1"
expect_failure "corrupted blob (wrong digest) is refused" "$ST" \
    "blob sha256:$CORRUPT_HEX: content has digest sha256:[0-9a-f]{64}.*not stored" \
    S "$ST" pull "$OPEN/test/corrupt:v1"
expect_failure "truncated blob is refused" "$ST" \
    "blob sha256:$TRUNC_HEX: expected [0-9]+ bytes, got 700000" \
    S "$ST" pull "$OPEN/test/trunc:v1"
expect_failure "descriptor size larger than the blob" "$ST" 'expected [0-9]+ bytes, got [0-9]+' \
    S "$ST" pull "$OPEN/test/app:toolong"
expect_failure "descriptor size smaller than the blob" "$ST" 'more data than the expected [0-9]+ bytes' \
    S "$ST" pull "$OPEN/test/app:tooshort"
expect_failure "malformed reference names the bad part" "$ST" 'tag "bad tag" is invalid|repository component' \
    S "$ST" pull "$OPEN/test/app:bad tag"
expect_failure "connection refused is a clear error" "$ST" "127.0.0.1:1/v2/x/manifests/latest" \
    S "$ST" pull "127.0.0.1:1/x"

# ---------------------------------------------------------------------------------------
# Authentication
# ---------------------------------------------------------------------------------------
SA=$WORK/store-auth
S "$SA" ls >/dev/null
expect_failure "basic auth: no credentials" "$SA" 'requires credentials.*--creds' \
    env HOME="$WORK/nohome" "$STOCKADE" image --image-root "$SA" pull "$AUTH/test/private:v1"
expect_failure "basic auth: wrong credentials" "$SA" 'credentials were refused' \
    S "$SA" pull --creds tester:wrong "$AUTH/test/private:v1"
check "basic auth: --creds" S "$SA" pull -q --creds tester:s3cret "$AUTH/test/private:v1"
mkdir -p "$WORK/dockercfg"
printf '{"auths":{"%s":{"auth":"%s"}}}' "$AUTH" "$(printf 'tester:s3cret' | base64)" >"$WORK/dockercfg/config.json"
check "basic auth: --authfile (docker config.json auths)" S "$WORK/store-auth2" pull -q --authfile "$WORK/dockercfg/config.json" "$AUTH/test/private:v1"
check "basic auth: \$DOCKER_CONFIG/config.json" env DOCKER_CONFIG="$WORK/dockercfg" "$STOCKADE" image --image-root "$WORK/store-auth3" pull -q "$AUTH/test/private:v1"

start_proxy token "$PORT_open" --token
TOK=127.0.0.1:$PORT_token
out=$(S "$WORK/store-token" pull "$TOK/test/app:v1" 2>&1)
if [ "$(tail -1 <<<"$out")" = "$DIGEST_APP" ] && grep -q 'GET /token scope=repository:test/app:pull service=stockade-test' "$WORK/proxy-token.log"; then
    ok "bearer token: anonymous token from the WWW-Authenticate realm, with service and scope"
else
    not_ok "bearer token: anonymous" "$out / $(cat "$WORK/proxy-token.log")"
fi
start_proxy tokencreds "$PORT_open" --token --token-creds tester:s3cret
TOKC=127.0.0.1:$PORT_tokencreds
S "$WORK/store-token2" ls >/dev/null
expect_failure "bearer token: token endpoint refuses without credentials" "$WORK/store-token2" 'getting a token for .*HTTP 401' \
    env HOME="$WORK/nohome" "$STOCKADE" image --image-root "$WORK/store-token2" pull "$TOKC/test/app:v1"
out=$(S "$WORK/store-token2" pull --creds tester:s3cret "$TOKC/test/app:v1" 2>&1)
if [ "$(tail -1 <<<"$out")" = "$DIGEST_APP" ] && grep -q 'GET /token scope=.* auth=basic' "$WORK/proxy-tokencreds.log"; then
    ok "bearer token: credentials sent to the token endpoint"
else
    not_ok "bearer token: credentials sent to the token endpoint" "$out"
fi

# Credential helpers (credHelpers, credsStore) and identity tokens, as `docker login` leaves
# them. The helper is a script on PATH that answers only for the auth registry.
mkdir -p "$WORK/helpers"
cat >"$WORK/helpers/docker-credential-stockadetest" <<EOF
#!/bin/sh
[ "\$1" = get ] || exit 9
read -r server
echo "\$server" >>"$WORK/helper-calls"
if [ "\$server" = "$AUTH" ]; then
    printf '{"ServerURL":"%s","Username":"tester","Secret":"s3cret"}' "\$server"
else
    echo 'credentials not found in native keychain'; exit 1
fi
EOF
printf '#!/bin/sh\necho "keychain is locked" >&2\nexit 2\n' >"$WORK/helpers/docker-credential-locked"
chmod +x "$WORK/helpers/"docker-credential-*
HP="$WORK/helpers:$PATH"
printf '{"credHelpers":{"%s":"stockadetest"}}' "$AUTH" >"$WORK/credhelpers.json"
printf '{"credsStore":"stockadetest","auths":{"%s":{}}}' "$AUTH" >"$WORK/credsstore.json"
printf '{"credsStore":"locked"}' >"$WORK/locked.json"
check "credential helper: credHelpers entry runs docker-credential-<name> get" \
    env PATH="$HP" "$STOCKADE" image --image-root "$WORK/store-helper1" pull -q --authfile "$WORK/credhelpers.json" "$AUTH/test/private:v1"
check "credential helper: credsStore behind an empty auths entry" \
    env PATH="$HP" "$STOCKADE" image --image-root "$WORK/store-helper2" pull -q --authfile "$WORK/credsstore.json" "$AUTH/test/private:v1"
if [ "$(sort -u "$WORK/helper-calls" 2>/dev/null)" = "$AUTH" ]; then
    ok "credential helper: given the registry host on stdin"
else
    not_ok "credential helper: given the registry host on stdin" "$(cat "$WORK/helper-calls" 2>&1)"
fi
S "$WORK/store-helper3" ls >/dev/null
expect_failure "credential helper: a failing helper is named with what it said" "$WORK/store-helper3" \
    'docker-credential-locked failed.*keychain is locked' \
    env PATH="$HP" "$STOCKADE" image --image-root "$WORK/store-helper3" pull --authfile "$WORK/locked.json" "$AUTH/test/private:v1"
expect_failure "credential helper: a missing helper is an error, not anonymous access" "$WORK/store-helper3" \
    'docker-credential-locked is not installed' \
    S "$WORK/store-helper3" pull --authfile "$WORK/locked.json" "$AUTH/test/private:v1"
start_proxy refresh "$PORT_open" --token --refresh-token rt-s3cret
TOKR=127.0.0.1:$PORT_refresh
printf '{"auths":{"%s":{"identitytoken":"rt-s3cret"}}}' "$TOKR" >"$WORK/identity.json"
out=$(S "$WORK/store-identity" pull --authfile "$WORK/identity.json" "$TOKR/test/app:v1" 2>&1)
if [ "$(tail -1 <<<"$out")" = "$DIGEST_APP" ] \
    && grep -q 'POST /token grant=refresh_token scope=repository:test/app:pull service=stockade-test' "$WORK/proxy-refresh.log"; then
    ok "identity token: exchanged at the realm by an OAuth2 refresh_token POST"
else
    not_ok "identity token: exchanged by a refresh_token POST" "$out / $(cat "$WORK/proxy-refresh.log")"
fi
# The commands that pull on demand take the same options as `image pull`.
SB=$WORK/store-bundle
S "$SB" ls >/dev/null
expect_failure "bundle prepare --image: pulls on demand, refused without credentials" "$SB" 'requires credentials' \
    env HOME="$WORK/nohome" "$STOCKADE" bundle --image-root "$SB" --storage-root "$WORK/storage-bundle" prepare --image "$AUTH/test/private:v1"
out=$(env HOME="$WORK/nohome" "$STOCKADE" bundle --image-root "$SB" --storage-root "$WORK/storage-bundle" \
    prepare --image "$AUTH/test/private:v1" --creds tester:s3cret 2>&1)
if grep -qE '^sha256:[0-9a-f]{64}$' <<<"$(tail -1 <<<"$out")" && S "$SB" ls | grep -q "test/private:v1"; then
    ok "bundle prepare --image --creds: pulled with the credentials and unpacked"
else
    not_ok "bundle prepare --image --creds" "$out"
fi

# ---------------------------------------------------------------------------------------
# Dropped connections: resume with Range, or start over when ranges are ignored
# ---------------------------------------------------------------------------------------
BIG_DIGEST=$(registry_digest "$OPEN/test/big:v1")
# dropped_pull PROXY STATUS NAME: a pull of the big image through proxy PROXY (started
# with --drop-after 2500000) gets the image, retries from byte 2500000 with a Range
# request the server answers with STATUS, and leaves a clean store.
dropped_pull() {
    local proxy=$1 status=$2 name=$3 port_var=PORT_$1 out
    out=$(S "$WORK/store-$proxy" pull "127.0.0.1:${!port_var}/test/big:v1" 2>&1)
    if [ "$(tail -1 <<<"$out")" = "$BIG_DIGEST" ] && grep -q "range=bytes=2500000- .*status=$status" "$WORK/proxy-$proxy.log" \
        && [ -z "$(store_problems "$WORK/store-$proxy")" ]; then
        ok "$name"
    else
        not_ok "$name" "$out / $(cat "$WORK/proxy-$proxy.log")"
    fi
}
start_proxy drop "$PORT_open" --drop-after 2500000
dropped_pull drop 206 "connection dropped mid-blob: resumed with Range and verified"
start_proxy norange "$PORT_open" --drop-after 2500000 --no-range
dropped_pull norange 200 "connection dropped, server ignores Range: download starts over and verifies"

# ---------------------------------------------------------------------------------------
# Concurrency: parallel pulls into one store, with prunes running alongside
# ---------------------------------------------------------------------------------------
SC=$WORK/store-concurrent
S "$SC" ls >/dev/null
pids=()
for i in 1 2 3 4; do
    S "$SC" pull -q "$OPEN/test/big:v1" >"$WORK/conc-$i.out" 2>&1 &
    pids+=($!)
done
for i in 5 6; do
    S "$SC" pull -q --platform linux/amd64 "$OPEN/test/multi:v1" >"$WORK/conc-$i.out" 2>&1 &
    pids+=($!)
done
for i in 7 8; do
    S "$SC" prune >"$WORK/conc-$i.out" 2>&1 &
    pids+=($!)
done
conc_fail=""
for p in "${pids[@]}"; do wait "$p" || conc_fail="$conc_fail $p"; done
names=$(S "$SC" ls -q | sort | tr '\n' ' ')
problems=$(store_problems "$SC")
if [ -z "$conc_fail" ] && [ "$names" = "$OPEN/test/big:v1 $OPEN/test/multi:v1 " ] && [ -z "$problems" ]; then
    ok "6 concurrent pulls and 2 prunes on one store"
else
    not_ok "concurrent pulls" "failed:$conc_fail names: $names problems: $problems $(cat "$WORK"/conc-*.out)"
fi

# ---------------------------------------------------------------------------------------
# Other tools read the store and our exports; we read theirs
# ---------------------------------------------------------------------------------------
check "skopeo reads the store directly (oci:STORE:NAME)" \
    bash -c "skopeo inspect 'oci:$ST:$OPEN/test/app:v1' | grep -q '$DIGEST_APP'"
check "umoci lists the store" bash -c "umoci ls --layout '$ST' | grep -qx '$OPEN/test/app:v1'"

EX=$WORK/exports
mkdir -p "$EX"
check "export as a layout directory" S "$ST" export "$OPEN/test/app:v1" "$EX/dir" --name app-v1
check "skopeo reads the exported layout" bash -c "skopeo inspect 'oci:$EX/dir:app-v1' | grep -q '$DIGEST_APP'"
rm -rf "$WORK/bundle"
check "umoci unpacks the exported image" bash -c "umoci unpack --image '$EX/dir:app-v1' '$WORK/bundle' >/dev/null 2>&1 && test -x '$WORK/bundle/rootfs/bin/busybox' && grep -qx hello '$WORK/bundle/rootfs/etc/app.conf'"
check "export as an OCI archive" S "$ST" export "$OPEN/test/app:v1" "$EX/app.tar"
check "skopeo reads the exported archive" bash -c "skopeo inspect 'oci-archive:$EX/app.tar' | grep -q '$DIGEST_APP'"
out=$(S "$WORK/store-reimport" import "$EX/app.tar" 2>&1)
if [ "$out" = "$OPEN/test/app:v1 $DIGEST_APP" ] && [ -z "$(store_problems "$WORK/store-reimport")" ]; then ok "import our OCI archive: same name, same digest"; else not_ok "import our OCI archive" "$out"; fi
out=$(S "$WORK/store-reimport2" import --tag local/again:1 "$EX/dir" 2>&1)
if [ "$out" = "docker.io/local/again:1 $DIGEST_APP" ]; then ok "import our layout directory under a new tag"; else not_ok "import our layout directory" "$out"; fi

check "export a Docker-typed image converts it to OCI for layout readers" \
    bash -c "'$STOCKADE' image --image-root '$ST' export '$OPEN/test/app:docker' '$EX/dockerdir' --name d && skopeo inspect 'oci:$EX/dockerdir:d' | grep -q '\"Layers\"'"

config_of() { S "$1" inspect "$2" | python3 -c 'import json,sys; print(json.load(sys.stdin)["manifest"]["config"]["digest"])'; }
APP_CONFIG=$(config_of "$ST" "$OPEN/test/app:v1")
skopeo copy -q --src-tls-verify=false "docker://$OPEN/test/app:v1" "oci:$WORK/skopeo-layout:v1" >/dev/null 2>&1
SI=$WORK/store-imports
expect_failure "import of a layout whose names are bare tags needs --tag" "$ST" 'has no usable name.*--tag' \
    S "$ST" import "$WORK/skopeo-layout"
out=$(S "$SI" import --tag local/skopeo:v1 "$WORK/skopeo-layout" 2>&1) && [ "$(config_of "$SI" local/skopeo:v1)" = "$APP_CONFIG" ] \
    && ok "import a layout written by skopeo" || not_ok "import a layout written by skopeo" "$out"
skopeo copy -q --src-tls-verify=false "docker://$OPEN/test/app:v1" "docker-archive:$WORK/saved.tar:local/saved:v1" >/dev/null 2>&1
out=$(S "$SI" import "$WORK/saved.tar" 2>&1)
if grep -q '^docker.io/local/saved:v1 sha256:' <<<"$out" && [ "$(config_of "$SI" local/saved:v1)" = "$APP_CONFIG" ] && [ -z "$(store_problems "$SI")" ]; then
    ok "import a docker-save archive (name from RepoTags, same config)"
else
    not_ok "import a docker-save archive" "$out"
fi
check "skopeo reads the image imported from docker-save" skopeo inspect "oci:$SI:docker.io/local/saved:v1"
out=$(S "$SI" import --platform freebsd/amd64 --tag local/multi:1 "$L/multi" 2>&1) \
    && S "$SI" inspect local/multi:1 | grep '"os": "freebsd"' >/dev/null && ok "import a multi-platform layout selects the platform" \
    || not_ok "import a multi-platform layout" "$out"
expect_failure "import with an unknown platform lists the offered ones" "$SI" 'offers: freebsd/amd64, linux/amd64' \
    S "$SI" import --platform linux/s390x --tag local/multi:2 "$L/multi"

# Root filesystem tarballs, every supported compression.
RF=$WORK/rootfs
mkdir -p "$RF/bin" "$RF/etc"
cp /bin/busybox "$RF/bin/busybox"
ln -s busybox "$RF/bin/sh"
echo freebsd >"$RF/etc/motd"
tar -C "$RF" -cf "$WORK/rootfs.tar" .
gzip -1 -c "$WORK/rootfs.tar" >"$WORK/rootfs.tar.gz"
xz -1 -T1 -c "$WORK/rootfs.tar" >"$WORK/base.txz"
zstd -q -1 -c "$WORK/rootfs.tar" >"$WORK/rootfs.tar.zst"
DIFF_ID=sha256:$(sha256sum <"$WORK/rootfs.tar" | cut -c1-64)
for f in rootfs.tar rootfs.tar.gz base.txz rootfs.tar.zst; do
    out=$(S "$SI" import --tag "local/rootfs:${f//./-}" --env PATH=/bin --entrypoint '["/bin/sh","-c"]' --cmd 'echo hi' "$WORK/$f" 2>&1)
    cfg=$(S "$SI" inspect "local/rootfs:${f//./-}" 2>&1)
    if err=$(python3 "$HERE/registry_helpers.py" check-rootfs "$DIFF_ID" <<<"$cfg" 2>&1); then
        ok "import rootfs tarball $f (one layer, FreeBSD config from flags)"
    else
        not_ok "import rootfs tarball $f" "$out $err"
    fi
done
check "skopeo reads an imported rootfs image" skopeo inspect "oci:$SI:docker.io/local/rootfs:base-txz"
S "$SI" ls >/dev/null
expect_failure "rootfs import without --tag" "$SI" 'no usable name.*--tag' S "$SI" import "$WORK/rootfs.tar.gz"
head -c 5000 /dev/urandom >"$WORK/junk.bin"
expect_failure "import of a file that is no tar" "$SI" 'not a valid tar|tarball is empty|not a' \
    S "$SI" import --format rootfs --tag local/junk:1 "$WORK/junk.bin"

# ---------------------------------------------------------------------------------------
# tag, rm, prune
# ---------------------------------------------------------------------------------------
check "tag gives a second name" bash -c "'$STOCKADE' image --image-root '$ST' tag '$OPEN/test/app:v1' local/app:tagged && '$STOCKADE' image --image-root '$ST' ls -q | grep -qx docker.io/local/app:tagged"
S "$ST" prune >/dev/null # verified blobs that failed pulls left behind
blobs_before=$(ls "$ST/blobs/sha256" | wc -l)
out=$(S "$ST" rm local/app:tagged 2>&1)
if [ "$(ls "$ST/blobs/sha256" | wc -l)" -eq "$blobs_before" ] && S "$ST" inspect "$OPEN/test/app:v1" >/dev/null 2>&1; then
    ok "rm of one name keeps blobs another image still uses"
else
    not_ok "rm of one name keeps shared blobs" "$out"
fi
out=$(S "$ST" rm "$OPEN/test/app:docker" 2>&1)
if ! S "$ST" ls -q | grep -x "$OPEN/test/app:docker" >/dev/null && [ -z "$(store_problems "$ST")" ] \
    && skopeo inspect "oci:$ST:$OPEN/test/app:v1" >/dev/null 2>&1; then
    ok "rm removes the name and its own blobs; the rest stays readable"
else
    not_ok "rm" "$out $(store_problems "$ST")"
fi
expect_failure "rm of an unknown image" "$ST" 'no image named' S "$ST" rm local/nothing:here
printf 'orphan' >"$ST/blobs/sha256/$(printf 'orphan' | sha256sum | cut -c1-64)"
printf 'partial' >"$ST/.stockade/tmp/12345-0-dead"
out=$(S "$ST" prune 2>&1)
if grep -q 'pruned 1 blobs (6 B), 1 temporary files' <<<"$out" && [ -z "$(store_problems "$ST")" ]; then ok "prune removes unreferenced blobs and stale temporaries"; else not_ok "prune" "$out"; fi
for n in $(S "$ST" ls -q); do S "$ST" rm "$n" >/dev/null 2>&1; done
left=$(ls "$ST/blobs/sha256" | wc -l)
if [ "$left" -eq 0 ] && [ "$(S "$ST" ls -q | wc -l)" -eq 0 ]; then ok "removing every image empties the store"; else not_ok "removing every image empties the store" "$left blobs left"; fi

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
