#!/bin/sh
# Tests of the port's rc.d script (files/stockade.in) that run on any POSIX host: `sh -n`,
# then the script itself with a stub rc.subr and a stub stockade that logs what it is
# asked and keeps each container's status in a file, checking the exact commands: the
# containers start in the declared order with `run --image IMAGE -d --name NAME FLAGS
# [-- CMD]`, a leftover is removed first, a running one is left alone, they stop in
# reverse order with `stop` then `rm`, `status` reports each, a disabled service does
# nothing, and a bad name or a missing image is skipped with a warning.
# Ends "N passed, N failed".
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d /tmp/stockade-rc.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
PASSED=0
FAILED=0
ok() { PASSED=$((PASSED + 1)); echo "ok - $1"; }
not_ok() { FAILED=$((FAILED + 1)); echo "not ok - $1"; shift; printf '#   %s\n' "$@"; }

STUB=$WORK/stub
STATE=$WORK/state
mkdir -p "$STUB/bin" "$STATE"
CALLS=$WORK/calls

cat >"$STUB/rc.subr" <<EOF
checkyesno() { eval "_v=\\\${\$1}"; case "\$_v" in [Yy][Ee][Ss]|[Tt][Rr][Uu][Ee]|[Oo][Nn]|1) return 0 ;; esac; return 1; }
load_rc_config() { . "$WORK/rc.conf"; }
warn() { echo "\$name: WARNING: \$*" >&2; }
run_rc_command() {
    checkyesno "\$rcvar" || return 0
    case "\$1" in
    start) eval "\$start_cmd" ;;
    stop) eval "\$stop_cmd" ;;
    status) eval "\$status_cmd" ;;
    *) echo "usage" >&2; return 1 ;;
    esac
}
EOF

# stockade: logs its arguments (one line, words separated by '|' so that splitting shows);
# a container's status is the file $STATE/NAME. `run` fails for the image "broken".
cat >"$STUB/bin/stockade" <<EOF
#!/bin/sh
line=stockade
for a in "\$@"; do line="\$line|\$a"; done
echo "\$line" >>"$CALLS"
[ "\$1" = --config ] && shift 2
case "\$1" in
inspect)
    [ -f "$STATE/\$2" ] || { echo "stockade: error: no container named \"\$2\"" >&2; exit 1; }
    printf '[\n  {\n    "id": "%s",\n    "state": {\n      "status": "%s",\n      "running": true\n    }\n  }\n]\n' "\$2" "\$(cat "$STATE/\$2")"
    ;;
run)
    [ "\$3" = broken ] && { echo "stockade: error: no image broken" >&2; exit 1; }
    echo running >"$STATE/\$6"
    echo "\$6"
    ;;
stop)
    eval "id=\\\${\$#}"
    echo exited >"$STATE/\$id"
    ;;
rm)
    if [ "\$2" = -f ]; then rm -f "$STATE/\$3"; exit 0; fi
    [ "\$(cat "$STATE/\$2")" = running ] && { echo "stockade: error: running" >&2; exit 1; }
    rm -f "$STATE/\$2"
    ;;
*) echo "stub: unexpected \$1" >&2; exit 2 ;;
esac
exit 0
EOF
chmod +x "$STUB/bin/stockade"

SCRIPT=$WORK/stockade
sed -e "s|/etc/rc.subr|$STUB/rc.subr|" -e "s|%%PREFIX%%|$STUB|g" \
    "$HERE/files/stockade.in" >"$SCRIPT"

if sh -n "$HERE/files/stockade.in"; then ok "sh -n files/stockade.in"; else not_ok "sh -n files/stockade.in"; fi
for f in "$HERE/gen-crates.sh" "$HERE/../../scripts/freebsd/package.sh"; do
    if sh -n "$f"; then ok "sh -n ${f#"$HERE"/}"; else not_ok "sh -n $f"; fi
done
if grep -q '^# PROVIDE: stockade$' "$HERE/files/stockade.in" \
    && grep -q '^# REQUIRE: .*LOGIN' "$HERE/files/stockade.in" \
    && grep -q '^# KEYWORD: .*shutdown' "$HERE/files/stockade.in"; then
    ok "rcorder keywords: PROVIDE stockade, REQUIRE LOGIN, KEYWORD shutdown"
else
    not_ok "rcorder keywords"
fi

conf() { # conf ENABLE CONTAINERS [extra lines]
    cat >"$WORK/rc.conf" <<EOF
stockade_enable="$1"
stockade_containers="$2"
stockade_web_image="localhost/web:1"
stockade_web_flags="-p 8080:80 -v /srv/*:/data:ro --restart unless-stopped"
stockade_db_image="db"
stockade_cache_image="docker.io/library/memcached:1.6"
stockade_cache_cmd="ls -l /e?c"
${3:-}
EOF
}

calls() { cat "$CALLS" 2>/dev/null; }
start_calls="stockade|inspect|web
stockade|run|--image|localhost/web:1|-d|--name|web|-p|8080:80|-v|/srv/*:/data:ro|--restart|unless-stopped
stockade|inspect|db
stockade|run|--image|db|-d|--name|db
stockade|inspect|cache
stockade|run|--image|docker.io/library/memcached:1.6|-d|--name|cache|--|ls|-l|/e?c"

# Disabled: nothing happens.
conf NO "web db"
: >"$CALLS"
sh "$SCRIPT" start >/dev/null 2>&1
if [ ! -s "$CALLS" ]; then ok "stockade_enable=NO: start does nothing"; else not_ok "disabled start" "$(calls)"; fi

# Start in order, each from its definition.
conf YES "web db cache"
: >"$CALLS"
sh "$SCRIPT" start >"$WORK/out" 2>&1
st=$?
if [ "$(calls)" = "$start_calls" ] && [ "$st" -eq 0 ]; then
    ok "start: in declared order, run --image IMAGE -d --name NAME, _flags split but not globbed, _cmd after --"
else
    not_ok "start order (exit $st)" "got:" "$(calls)" "want:" "$start_calls" "$(cat "$WORK/out")"
fi

: >"$CALLS"
sh "$SCRIPT" start >"$WORK/out" 2>&1
if [ "$(calls)" = "stockade|inspect|web
stockade|inspect|db
stockade|inspect|cache" ] && grep -q "web is already running" "$WORK/out"; then
    ok "start again: running containers are left alone"
else
    not_ok "start again" "$(calls)" "$(cat "$WORK/out")"
fi

out=$(sh "$SCRIPT" status 2>&1)
st=$?
if [ "$out" = "web: running
db: running
cache: running" ] && [ "$st" -eq 0 ]; then ok "status lists each container"; else not_ok "status (exit $st)" "$out"; fi

# Stop in reverse order: stop, then rm.
: >"$CALLS"
sh "$SCRIPT" stop >"$WORK/out" 2>&1
st=$?
want="stockade|inspect|cache
stockade|stop|cache
stockade|rm|cache
stockade|inspect|db
stockade|stop|db
stockade|rm|db
stockade|inspect|web
stockade|stop|web
stockade|rm|web"
if [ "$(calls)" = "$want" ] && [ "$st" -eq 0 ] && [ -z "$(ls "$STATE")" ]; then
    ok "stop: reverse order, stop then rm; nothing left"
else
    not_ok "stop order (exit $st)" "got:" "$(calls)" "want:" "$want" "$(cat "$WORK/out")" "$(ls "$STATE")"
fi

out=$(sh "$SCRIPT" status 2>&1)
st=$?
if [ "$out" = "web: not created
db: not created
cache: not created" ] && [ "$st" -ne 0 ]; then ok "status after stop: not created, and it fails"; else not_ok "status after stop (exit $st)" "$out"; fi

# A leftover (a power cut: its monitor is gone) is removed before the run; the config
# file and the stop timeout are passed on.
conf YES "web db" "stockade_config=/etc/alt.conf
stockade_stop_timeout=3"
echo monitor-lost >"$STATE/web"
: >"$CALLS"
sh "$SCRIPT" start >"$WORK/out" 2>&1
sh "$SCRIPT" stop >>"$WORK/out" 2>&1
want="stockade|--config|/etc/alt.conf|inspect|web
stockade|--config|/etc/alt.conf|rm|-f|web
stockade|--config|/etc/alt.conf|run|--image|localhost/web:1|-d|--name|web|-p|8080:80|-v|/srv/*:/data:ro|--restart|unless-stopped
stockade|--config|/etc/alt.conf|inspect|db
stockade|--config|/etc/alt.conf|run|--image|db|-d|--name|db
stockade|--config|/etc/alt.conf|inspect|db
stockade|--config|/etc/alt.conf|stop|-t|3|db
stockade|--config|/etc/alt.conf|rm|db
stockade|--config|/etc/alt.conf|inspect|web
stockade|--config|/etc/alt.conf|stop|-t|3|web
stockade|--config|/etc/alt.conf|rm|web"
if [ "$(calls)" = "$want" ]; then
    ok "a leftover is rm -f'd first; stockade_config and stockade_stop_timeout are passed"
else
    not_ok "leftover" "got:" "$(calls)" "want:" "$want" "$(cat "$WORK/out")"
fi

# Bad names, a missing image and a failing run are reported; the others still start,
# and start fails.
conf YES "we-b noimage bad db" 'stockade_bad_image="broken"'
: >"$CALLS"
sh "$SCRIPT" start >"$WORK/out" 2>&1
st=$?
if [ "$(calls)" = "stockade|inspect|bad
stockade|run|--image|broken|-d|--name|bad
stockade|inspect|db
stockade|run|--image|db|-d|--name|db" ] && [ "$st" -ne 0 ] \
    && grep -q "container name 'we-b' is not letters" "$WORK/out" \
    && grep -q "noimage: stockade_noimage_image is not set; skipped" "$WORK/out" \
    && grep -q "bad: stockade run failed (exit 1)" "$WORK/out"; then
    ok "a bad name, a missing image and a failed run are reported; the rest start"
else
    not_ok "bad definitions (exit $st)" "$(calls)" "$(cat "$WORK/out")"
fi
sh "$SCRIPT" stop >/dev/null 2>&1

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
