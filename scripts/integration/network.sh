#!/usr/bin/env bash
# Container networks through CNI (issue 15 item 1), as root on Linux: a busybox httpd
# published on a host port and reached with curl; two containers on the default network
# talking by IP and by name, /etc/hosts updated when one joins or leaves; a second network
# isolated from the first; --network none; `run --image -t` under script(1) getting a pty;
# `network ls|create|rm` (rm deletes the bridge and the address directory); `bundle rm`
# of a running container refused; and the teardown: after delete (also after a SIGKILL of
# `run`) no namespace file, no veth on the bridge, no iptables rule for the id, no address
# held.
#
#   STOCKADE=target/debug/stockade scripts/integration/network.sh
#
# Ends with "N passed, N failed".
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tap.sh
source "$HERE/tap.sh"
stockade_binary network.sh
need_root network.sh
need_tools network.sh curl iptables-save ip timeout script sha256sum
[ -x /usr/lib/cni/bridge ] || { echo "network.sh: no CNI plugins in /usr/lib/cni (run scripts/setup.sh)" >&2; exit 2; }

TMP=$(mktemp -d /tmp/stockade-network.XXXXXX)
TAG=$$
WEB=web$TAG CLI=cli$TAG ISO=iso$TAG NONE=none$TAG KILLED=killed$TAG PEER=peer$TAG TTYC=tty$TAG
NET2=iso-$TAG
export STOCKADE_IMAGE_ROOT=$TMP/store STOCKADE_STORAGE_ROOT=$TMP/st
S() { timeout 60 "$STOCKADE" --root "$TMP/run" "$@"; }
cleanup() {
    local id pid
    for id in $WEB $CLI $ISO $NONE $KILLED $PEER $TTYC ${TTYC}l; do S delete --force "$id" >/dev/null 2>&1; done
    for pid in $(pids_mentioning "$TMP/run"); do kill -KILL "$pid" 2>/dev/null; done
    # A run that stopped early still removes its network: the bridge, host-local's
    # directory and the firewall rules are host-wide and outlive $TMP.
    S network rm "$NET2" >/dev/null 2>&1
    [ -n "${BR2:-}" ] && ip link delete "$BR2" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT

bash "$HERE/busybox-image.sh" "$TMP/bb.tar" >/dev/null || { echo "network.sh: cannot build the busybox image" >&2; exit 2; }
S image import --format oci-archive "$TMP/bb.tar" >/dev/null || exit 2
BB=localhost/stockade/busybox:latest
PORT=$((20000 + RANDOM % 20000))

# wait_for CMD...: retries CMD for up to 20 s (a condition, not a timing threshold).
wait_for() { local i; for ((i = 0; i < 100; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done; return 1; }
# ip_of ID: the container's address, from the hosts file stockade wrote into its bundle.
ip_of() { awk -v id="$1" '$2 == id { print $1 }' "$TMP/st/bundles/$1/hosts"; }
# gone ID [BRIDGE [ADDRESS]]: prints what of ID's network is left on the host.
gone() {
    local id=$1 br=${2:-} addr=${3:-}
    find /run/stockade/netns -name "$id" 2>/dev/null | sed 's/^/netns file /'
    [ -e "$TMP/st/networks/attachments/$id.json" ] && echo "attachment record"
    iptables-save 2>/dev/null | grep -F "id: \"$id\"" | head -3
    grep -lx "$id" /var/lib/cni/networks/*/* 2>/dev/null | head -3
    [ -n "$br" ] && ip -o link show master "$br" 2>/dev/null | head -3
    # The firewall plugin's rules name the address, not the id.
    [ -n "$addr" ] && iptables-save 2>/dev/null | grep -F -- "$addr/32" | head -3
    return 0
}
http_get() { # http_get ADDR PORT: an HTTP GET from a container on the default network
    S run --image "$BB" --rm --name "$CLI" -- sh -c "printf 'GET /index.html HTTP/1.0\r\n\r\n' | nc -w 3 $1 $2"
}

# --- a published service -------------------------------------------------------------
mkdir -p "$TMP/www"
(S run --image "$BB" --name "$WEB" -p "127.0.0.1:$PORT:8080" -- \
    sh -c 'mkdir -p /w && echo hello-from-$(hostname) > /w/index.html && exec httpd -f -p 8080 -h /w' \
    >"$TMP/web.log" 2>&1 &)
if wait_for curl -sf -m 2 "http://127.0.0.1:$PORT/index.html"; then
    body=$(curl -sf -m 5 "http://127.0.0.1:$PORT/index.html")
    if [ "$body" = "hello-from-stockade" ] || [ "$body" = "hello-from-$WEB" ]; then ok "httpd published on 127.0.0.1:$PORT answers curl"; else not_ok "published port" "body: $body"; fi
else
    not_ok "httpd published on 127.0.0.1:$PORT answers curl" "$(cat "$TMP/web.log")"
fi
WEB_IP=$(ip_of "$WEB")
case $WEB_IP in 10.89.0.*) ok "the container has an address on the default network ($WEB_IP)" ;; *) not_ok "address on the default network" "hosts: $(cat "$TMP/st/bundles/$WEB/hosts" 2>&1)" ;; esac
check "network ls lists the default network with one container" bash -c "'$STOCKADE' network ls | grep -E '^stockade +10.89.0.0/24 +stockade0 +1\$'"

# --- two containers on the default network ------------------------------------------
out=$(http_get "$WEB_IP" 8080 2>&1)
if [[ $out == *hello-from* ]]; then ok "a second container reaches the first by IP"; else not_ok "a second container reaches the first by IP" "$out"; fi
out=$(http_get "$WEB" 8080 2>&1)
if [[ $out == *hello-from* ]]; then ok "a second container reaches the first by name (/etc/hosts)"; else not_ok "a second container reaches the first by name" "$out"; fi
# A container joining later is added to the /etc/hosts of the one running, and removed
# again when it leaves.
S run --image "$BB" -d --name "$PEER" -- sh -c 'mkdir -p /w && echo peer-here > /w/index.html && exec httpd -f -p 8080 -h /w' >/dev/null 2>&1
out=$(S exec "$WEB" sh -c "printf 'GET /index.html HTTP/1.0\r\n\r\n' | nc -w 3 $PEER 8080" 2>&1)
if [[ $out == *peer-here* ]]; then ok "a container started later resolves by name in the first (its /etc/hosts was updated)"; else not_ok "the later container's name in the first's /etc/hosts" "$out; hosts: $(S exec "$WEB" cat /etc/hosts 2>&1)"; fi
S delete --force "$PEER" >/dev/null 2>&1
out=$(S exec "$WEB" cat /etc/hosts 2>&1)
if [[ $? -eq 0 && $out == *"$WEB"* && $out != *"$PEER"* ]]; then ok "a container leaving is removed from the others' /etc/hosts"; else not_ok "the leaving container in /etc/hosts" "$out"; fi
out=$(S run --image "$BB" --rm --name "$CLI" -- cat /etc/hosts /etc/resolv.conf 2>&1)
if [[ $out == *"	$CLI"* ]] && ! grep -qE '^nameserver (127\.|::1)' <<<"$out"; then ok "/etc/hosts has the container's name; resolv.conf has no loopback server"; else not_ok "/etc/hosts and resolv.conf" "$out"; fi
left=$(gone "$CLI")
if [ -z "$left" ]; then ok "a run --rm leaves nothing of its network"; else not_ok "a run --rm leaves nothing of its network" "$left"; fi

# --- an isolated second network ------------------------------------------------------
# fw_rules BRIDGE: how many iptables rules name the bridge (the firewall plugin's).
fw_rules() { iptables-save 2>/dev/null | grep -cE -- "-[io] $1( |\$)"; }
check "network create $NET2" S network create "$NET2"
BR2=$(S network ls | awk -v n="$NET2" '$1 == n { print $3 }')
RULES_BEFORE=$(fw_rules "$BR2")
out=$(S run --image "$BB" --rm --name "$ISO" --network "$NET2" -- sh -c \
    "ip -4 -o addr show eth0; printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 $WEB_IP 8080; echo rc=\$?" 2>&1)
if [[ $out == *"inet 10.89."* && $out != *"inet 10.89.0."* && $out != *hello-from* ]]; then ok "a container on $NET2 has its own subnet and cannot reach the default network"; else not_ok "isolation of $NET2" "$out"; fi
out=$(S run --image "$BB" --rm --name "$NONE" --network none -- ip -o link 2>&1)
if [[ $out == *"lo:"*"UP"* && $out != *eth0* ]]; then ok "--network none has loopback only, up"; else not_ok "--network none" "$out"; fi
out=$(S run --image "$BB" --rm --name "$NONE" --network none -p 80:80 -- true 2>&1)
if [[ $? -ne 0 && $out == *"--publish needs a network"* ]]; then ok "--publish with --network none is refused"; else not_ok "--publish with none" "$out"; fi

# --- a terminal: run --image -t under script(1), on the default network -------------------
out=$(timeout -k 5 90 script -qec "timeout --foreground -k 5 60 '$STOCKADE' --root '$TMP/run' run --image $BB --rm -t --name $TTYC -- sh -c 'tty; [ -t 0 ] && [ -t 1 ] && echo both-ttys; exit 3'" /dev/null 2>&1); rc=$?
if [[ $rc -eq 3 && $out == *"/dev/pts/"* && $out == *both-ttys* ]]; then ok "run --image -t under script(1) gets a pty and returns the status"; else not_ok "run --image -t under script(1)" "rc=$rc out=$out"; fi
left=$(gone "$TTYC"; [ -e "$TMP/run/.tty" ] && echo "relay dir $TMP/run/.tty")
if [ -z "$left" ]; then ok "a run --image -t --rm leaves nothing of its network or its relay"; else not_ok "after run -t --rm" "$left"; fi

# A state root too long for the relay's socket address: refused by its limit, before any
# bundle or network is made (no --rm, so anything made would stay).
LONG=$TMP/$(printf 'r%.0s' {1..100})
out=$(timeout -k 5 90 script -qec "timeout --foreground -k 5 60 '$STOCKADE' --root '$LONG' run --image $BB -t --name ${TTYC}l -- true" /dev/null 2>&1); rc=$?
if [[ $rc -ne 0 && $out == *"a unix socket path is at most"* ]] && [ ! -e "$TMP/st/bundles/${TTYC}l" ] && [ -z "$(gone "${TTYC}l")" ]; then ok "run --image -t with a --root too long for the relay's socket is refused naming the limit, nothing made"; else not_ok "run -t with a long --root" "rc=$rc out=$out"; fi

# --- in use, teardown ---------------------------------------------------------------
out=$(S network rm stockade 2>&1)
if [[ $? -ne 0 && $out == *"in use by $WEB"* ]]; then ok "network rm refuses a network in use"; else not_ok "network rm in use" "$out"; fi
out=$(S bundle rm "$WEB" 2>&1)
if [[ $? -ne 0 && $out == *"delete --force $WEB"* ]] && [ -n "$(find /run/stockade/netns -name "$WEB")" ]; then ok "bundle rm refuses a running run --image container, naming delete --force"; else not_ok "bundle rm of a running container" "$out"; fi
check "delete --force of the service" S delete --force "$WEB"
left=$(gone "$WEB" "" "$WEB_IP")
if [ -z "$left" ]; then ok "after delete: no netns, no attachment, no port rule, no address"; else not_ok "teardown after delete" "$left"; fi
if ! curl -sf -m 2 "http://127.0.0.1:$PORT/" >/dev/null 2>&1; then ok "the published port is closed again"; else not_ok "published port still answers"; fi
(S run --image "$BB" --name "$WEB" -p "127.0.0.1:$PORT:8080" -- sh -c 'mkdir -p /w && echo again > /w/index.html && exec httpd -f -p 8080 -h /w' >/dev/null 2>&1 &)
if wait_for curl -sf -m 2 "http://127.0.0.1:$PORT/index.html"; then ok "the name and the port are reused"; else not_ok "the name and the port are reused"; fi
S delete --force "$WEB" >/dev/null 2>&1

# --- SIGKILL of run ------------------------------------------------------------------
S run --image "$BB" --name "$KILLED" --network "$NET2" -p "127.0.0.1:$((PORT + 1)):8080" -- sleep 60 >/dev/null 2>&1 &
run_pid=$!
wait_for test -e "$TMP/run/$KILLED/state.json"
kill -KILL "$run_pid" 2>/dev/null
wait "$run_pid" 2>/dev/null
KILLED_IP=$(ip_of "$KILLED")
check "delete --force after a SIGKILLed run" S delete --force "$KILLED"
left=$(gone "$KILLED" "$BR2" "$KILLED_IP")
if [ -z "$left" ]; then ok "after SIGKILL of run and delete --force: nothing of the network is left"; else not_ok "teardown after SIGKILL" "$left"; fi
# The firewall plugin's isolation rules for the bridge outlive its containers (its DEL
# keeps them for the others on the bridge); without the plugin there are none to check.
RULES_USED=$(fw_rules "$BR2")
[ -x /usr/lib/cni/firewall ] || RULES_USED=1
check "network rm $NET2 once unused" S network rm "$NET2"
if ! ip link show "$BR2" >/dev/null 2>&1 && [ ! -e "/var/lib/cni/networks/$NET2" ]; then ok "network rm deletes the bridge $BR2 and /var/lib/cni/networks/$NET2"; else not_ok "network rm leaves host objects" "$(ip -o link show "$BR2" 2>&1; ls -la "/var/lib/cni/networks/$NET2" 2>&1)"; fi
if [ "$RULES_BEFORE" -eq 0 ] && [ "$RULES_USED" -gt 0 ] && [ "$(fw_rules "$BR2")" -eq 0 ]; then ok "network rm removes the firewall rules naming $BR2 (before create 0, once used $RULES_USED, after rm 0)"; else not_ok "firewall rules of $BR2 left" "before: $RULES_BEFORE; after: $(iptables-save | grep -E -- "-[io] $BR2( |\$)")"; fi
if ! S network ls -q | grep -qx "$NET2"; then ok "network ls no longer lists $NET2"; else not_ok "network ls after rm"; fi

KEY=$(printf %s "$(realpath "$TMP/st")" | sha256sum | cut -c1-16)
if [ ! -e "/run/stockade/netns/$KEY" ]; then ok "no namespace directory of the storage root is left (/run/stockade/netns/$KEY)"; else not_ok "namespace directory left" "$(ls -la "/run/stockade/netns/$KEY")"; fi

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
