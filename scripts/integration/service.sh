#!/usr/bin/env bash
# Detached services (issue 15 item 3), as root on Linux: `run --image -d` hands the
# container to a monitor. A busybox httpd published with -p, a bind-mounted directory and
# -e, reached with curl; `ID=$(run -d …)` returns; its logs (all, --tail, --since, -f in the
# background); stop with the service's stop signal, and SIGKILL after the timeout when it
# is ignored; no restart after stop even with --restart always; rm refused while running,
# then nothing left; the name and port reused; --restart on-failure:2 running exactly three
# times; --rm -d leaving nothing; json-file logs; SIGKILL of the monitor, then rm -f leaving
# no namespace, mount, process or directory; the FreeBSD port's rc.d script (with a stub
# rc.subr) starting two declared services, leaving them alone on a second start, replacing
# one whose monitor was killed, and stopping and removing both.
#
#   STOCKADE=target/debug/stockade scripts/integration/service.sh
#
# Ends with "N passed, N failed".
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tap.sh
source "$HERE/tap.sh"
stockade_binary service.sh
need_root service.sh
need_tools service.sh curl timeout
[ -x /usr/lib/cni/bridge ] || { echo "service.sh: no CNI plugins in /usr/lib/cni (run scripts/setup.sh)" >&2; exit 2; }

TMP=$(mktemp -d /tmp/stockade-service.XXXXXX)
TAG=$$
WEB=web$TAG FAIL=fail$TAG GONE=gone$TAG KILLED=killed$TAG STUB=stub$TAG JSON=json$TAG
RCA=rca$TAG RCB=rcb$TAG
export STOCKADE_IMAGE_ROOT=$TMP/store STOCKADE_STORAGE_ROOT=$TMP/st
# Every command is bounded: a `run -d` whose stdout the container kept would hang here.
S() { timeout 60 "$STOCKADE" --root "$TMP/run" "$@"; }
GENERATED=
cleanup() {
    local id pid
    for id in $WEB $FAIL $GONE $KILLED $STUB $JSON $RCA $RCB $GENERATED; do S rm -f "$id" >/dev/null 2>&1; done
    for pid in $(pids_mentioning "$TMP/"); do kill -KILL "$pid" 2>/dev/null; done
    rm -rf "$TMP"
}
trap cleanup EXIT

bash "$HERE/busybox-image.sh" "$TMP/bb.tar" >/dev/null || { echo "service.sh: cannot build the busybox image" >&2; exit 2; }
S image import --format oci-archive "$TMP/bb.tar" >/dev/null || exit 2
BB=localhost/stockade/busybox:latest
PORT=$((20000 + RANDOM % 20000))

# wait_for CMD...: retries CMD for up to 20 s (a condition, not a timing threshold).
wait_for() { local i; for ((i = 0; i < 100; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done; return 1; }
# field NAME JQ: a field of `inspect NAME`.
field() { S inspect "$1" | jq -r ".[0]$2"; }
status_is() { [ "$(field "$1" .state.status)" = "$2" ]; }
# left ID: what of container ID is left on the host.
left() {
    local id=$1
    local f
    for f in "/run/stockade/netns/$id" /run/stockade/netns/*/"$id"; do
        [ -e "$f" ] && echo "netns file $f"
    done
    [ -e "$TMP/st/bundles/$id" ] && echo "bundle $TMP/st/bundles/$id"
    [ -e "$TMP/st/provisions/$id.json" ] && echo "provision record"
    [ -e "$TMP/st/networks/attachments/$id.json" ] && echo "attachment record"
    [ -e "$TMP/run/$id" ] && echo "runtime state $TMP/run/$id"
    grep -F "/$id" /proc/mounts | head -3
    pids_mentioning "bundles/$id" | head -3
    return 0
}

# --- a published service ---------------------------------------------------------------
mkdir -p "$TMP/www"
echo "<p>from the host</p>" >"$TMP/www/host.html"
out=$(S run --image "$BB" -d --name "$WEB" --restart always -p "127.0.0.1:$PORT:8080" \
    -v "$TMP/www:/data" -e GREETING=hello-env --stop-signal USR1 -- sh -c \
    'trap "echo got-usr1; exit 0" USR1; echo "$GREETING" > /data/index.html; echo started; httpd -f -v -p 8080 -h /data & wait' 2>&1)
if [ "$out" = "$WEB" ]; then ok "ID=\$(run -d) returns at once with the name"; else not_ok "run -d prints the name" "$out"; fi
if wait_for curl -sf -m 2 "http://127.0.0.1:$PORT/index.html"; then
    body=$(curl -sf -m 5 "http://127.0.0.1:$PORT/index.html")
    host=$(curl -sf -m 5 "http://127.0.0.1:$PORT/host.html")
    if [ "$body" = hello-env ] && [ "$host" = "<p>from the host</p>" ]; then ok "curl reaches the service: -e and -v DIR:/data are in effect"; else not_ok "service content" "$body / $host"; fi
else
    not_ok "curl reaches the published service" "$(S logs "$WEB" 2>&1)"
fi
check "the log holds the container's stdout" bash -c "timeout 60 '$STOCKADE' --root '$TMP/run' logs '$WEB' 2>/dev/null | grep -qx started"
out=$(S logs "$WEB" 2>&1 >/dev/null)
if [[ $out == *"response:200"* ]]; then ok "the log holds the container's stderr (httpd -v), printed on stderr"; else not_ok "stderr in the log" "$out"; fi
n=$(S logs --tail 1 "$WEB" 2>&1 | wc -l)
if [ "$n" = 1 ]; then ok "logs --tail 1 prints one line"; else not_ok "logs --tail 1" "$n lines"; fi
out=$(S logs --since 2099-01-01T00:00:00Z "$WEB" 2>&1)
if [ -z "$out" ] && S logs --since 1h "$WEB" 2>/dev/null | grep -qx started; then ok "logs --since a time and a duration"; else not_ok "logs --since" "$out"; fi
# httpd -v logs one line per request on stderr: two requests more, two lines more.
before=$(S logs "$WEB" 2>&1 | grep -c response:200)
S logs -f "$WEB" >"$TMP/follow.out" 2>&1 &
follow=$!
curl -sf -m 5 "http://127.0.0.1:$PORT/host.html" >/dev/null
curl -sf -m 5 "http://127.0.0.1:$PORT/index.html" >/dev/null
followed() { [ "$(grep -c response:200 "$TMP/follow.out")" -ge $((before + 2)) ]; }
if wait_for followed; then ok "logs -f prints what is written after it started"; else not_ok "logs -f" "before=$before $(cat "$TMP/follow.out")"; fi
j=$(S inspect "$WEB")
if jq -e --arg p "127.0.0.1:$PORT:8080" --arg d "$TMP/www" '.[0] | .state.running and .state.pid > 0 and (.network.addresses | length) == 1
        and .network.ports == [$p] and any(.mounts[]; .source == $d and .destination == "/data")
        and .restart_policy == "always" and .config.stop_signal == "SIGUSR1" and (.log_path | test("container.log$"))' <<<"$j" >/dev/null; then
    ok "inspect: running, pid, address, port, mount, policy, stop signal, log path"
else
    not_ok "inspect" "$j"
fi
out=$(S rm "$WEB" 2>&1)
if [[ $? -ne 0 && $out == *"is running"* ]]; then ok "rm refuses a running service without -f"; else not_ok "rm of a running service" "$out"; fi

# --- stop --------------------------------------------------------------------------------
check "stop" S stop "$WEB"
if [ "$(field "$WEB" .state.exit_code)" = 0 ] && S logs "$WEB" 2>/dev/null | grep -qx got-usr1; then
    ok "stop sent the service's stop signal (USR1), which ended it (exit 0, no SIGKILL)"
else
    not_ok "stop with the stop signal" "$(S inspect "$WEB")"
fi
if status_is "$WEB" exited && [ "$(field "$WEB" .state.stopped_by_user)" = true ] && [ "$(field "$WEB" .restart_count)" = 0 ]; then
    ok "a stopped --restart always service is not restarted"
else
    not_ok "no restart after stop" "$(S inspect "$WEB")"
fi
if wait_for bash -c "! kill -0 $follow"; then ok "logs -f ends when the service has stopped"; else not_ok "logs -f still running"; kill "$follow"; fi
wait "$follow" 2>/dev/null
check "rm of the stopped service" S rm "$WEB"
l=$(left "$WEB")
if [ -z "$l" ]; then ok "after rm nothing is left (state, bundle, log, network, mounts)"; else not_ok "rm leftovers" "$l"; fi
out=$(S run --image "$BB" -d --name "$WEB" -p "127.0.0.1:$PORT:8080" -v "$TMP/www:/data" -- httpd -f -p 8080 -h /data 2>&1)
if [ "$out" = "$WEB" ] && wait_for curl -sf -m 2 "http://127.0.0.1:$PORT/host.html"; then ok "the name and the port are reused"; else not_ok "reuse" "$out"; fi
# httpd as the container's pid 1 has no TERM handler, so TERM is ignored: -t 1 kills it.
check "stop -t 1 of a service ignoring TERM" S stop -t 1 "$WEB"
if [ "$(field "$WEB" .state.exit_code)" = 137 ]; then ok "after the timeout stop sent SIGKILL (exit 137)"; else not_ok "SIGKILL after the timeout" "$(S inspect "$WEB")"; fi
check "start of the stopped service" S start "$WEB"
if status_is "$WEB" running && wait_for curl -sf -m 2 "http://127.0.0.1:$PORT/host.html"; then ok "start runs a stopped service again (same name, port, volume)"; else not_ok "start of a stopped service" "$(S inspect "$WEB" 2>&1)"; fi
out=$(S start "$WEB" 2>&1)
if [[ $? -ne 0 && $out == *"running"* ]]; then ok "start of a running service is refused"; else not_ok "start of a running service" "$out"; fi
S stop -t 0 "$WEB" >/dev/null
S rm "$WEB" >/dev/null 2>&1

# --- restart policy ----------------------------------------------------------------------
mkdir -p "$TMP/count"
out=$(S run --image "$BB" -d --name "$FAIL" --restart on-failure:2 -v "$TMP/count:/c" -- \
    sh -c 'echo run >> /c/runs; exit 3' 2>&1)
if wait_for status_is "$FAIL" exited; then
    runs=$(wc -l <"$TMP/count/runs")
    if [ "$runs" = 3 ] && [ "$(field "$FAIL" .restart_count)" = 2 ] && [ "$(field "$FAIL" .state.exit_code)" = 3 ]; then
        ok "--restart on-failure:2 ran the failing command exactly three times"
    else
        not_ok "on-failure:2" "runs=$runs $(S inspect "$FAIL")"
    fi
else
    not_ok "on-failure:2 service exits" "$out $(S inspect "$FAIL" 2>&1)"
fi
S rm "$FAIL" >/dev/null

# --- --rm -d, generated names, json-file, -d -t --------------------------------------------
out=$(S run --image "$BB" -d --rm --name "$GONE" -p "127.0.0.1:$((PORT + 1)):8080" -- sh -c 'echo bye' 2>&1)
if [ "$out" = "$GONE" ] && wait_for test ! -e "$TMP/st/bundles/$GONE"; then
    l=$(left "$GONE")
    if [ -z "$l" ]; then ok "--rm -d: the monitor removed everything when the container exited"; else not_ok "--rm -d leftovers" "$l"; fi
else
    not_ok "--rm -d" "$out"
fi
GENERATED=$(S run --image "$BB" -d --restart always -- sleep 600 2>&1)
if [ -n "$GENERATED" ] && status_is "$GENERATED" running; then ok "run -d without --name prints the generated name ($GENERATED)"; else not_ok "generated name" "$GENERATED"; fi
out=$(S run --image "$BB" -d --restart always --name "$STUB" -- sh -c 'trap "echo got-term; exit 0" TERM; sleep 600 & wait' 2>&1)
kill -TERM "$(field "$STUB" .state.monitor_pid)"
if wait_for status_is "$STUB" exited && [ "$(field "$STUB" .state.exit_code)" = 0 ] && [ "$(field "$STUB" .restart_count)" = 0 ] &&
    S logs "$STUB" 2>/dev/null | grep -qx got-term; then
    ok "TERM to the monitor stops the service with its stop signal, without restart"
else
    not_ok "TERM to the monitor" "$out $(S inspect "$STUB" 2>&1)"
fi
S rm -f "$STUB" >/dev/null
out=$(S delete "$GENERATED" 2>&1)
if [[ $? -ne 0 && $out == *"monitor runs"* ]]; then ok "delete refuses a service whose monitor runs"; else not_ok "delete of a monitored service" "$out"; fi
check "delete --force of a monitored service" S delete --force "$GENERATED"
l=$(left "$GENERATED")
if [ -z "$l" ]; then ok "after delete --force nothing is left, and nothing restarted it"; else not_ok "delete --force leftovers" "$l"; fi
out=$(S run --image "$BB" -d --name "$JSON" --log-driver json-file -- sh -c 'echo "a \"quoted\" line"' 2>&1)
wait_for status_is "$JSON" exited
if jq -e 'select(.stream == "stdout") | .log == "a \"quoted\" line\n"' "$TMP/st/bundles/$JSON/service/container.log" >/dev/null &&
    [ "$(S logs "$JSON" 2>&1)" = 'a "quoted" line' ]; then
    ok "--log-driver json-file writes Docker's format, and logs reads it"
else
    not_ok "json-file" "$out $(cat "$TMP/st/bundles/$JSON/service/container.log" 2>&1)"
fi
S rm "$JSON" >/dev/null
# The config file's log keys are the defaults (a relative --config path works: the
# monitor runs in /).
printf 'log_driver = "json-file"\nlog_size = "64k"\n' >"$TMP/conf.toml"
out=$(cd "$TMP" && timeout 60 "$STOCKADE" --config conf.toml --root "$TMP/run" run --image "$BB" -d --name "$JSON" -- echo from-config 2>&1)
wait_for status_is "$JSON" exited
if jq -e 'select(.stream == "stdout") | .log == "from-config\n"' "$TMP/st/bundles/$JSON/service/container.log" >/dev/null &&
    [ "$(S inspect "$JSON" | jq -r '.[0].log_driver')" = json-file ]; then
    ok "log_driver in the config file is the default of --log-driver"
else
    not_ok "log_driver from the config file" "$out $(cat "$TMP/st/bundles/$JSON/service/container.log" 2>&1)"
fi
S rm "$JSON" >/dev/null
out=$(S run --image "$BB" -d -t --name "$STUB" -- true 2>&1)
if [[ $? -ne 0 && $out == *"-d with -t"* ]] && [ ! -e "$TMP/st/bundles/$STUB" ]; then ok "-d -t is refused before anything is made"; else not_ok "-d -t" "$out"; fi

# --- SIGKILL of the monitor ----------------------------------------------------------------
S run --image "$BB" -d --name "$KILLED" -p "127.0.0.1:$((PORT + 2)):8080" -v "$TMP/www:/data" -- httpd -f -p 8080 -h /data >/dev/null
wait_for curl -sf -m 2 "http://127.0.0.1:$((PORT + 2))/host.html"
mpid=$(field "$KILLED" .state.monitor_pid)
kill -KILL "$mpid"
if wait_for status_is "$KILLED" monitor-lost; then ok "inspect shows the lost monitor"; else not_ok "monitor-lost" "$(S inspect "$KILLED" 2>&1)"; fi
check "rm -f after SIGKILL of the monitor" S rm -f "$KILLED"
wait_for test -z "$(pids_mentioning "bundles/$KILLED")"
l=$(left "$KILLED")
if [ -z "$l" ]; then ok "after SIGKILL of the monitor and rm -f: no netns, mount, process or directory"; else not_ok "leftovers after SIGKILL" "$l"; fi
if ! curl -sf -m 2 "http://127.0.0.1:$((PORT + 2))/" >/dev/null 2>&1; then ok "its published port is closed"; else not_ok "port still open"; fi

# --- the port's rc.d script, with a stub rc.subr, against this stockade ---------------------
mkdir -p "$TMP/rc"
cat >"$TMP/rc/rc.subr" <<EOF
checkyesno() { eval "_v=\\\${\$1}"; case "\$_v" in [Yy][Ee][Ss]) return 0 ;; esac; return 1; }
load_rc_config() { . "$TMP/rc/rc.conf"; }
warn() { echo "\$name: WARNING: \$*" >&2; }
run_rc_command() { checkyesno "\$rcvar" || return 0; eval "\\\$\${1}_cmd"; }
EOF
cat >"$TMP/rc/rc.conf" <<EOF
stockade_enable=YES
stockade_containers="$RCA $RCB"
stockade_${RCA}_image=$BB
stockade_${RCA}_flags="-p 127.0.0.1:$((PORT + 3)):8080 -v $TMP/www:/data:ro -e RC_FLAG=yes --restart unless-stopped"
stockade_${RCA}_cmd="httpd -f -p 8080 -h /data"
stockade_${RCB}_image=$BB
stockade_${RCB}_cmd="sleep 1000"
stockade_stop_timeout=2
EOF
sed -e "s|/etc/rc.subr|$TMP/rc/rc.subr|" -e "s|%%PREFIX%%/bin/stockade|$STOCKADE|" \
    "$HERE/../../packaging/freebsd/files/stockade.in" >"$TMP/rc/stockade"
RC() { STOCKADE_ROOT=$TMP/run timeout 120 sh "$TMP/rc/stockade" "$@"; }
out=$(RC start 2>&1)
if [ $? -eq 0 ] && wait_for curl -sf -m 2 "http://127.0.0.1:$((PORT + 3))/host.html" && status_is "$RCB" running &&
    [ "$(field "$RCA" '.config.env | any(. == "RC_FLAG=yes")')" = true ]; then
    ok "rc.d start: both declared services run from their image, flags and command"
else
    not_ok "rc.d start" "$out" "$(S inspect "$RCA" "$RCB" 2>&1 | head -40)"
fi
out=$(RC status 2>&1)
if [ $? -eq 0 ] && [ "$out" = "$RCA: running
$RCB: running" ]; then ok "rc.d status: one line each"; else not_ok "rc.d status" "$out"; fi
ma=$(field "$RCA" .state.monitor_pid)
mb=$(field "$RCB" .state.monitor_pid)
kill -KILL "$mb"
wait_for status_is "$RCB" monitor-lost
out=$(RC start 2>&1)
if [ $? -eq 0 ] && [ "$(field "$RCA" .state.monitor_pid)" = "$ma" ] && status_is "$RCB" running &&
    [ "$(field "$RCB" .state.monitor_pid)" != "$mb" ] && [[ $out == *"$RCA is already running"* ]]; then
    ok "rc.d start again: the running one is left alone, the one whose monitor was killed is replaced"
else
    not_ok "rc.d start again" "$out" "$(RC status 2>&1)"
fi
out=$(RC stop 2>&1)
st=$?
wait_for test -z "$(pids_mentioning "bundles/$RCA")$(pids_mentioning "bundles/$RCB")"
l="$(left "$RCA")$(left "$RCB")"
if [ $st -eq 0 ] && [ -z "$l" ] && [ "$(RC status 2>&1)" = "$RCA: not created
$RCB: not created" ]; then
    ok "rc.d stop: both stopped and removed, nothing left"
else
    not_ok "rc.d stop" "$out" "$l"
fi

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
