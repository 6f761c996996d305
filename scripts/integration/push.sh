#!/usr/bin/env bash
# Integration tests for `stockade image push`, `login` and `logout` against a real
# docker-registry (Debian's `docker-registry`, distribution 2.8) on 127.0.0.1, one open and
# one behind htpasswd. What stockade pushes is read back by skopeo and pulled back by
# stockade with the same digest. Nothing leaves the machine.
#
#   STOCKADE=target/debug/stockade scripts/integration/push.sh
#
# Needs: docker-registry skopeo apache2-utils (htpasswd) python3 curl busybox-static
# (scripts/setup.sh installs them). Ends with "N passed, N failed"; exits non-zero if
# anything failed. Every registry and temporary file goes away on exit.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tap.sh
source "$HERE/tap.sh"
stockade_binary push.sh
need_tools push.sh docker-registry skopeo htpasswd python3 curl

WORK=$(mktemp -d /tmp/stockade-push.XXXXXX)
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
start_registry() { # start_registry NAME [HTPASSWD_FILE]; sets PORT_<NAME>
    local name=$1 htpasswd=${2:-} port dir
    port=$(free_port)
    dir=$WORK/registry-$name
    mkdir -p "$dir/storage"
    {
        printf 'version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n'
        printf 'storage:\n  filesystem:\n    rootdirectory: %s\n' "$dir/storage"
        printf 'http:\n  addr: 127.0.0.1:%s\n' "$port"
        if [ -n "$htpasswd" ]; then
            printf 'auth:\n  htpasswd:\n    realm: stockade-test\n    path: %s\n' "$htpasswd"
        fi
    } >"$dir/config.yml"
    REGISTRY_HTTP_SECRET=stockade-test docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 1 100); do
        curl -s -o /dev/null "http://127.0.0.1:$port/v2/" && break
        sleep 0.1
    done
    printf -v "PORT_$name" '%s' "$port"
}

htpasswd -Bbc "$WORK/htpasswd" tester s3cret >/dev/null 2>&1
start_registry open
start_registry auth "$WORK/htpasswd"
OPEN=127.0.0.1:$PORT_open
AUTH=127.0.0.1:$PORT_auth

# Every auth file stockade would read or write lives under $WORK.
export HOME=$WORK/home
unset REGISTRY_AUTH_FILE XDG_RUNTIME_DIR DOCKER_CONFIG
mkdir -p "$HOME"

S() { "$STOCKADE" image --image-root "$1" "${@:2}"; }
ACCEPT='application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json'
registry_digest() { # registry_digest HOST/REPO:TAG [CURL ARGS]: the registry's manifest digest
    local hostrepo=${1%:*} tag=${1##*:}
    curl -sfI "${@:2}" -H "Accept: $ACCEPT" "http://${hostrepo%%/*}/v2/${hostrepo#*/}/manifests/$tag" \
        | tr -d '\r' | awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}'
}
store_digest() { S "$1" ls --json | python3 -c 'import json,sys; n=sys.argv[1]; print([i["digest"] for i in json.load(sys.stdin) if i["name"]==n][0])' "$2"; }

# An image with a layer over the default 8 MiB chunk bound, imported into a store.
ST=$WORK/store
python3 "$HERE/mkimage.py" "$WORK/layout" v1 --layer busybox --layer random:9500000 --layer file:etc/app.conf=hello >/dev/null \
    || { echo "push.sh: building the image failed" >&2; exit 2; }
S "$ST" import --tag "$OPEN/src/app:v1" "$WORK/layout" >/dev/null || { echo "push.sh: import failed" >&2; exit 2; }
WANT=$(store_digest "$ST" "$OPEN/src/app:v1")

# ---------------------------------------------------------------------------------------
out=$(S "$ST" push "$OPEN/src/app:v1" 2>&1)
if [ "$(tail -1 <<<"$out")" = "$WANT" ] && [ "$(registry_digest "$OPEN/src/app:v1")" = "$WANT" ] \
    && grep -q '4 blobs uploaded' <<<"$out"; then
    ok "push to the stored name: 4 blobs uploaded (one chunked), the registry has the store's digest"
else
    not_ok "push to the stored name" "$out / registry: $(registry_digest "$OPEN/src/app:v1") / want $WANT"
fi
got=$(skopeo inspect --tls-verify=false "docker://$OPEN/src/app:v1" 2>&1 | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["Digest"], len(d["Layers"]))' 2>&1)
if [ "$got" = "$WANT 3" ]; then ok "skopeo reads the pushed image: same digest, 3 layers"; else not_ok "skopeo inspect" "$got"; fi
check "skopeo copies the pushed image out (every blob verified)" \
    skopeo copy -q --src-tls-verify=false "docker://$OPEN/src/app:v1" "oci:$WORK/skopeo-copy:v1"
out=$(S "$WORK/store-back" pull "$OPEN/src/app:v1" 2>&1)
if [ "$(tail -1 <<<"$out")" = "$WANT" ] && python3 "$HERE/verifystore.py" "$WORK/store-back" >/dev/null 2>&1; then
    ok "stockade pulls the pushed image back with the same digest"
else
    not_ok "pull back" "$out"
fi

out=$(S "$ST" push "$OPEN/src/app:v1" "$OPEN/dst/app:copy" 2>&1)
if [ "$(tail -1 <<<"$out")" = "$WANT" ] && grep -q '0 blobs uploaded.*4 mounted' <<<"$out" \
    && [ "$(registry_digest "$OPEN/dst/app:copy")" = "$WANT" ]; then
    ok "push to another repository of the same registry mounts every blob"
else
    not_ok "cross-repository mount" "$out"
fi
out=$(S "$ST" push "$OPEN/src/app:v1" "$OPEN/dst/app:again" 2>&1)
if grep -q '0 blobs uploaded.*0 mounted; 4 already there' <<<"$out" && [ "$(registry_digest "$OPEN/dst/app:again")" = "$WANT" ]; then
    ok "push of blobs the repository has: nothing sent, only the manifest"
else
    not_ok "push again" "$out"
fi

out=$(S "$ST" push --chunk-size 65536 "$OPEN/src/app:v1" "$OPEN/chunked/app:v1" 2>&1)
if [ "$(tail -1 <<<"$out")" = "$WANT" ] && [ "$(S "$WORK/store-chunked" pull -q "$OPEN/chunked/app:v1" 2>&1)" = "$WANT" ]; then
    ok "push in 64 KiB chunks to a fresh registry repository, pulled back with the same digest"
else
    not_ok "chunked push" "$out"
fi

# A Docker v2 schema 2 image keeps its media type and digest.
skopeo copy -q --dest-tls-verify=false --format v2s2 "oci:$WORK/layout:v1" "docker://$OPEN/docker/app:v1" >/dev/null 2>&1
DOCKER_DIGEST=$(registry_digest "$OPEN/docker/app:v1")
S "$ST" pull -q "$OPEN/docker/app:v1" >/dev/null 2>&1
out=$(S "$ST" push "$OPEN/docker/app:v1" "$OPEN/docker2/app:v1" 2>&1)
mt=$(curl -sfI -H "Accept: $ACCEPT" "http://$OPEN/v2/docker2/app/manifests/v1" | tr -d '\r' | awk -F': ' 'tolower($1)=="content-type"{print $2}')
if [ "$(tail -1 <<<"$out")" = "$DOCKER_DIGEST" ] && [ "$mt" = "application/vnd.docker.distribution.manifest.v2+json" ]; then
    ok "a Docker v2s2 image is pushed with its media type and digest"
else
    not_ok "docker media type" "$out / $mt"
fi

# A damaged blob in the store is not committed, and the tag is not created. (Pushed to the
# other registry: within this one the blob would be mounted, never read from the store.)
cp -a "$ST" "$WORK/store-damaged"
big=$(S "$WORK/store-damaged" inspect "$OPEN/src/app:v1" | python3 -c 'import json,sys; print(max(json.load(sys.stdin)["manifest"]["layers"], key=lambda l: l["size"])["digest"][7:])')
python3 "$HERE/registry_helpers.py" flip-byte "$WORK/store-damaged/blobs/sha256/$big"
if ! out=$(S "$WORK/store-damaged" push --creds tester:s3cret "$OPEN/src/app:v1" "$AUTH/damaged/app:v1" 2>&1) \
    && grep -q "blob sha256:$big in the store: content has digest" <<<"$out" \
    && [ -z "$(registry_digest "$AUTH/damaged/app:v1" -u tester:s3cret)" ] \
    && [ "$(curl -s -o /dev/null -w '%{http_code}' -u tester:s3cret -I "http://$AUTH/v2/damaged/app/blobs/sha256:$big")" = 404 ]; then
    ok "a damaged store blob is refused before the upload is committed; no tag appears"
else
    not_ok "damaged blob" "$out"
fi

expect_fail() { # expect_fail NAME PATTERN COMMAND...
    local name=$1 pattern=$2 out
    shift 2
    if out=$("$@" 2>&1); then
        not_ok "$name" "succeeded: $out"
    elif grep -Eq -- "$pattern" <<<"$out"; then
        ok "$name"
        echo "#   $(tail -1 <<<"$out")"
    else
        not_ok "$name" "error does not match /$pattern/: $out"
    fi
}
expect_fail "push of an unknown image" 'no image named' S "$ST" push local/nothing:here "$OPEN/x/y:1"
expect_fail "push --platform is refused" 'platform does not apply' S "$ST" push --platform linux/amd64 "$OPEN/src/app:v1" "$OPEN/x/y:1"

# ---------------------------------------------------------------------------------------
# Authentication: --creds, login, logout
# ---------------------------------------------------------------------------------------
expect_fail "push to an htpasswd registry without credentials" 'requires credentials' \
    S "$ST" push "$OPEN/src/app:v1" "$AUTH/private/app:v1"
out=$(S "$ST" push --creds tester:s3cret "$OPEN/src/app:v1" "$AUTH/private/app:v1" 2>&1)
if [ "$(tail -1 <<<"$out")" = "$WANT" ] && [ "$(registry_digest "$AUTH/private/app:v1" -u tester:s3cret)" = "$WANT" ]; then
    ok "push with --creds to an htpasswd registry"
else
    not_ok "push --creds" "$out"
fi

expect_fail "login with a wrong password is refused and saves nothing" 'refused the credentials for user "tester"' \
    bash -c "echo wrong | '$STOCKADE' image login -u tester --password-stdin '$AUTH'"
if [ ! -e "$HOME/.docker/config.json" ]; then ok "a refused login writes no auth file"; else not_ok "refused login wrote $(cat "$HOME/.docker/config.json")"; fi
out=$(echo s3cret | "$STOCKADE" image login -u tester --password-stdin "$AUTH" 2>&1)
mode=$(stat -c %a "$HOME/.docker/config.json" 2>&1)
if grep -q 'Login Succeeded' <<<"$out" && [ "$mode" = 600 ]; then
    ok "login checks the credentials and writes ~/.docker/config.json with mode 0600"
else
    not_ok "login" "$out / mode $mode"
fi
out=$(S "$WORK/store-login" pull "$AUTH/private/app:v1" 2>&1)
if [ "$(tail -1 <<<"$out")" = "$WANT" ]; then ok "after login, a pull from the htpasswd registry needs no --creds"; else not_ok "pull after login" "$out"; fi
out=$(S "$ST" push "$OPEN/src/app:v1" "$AUTH/private/app:v2" 2>&1)
if [ "$(tail -1 <<<"$out")" = "$WANT" ]; then ok "after login, a push needs no --creds"; else not_ok "push after login" "$out"; fi
check "skopeo reads the login's auth file" \
    skopeo inspect --tls-verify=false --authfile "$HOME/.docker/config.json" "docker://$AUTH/private/app:v1"
check "logout removes the entry" "$STOCKADE" image logout "$AUTH"
S "$WORK/store-logout" ls >/dev/null
expect_fail "after logout, the pull fails with the auth error" 'requires credentials' \
    S "$WORK/store-logout" pull "$AUTH/private/app:v1"
expect_fail "logout again: not logged in" 'not logged in to' "$STOCKADE" image logout "$AUTH"
expect_fail "login to a name that is no registry host" 'is not a registry host' \
    bash -c "echo x | '$STOCKADE' image login -u u --password-stdin justaname"

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
