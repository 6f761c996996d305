#!/bin/sh
# Tests of the port's rc.d script (files/stockade.in) that run on any POSIX host: `sh -n`,
# then the script itself with a stub rc.subr, a stub daemon(8) and a stub stockade that log
# what they are asked, checking that containers start in the declared order, stop in
# reverse order (SIGKILL after the timeout for one that ignores SIGTERM), that a disabled
# service does nothing, and that a bad name or a missing bundle is skipped with a warning.
# Needs pgrep/pkill with -F (FreeBSD's, or procps on Linux). Ends "N passed, N failed".
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d /tmp/stockade-rc.XXXXXX)
trap 'for f in "$WORK"/run/*.daemon.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null; done; rm -rf "$WORK"' EXIT
PASSED=0
FAILED=0
ok() { PASSED=$((PASSED + 1)); echo "ok - $1"; }
not_ok() { FAILED=$((FAILED + 1)); echo "not ok - $1"; shift; printf '#   %s\n' "$@"; }

STUB=$WORK/stub
mkdir -p "$STUB" "$WORK/run" "$WORK/log" "$WORK/bundles/web" "$WORK/bundles/db" "$WORK/elsewhere/cache"
echo '{}' >"$WORK/bundles/web/config.json"
echo '{}' >"$WORK/bundles/db/config.json"
echo '{}' >"$WORK/elsewhere/cache/config.json"
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

# daemon(8): logs the command it supervises and stands in for it with a sleep whose pid
# goes to the -P file.
cat >"$STUB/daemon" <<EOF
#!/bin/sh
pidfile=
while getopts fHo:P:t: opt; do
    case \$opt in
    P) pidfile=\$OPTARG ;;
    o) [ -d "\$(dirname "\$OPTARG")" ] || { echo "daemon: no log dir" >&2; exit 1; } ;;
    esac
done
shift \$((OPTIND - 1))
echo "daemon \$*" | sed "s|$STUB/bin/||" >>"$CALLS"
# A parent that waits reaps the stand-in when it is killed (PID 1 of a container may not).
( sleep 300 >/dev/null 2>&1 & echo \$! >"\$pidfile"; wait ) >/dev/null 2>&1 &
while [ ! -s "\$pidfile" ]; do sleep 0.1; done
EOF

# stockade: logs its arguments; `kill ID TERM` ends the stand-in unless ID is stubborn,
# `kill --all ID KILL` always does.
mkdir -p "$STUB/bin"
cat >"$STUB/bin/stockade" <<EOF
#!/bin/sh
shift 2 # --root DIR
echo "stockade \$*" >>"$CALLS"
case "\$1" in
kill)
    if [ "\$2" = --all ]; then id=\$3; else id=\$2; fi
    [ "\$3" = TERM ] && [ "\$id" = "\${STUBBORN:-}" ] && exit 0
    pkill -F "$WORK/run/\$id.daemon.pid" 2>/dev/null
    ;;
state) echo '{"status": "running"}' ;;
esac
exit 0
EOF
chmod +x "$STUB/daemon" "$STUB/bin/stockade"

SCRIPT=$WORK/stockade
sed -e "s|/etc/rc.subr|$STUB/rc.subr|" -e "s|%%PREFIX%%|$STUB|g" -e "s|/usr/sbin/daemon|$STUB/daemon|" \
    "$HERE/files/stockade.in" >"$SCRIPT"

if sh -n "$HERE/files/stockade.in"; then ok "sh -n files/stockade.in"; else not_ok "sh -n files/stockade.in"; fi
for f in "$HERE"/files/stockade-reopen-logs.in "$HERE/gen-crates.sh" "$HERE/../../scripts/freebsd/package.sh"; do
    if sh -n "$f"; then ok "sh -n ${f#"$HERE"/}"; else not_ok "sh -n $f"; fi
done
if grep -q '^# PROVIDE: stockade$' "$HERE/files/stockade.in" \
    && grep -q '^# REQUIRE: .*LOGIN' "$HERE/files/stockade.in" \
    && grep -q '^# KEYWORD: .*shutdown' "$HERE/files/stockade.in"; then
    ok "rcorder keywords: PROVIDE stockade, REQUIRE LOGIN, KEYWORD shutdown"
else
    not_ok "rcorder keywords"
fi

conf() { # conf ENABLE CONTAINERS [extra line]
    cat >"$WORK/rc.conf" <<EOF
stockade_enable="$1"
stockade_containers="$2"
stockade_bundle_dir="$WORK/bundles"
stockade_cache_bundle="$WORK/elsewhere/cache"
stockade_root="$WORK/state"
stockade_logdir="$WORK/log"
stockade_rundir="$WORK/run"
stockade_stop_timeout=1
${3:-}
EOF
}

calls() { sed "s|$WORK|W|g" "$CALLS" 2>/dev/null; }

# Disabled: nothing happens.
conf NO "web db"
: >"$CALLS"
sh "$SCRIPT" start >/dev/null 2>&1
if [ ! -s "$CALLS" ]; then ok "stockade_enable=NO: start does nothing"; else not_ok "disabled start" "$(calls)"; fi

# Start in order, with per-container bundles.
conf YES "web db cache"
: >"$CALLS"
sh "$SCRIPT" start >"$WORK/out" 2>&1
want="stockade delete --force web
daemon stockade --root W/state run --bundle W/bundles/web web
stockade delete --force db
daemon stockade --root W/state run --bundle W/bundles/db db
stockade delete --force cache
daemon stockade --root W/state run --bundle W/elsewhere/cache cache"
if [ "$(calls)" = "$want" ]; then
    ok "start: in declared order, stale state removed first, stockade_<name>_bundle honoured"
else
    not_ok "start order" "got:" "$(calls)" "want:" "$want"
fi

: >"$CALLS"
sh "$SCRIPT" start >"$WORK/out" 2>&1
if [ ! -s "$CALLS" ] && grep -q "web is already running" "$WORK/out"; then
    ok "start again: running containers are left alone"
else
    not_ok "start again" "$(calls)" "$(cat "$WORK/out")"
fi

out=$(sh "$SCRIPT" status 2>&1)
if [ "$out" = "web: running (running)
db: running (running)
cache: running (running)" ]; then ok "status lists each container"; else not_ok "status" "$out"; fi

# Stop in reverse order; db ignores SIGTERM and gets SIGKILL after the timeout.
: >"$CALLS"
STUBBORN=db sh "$SCRIPT" stop >"$WORK/out" 2>&1
want="stockade kill cache TERM
stockade delete --force cache
stockade kill db TERM
stockade kill --all db KILL
stockade delete --force db
stockade kill web TERM
stockade delete --force web"
if [ "$(calls)" = "$want" ]; then
    ok "stop: reverse order; SIGKILL after stockade_stop_timeout for one that ignores SIGTERM"
else
    not_ok "stop order" "got:" "$(calls)" "want:" "$want"
fi
if grep -q "db did not stop within 1s" "$WORK/out" && [ -z "$(ls "$WORK/run")" ]; then
    ok "stop: the SIGKILL is announced and every pid file is gone"
else
    not_ok "stop cleanup" "$(cat "$WORK/out")" "$(ls "$WORK/run")"
fi

# Bad names and missing bundles are skipped with a warning; the others still start.
conf YES "we-b nobundle db"
: >"$CALLS"
sh "$SCRIPT" start >"$WORK/out" 2>&1
if [ "$(calls)" = "stockade delete --force db
daemon stockade --root W/state run --bundle W/bundles/db db" ] \
    && grep -q "container name 'we-b' is not letters" "$WORK/out" \
    && grep -q "nobundle: no .*config.json; skipped" "$WORK/out"; then
    ok "a bad name and a missing bundle are skipped with a warning"
else
    not_ok "bad names" "$(calls)" "$(cat "$WORK/out")"
fi
sh "$SCRIPT" stop >/dev/null 2>&1

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
