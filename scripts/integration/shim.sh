#!/usr/bin/env bash
# containerd-shim-stockade-v1 integration tests: a private containerd (Debian's 1.6) runs
# containers through stockade's own shim v2, runtime io.containerd.stockade.v1, which calls
# stockade's runtime library in-process. The shim is found on containerd's PATH (a private
# bin directory with a link to the built binary); its state root is private too
# (STOCKADE_SHIM_ROOT, which containerd passes on to its shims).
#
#   SHIM=target/debug/containerd-shim-stockade-v1 STOCKADE=target/debug/stockade scripts/integration/shim.sh
#
# Needs root, containerd and ctr, busybox-static, python3, util-linux (script, findmnt).
# Ends with "N passed, N failed"; exits non-zero if anything failed. containerd, the shims,
# every container, mount and temporary file go away on exit.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tap.sh
source "$(dirname "${BASH_SOURCE[0]}")/tap.sh"
stockade_binary shim.sh
need_root shim.sh
need_tools shim.sh containerd ctr python3 script findmnt timeout sha256sum
SHIM=${SHIM:-$(dirname "$STOCKADE")/containerd-shim-stockade-v1}
[ -x "$SHIM" ] || { echo "shim.sh: no shim binary at $SHIM (cargo build -p stockade-shim)" >&2; exit 2; }
SHIM=$(cd "$(dirname "$SHIM")" && pwd)/$(basename "$SHIM")

WORK=$(mktemp -d /tmp/stockade-shim.XXXXXX)
SOCK=$WORK/containerd.sock
NS=stockade-shim-test
SHIM_ROOT=$WORK/shim-root
IMAGE=localhost/stockade/busybox:latest
RUNTIME=io.containerd.stockade.v1
IDS=(s-hello s-exit s-stdin s-tty s-tty2 s-d s-all s-log s-file s-oom s-dead) # every container id used below
# shellcheck source=ctrlib.sh
source "$HERE/ctrlib.sh"
# shellcheck source=ctrcases.sh
source "$HERE/ctrcases.sh"
ctr_cleanup_on_exit "$SHIM_ROOT"

RUN_OPTS=(--runtime "$RUNTIME" --fifo-dir "$WORK/fifo")
# What the shims logged (containerd copies each shim's log FIFO into its own log).
shim_logs() { grep -iE 'shim|stockade' "$WORK/containerd.log" 2>/dev/null | tail -n 12; }
# alive PID: the process exists and is not a zombie (a killed shim's orphans are
# reparented to whatever reaper is above this script, which may not wait for them).
alive() { [ -e "/proc/$1/stat" ] && [ "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" != Z ]; }
# The pid of the shim serving container ID (its command line names the id and our socket).
shim_pid() {
    local d
    for d in /proc/[0-9]*; do
        { tr '\0' ' ' <"$d/cmdline"; } 2>/dev/null | grep -qF -- "containerd-shim-stockade-v1 -namespace $NS -id $1 -address $SOCK" \
            && { echo "${d#/proc/}"; return; }
    done
}

# ---------------------------------------------------------------------------------------
# containerd with a private configuration, state, socket, and the shim on its PATH
# ---------------------------------------------------------------------------------------
mkdir -p "$WORK/bin" "$SHIM_ROOT"
ln -s "$SHIM" "$WORK/bin/containerd-shim-stockade-v1"
start_containerd PATH="$WORK/bin:$PATH" STOCKADE_SHIM_ROOT="$SHIM_ROOT"

STOCKADE=$STOCKADE "$HERE/busybox-image.sh" "$WORK/busybox-oci.tar" "$IMAGE" \
    || { echo "shim.sh: building the busybox image failed" >&2; exit 2; }
if ! out=$(C image import "$WORK/busybox-oci.tar" 2>&1) || ! C image ls -q | grep -qx "$IMAGE"; then
    not_ok "ctr image import of the busybox OCI archive" "$out"
    echo "$PASSED passed, $FAILED failed"
    exit 1
fi

# ---------------------------------------------------------------------------------------
# ctr run in the foreground
# ---------------------------------------------------------------------------------------
case_echo s-hello
case_exit_status s-exit
case_stdin s-stdin

# ---------------------------------------------------------------------------------------
# A terminal: ctr run -t
# ---------------------------------------------------------------------------------------
CTR_T="$PTY_CTR run -t --rm --runtime $RUNTIME --fifo-dir '$WORK/fifo' '$IMAGE'"
case_run_tty s-tty s-tty2

# ---------------------------------------------------------------------------------------
# A detached container: task ls, ps, exec, metrics, update, kill, delete
# ---------------------------------------------------------------------------------------
LOOP='trap "echo got TERM; exit 0" TERM; echo started; while :; do sleep 1; done'
# A memory limit gives the container cgroups of its own (what task metrics reads).
out=$(C run -d --memory-limit 134217728 "${RUN_OPTS[@]}" "$IMAGE" s-d sh -c "$LOOP" 2>&1)
rc=$?
if [ "$rc" -eq 0 ] && wait_status s-d RUNNING; then
    ok "ctr run -d, and ctr task ls shows the task RUNNING"
else
    not_ok "ctr run -d then task ls RUNNING (exit $rc)" "$out
$(C task ls 2>&1)
$(shim_logs)"
fi
pid=$(C task ls 2>/dev/null | awk '$1 == "s-d" { print $2 }')
state=$("$STOCKADE" --root "$SHIM_ROOT/$NS" state s-d 2>&1)
if grep -q '"status": *"running"' <<<"$state" && grep -q "\"pid\": *$pid\b" <<<"$state"; then
    ok "the shim keeps stockade's state: stockade state agrees (pid $pid)"
else
    not_ok "stockade state under the shim's root" "$state"
fi
spid=$(shim_pid s-d)
if [ -n "$spid" ] && [ "$(awk '{ print $4 }' "/proc/$pid/stat" 2>/dev/null)" = "$spid" ]; then
    ok "the container's init is the shim's own child (in-process runtime, no runc between)"
else
    not_ok "the init's parent is the shim" "shim $spid; init $pid parent $(awk '{ print $4 }' "/proc/$pid/stat" 2>&1)"
fi

case_exec s-d e1
case_exec_tty s-d e2
case_ps s-d "$pid"

out=$(C task metrics s-d 2>&1)
if grep -qE 'memory\.usage_in_bytes +[1-9]' <<<"$out" && grep -qE 'memory\.limit_in_bytes +134217728 *$' <<<"$out"; then
    ok "ctr task metrics shows the container's own cgroup figures (memory usage and its 128 MiB limit)"
else
    not_ok "ctr task metrics" "$out"
fi

case_kill_term s-d
out=$(C task delete s-d 2>&1; C container rm s-d 2>&1)
if ! "$STOCKADE" --root "$SHIM_ROOT/$NS" list -q 2>/dev/null | grep -qx s-d && [ -z "$(C task ls -q 2>/dev/null | grep -x s-d)" ]; then
    ok "ctr task delete removes the container from stockade's state"
else
    not_ok "ctr task delete" "$out"
fi

# kill --all: a process that ignores TERM in the background of one that exits on it.
out=$(C run -d "${RUN_OPTS[@]}" "$IMAGE" s-all sh -c 'sh -c "trap \"\" TERM; sleep 1000" & while :; do sleep 1; done' 2>&1)
wait_status s-all RUNNING
out=$(C task kill --all --signal KILL s-all 2>&1)
if wait_status s-all STOPPED && [ "$(C task ls 2>/dev/null | awk '$1 == "s-all" { print $3 }')" = STOPPED ]; then
    ok "ctr task kill --all --signal KILL stops every process of the task"
else
    not_ok "ctr task kill --all" "$out
$(C task ls 2>&1)"
fi
C task delete s-all >/dev/null 2>&1
C container rm s-all >/dev/null 2>&1

# ---------------------------------------------------------------------------------------
# Log URIs: binary:// (containerd's logging-binary protocol) and file://
# ---------------------------------------------------------------------------------------
mkdir -p "$WORK/logs"
cat >"$WORK/logger.sh" <<'EOF'
#!/bin/sh
# A logging binary: fd 3 is the container's stdout, fd 4 its stderr, fd 5 the ready signal.
exec 5>&-
/bin/cat <&3 >"$2/$CONTAINER_NAMESPACE.$CONTAINER_ID.out" &
/bin/cat <&4 >"$2/$CONTAINER_NAMESPACE.$CONTAINER_ID.err"
wait
EOF
chmod +x "$WORK/logger.sh"
out=$(C run --rm "${RUN_OPTS[@]}" --log-uri "binary://$WORK/logger.sh?dir=$WORK/logs" "$IMAGE" s-log \
    sh -c 'echo to-out; echo to-err >&2; exit 4' 2>&1)
rc=$?
lo=$WORK/logs/$NS.s-log.out le=$WORK/logs/$NS.s-log.err
for _ in $(seq 1 100); do
    [ "$(cat "$lo" 2>/dev/null)" = to-out ] && [ "$(cat "$le" 2>/dev/null)" = to-err ] && break
    sleep 0.1
done
if [ "$rc" -eq 4 ] && [ "$(cat "$lo" 2>/dev/null)" = to-out ] && [ "$(cat "$le" 2>/dev/null)" = to-err ]; then
    ok "ctr run --log-uri binary://: the logging program gets stdout (fd 3), stderr (fd 4), the ids in its environment and its arguments"
else
    not_ok "binary:// log URI (exit $rc)" "$out
stdout log: $(cat "$lo" 2>&1)
stderr log: $(cat "$le" 2>&1)
$(shim_logs)"
fi
out=$(C run --rm "${RUN_OPTS[@]}" --log-uri "file://$WORK/logs/s-file.log" "$IMAGE" s-file \
    sh -c 'echo file-out; echo file-err >&2' 2>&1)
rc=$?
if [ "$rc" -eq 0 ] && [ "$(sort "$WORK/logs/s-file.log" 2>/dev/null | tr '\n' ' ')" = "file-err file-out " ]; then
    ok "ctr run --log-uri file://: stdout and stderr are appended to the file"
else
    not_ok "file:// log URI (exit $rc)" "$out
$(cat "$WORK/logs/s-file.log" 2>&1)"
fi

# ---------------------------------------------------------------------------------------
# Out of memory: the shim watches the container's memory cgroup and publishes TaskOOM
# ---------------------------------------------------------------------------------------
C events >"$WORK/events.log" 2>&1 &
EVENTS_PID=$!
sleep 0.5 # ctr events subscribes after it connects; nothing to wait on but its socket
out=$(C run --rm "${RUN_OPTS[@]}" --memory-limit 16777216 "$IMAGE" s-oom \
    dd if=/dev/zero of=/dev/null bs=64M count=1 2>&1)
rc=$?
for _ in $(seq 1 50); do
    grep -q '/tasks/oom.*"s-oom"' "$WORK/events.log" && break
    sleep 0.1
done
kill "$EVENTS_PID" 2>/dev/null
wait "$EVENTS_PID" 2>/dev/null
if [ "$rc" -eq 137 ] && grep -q '/tasks/oom.*"s-oom"' "$WORK/events.log"; then
    ok "a container past its 16 MiB memory limit is killed (137) and containerd gets /tasks/oom for it"
else
    not_ok "TaskOOM (exit $rc)" "$out
$(grep -E 's-oom' "$WORK/events.log" | head -10)
$(shim_logs)"
fi

# ---------------------------------------------------------------------------------------
# A killed shim: containerd runs `shim delete`, which cleans up the container
# ---------------------------------------------------------------------------------------
C run -d "${RUN_OPTS[@]}" "$IMAGE" s-dead sleep 1000 >/dev/null 2>&1
wait_status s-dead RUNNING
dead_init=$(C task ls 2>/dev/null | awk '$1 == "s-dead" { print $2 }')
spid=$(shim_pid s-dead)
[ -n "$spid" ] && kill -KILL "$spid"
for _ in $(seq 1 100); do
    [ "$(task_status s-dead)" != RUNNING ] && break
    sleep 0.1
done
C task delete s-dead >/dev/null 2>&1
C container rm s-dead >/dev/null 2>&1
for _ in $(seq 1 50); do
    "$STOCKADE" --root "$SHIM_ROOT/$NS" list -q 2>/dev/null | grep -qx s-dead || break
    sleep 0.1
done
if [ -n "$spid" ] && ! "$STOCKADE" --root "$SHIM_ROOT/$NS" list -q 2>/dev/null | grep -qx s-dead \
    && ! alive "$dead_init"; then
    ok "a SIGKILLed shim's container is cleaned by the shim's delete (state gone, init $dead_init gone)"
else
    not_ok "cleanup after a killed shim" "shim $spid init $dead_init
$("$STOCKADE" --root "$SHIM_ROOT/$NS" list 2>&1)
$(shim_logs)"
fi

left=$(C container ls -q 2>&1; "$STOCKADE" --root "$SHIM_ROOT/$NS" list -q 2>&1)
if [ -z "$left" ]; then ok "after every test no container and no stockade state is left"; else not_ok "nothing left at the end" "$left"; fi

[ -n "${SHIM_DEBUG:-}" ] && cat "$WORK/containerd.log" >&2
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
