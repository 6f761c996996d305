#!/usr/bin/env bash
# containerd integration tests: a private containerd (Debian's containerd 1.6) drives
# stockade through its io.containerd.runc.v2 shim, the way it drives runc. `ctr run
# --runc-binary <stockade> --runc-root <dir>` sets the shim's BinaryName and Root options
# for each container, so nothing in the system's containerd configuration is touched.
#
#   STOCKADE=target/debug/stockade scripts/integration/containerd.sh
#
# Needs root, containerd (with ctr and containerd-shim-runc-v2), busybox-static, python3,
# util-linux (script, findmnt): scripts/setup.sh installs them. The busybox image is built
# here (scripts/integration/busybox-image.sh); nothing is pulled. Ends with
# "N passed, N failed"; exits non-zero if anything failed. containerd, its shims, every
# container, mount and temporary file go away on exit.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tap.sh
source "$(dirname "${BASH_SOURCE[0]}")/tap.sh"
stockade_binary containerd.sh
need_root containerd.sh
need_tools containerd.sh containerd ctr containerd-shim-runc-v2 python3 script findmnt timeout

WORK=$(mktemp -d /tmp/stockade-containerd.XXXXXX)
SOCK=$WORK/containerd.sock
NS=stockade-test
RUNTIME_ROOT=$WORK/runtime-root # the shim runs stockade with --root $RUNTIME_ROOT/$NS
IMAGE=localhost/stockade/busybox:latest
IDS=(t-hello t-exit t-env t-stdin t-mnt t-d t-k t-lim t-tty t-tty2) # every container id used below
# shellcheck source=ctrlib.sh
source "$HERE/ctrlib.sh"
# shellcheck source=ctrcases.sh
source "$HERE/ctrcases.sh"
ctr_cleanup_on_exit "$RUNTIME_ROOT"

# ctr's I/O fifos go to --fifo-dir (default /run/containerd/fifo).
RUN_OPTS=(--runtime io.containerd.runc.v2 --runc-binary "$STOCKADE" --runc-root "$RUNTIME_ROOT" --fifo-dir "$WORK/fifo")
# What stockade logged for the shim: the last lines of every bundle's log.json.
shim_logs() { find "$WORK/state" -name log.json -exec tail -n 5 {} + 2>/dev/null | tail -n 15; }

# ---------------------------------------------------------------------------------------
# containerd with a private configuration, state and socket
# ---------------------------------------------------------------------------------------
mkdir -p "$RUNTIME_ROOT"
start_containerd

# ---------------------------------------------------------------------------------------
# The busybox image: built here, imported from an OCI archive
# ---------------------------------------------------------------------------------------
STOCKADE=$STOCKADE "$HERE/busybox-image.sh" "$WORK/busybox-oci.tar" "$IMAGE" \
    || { echo "containerd.sh: building the busybox image failed" >&2; exit 2; }
if out=$(C image import "$WORK/busybox-oci.tar" 2>&1) && C image ls -q | grep -qx "$IMAGE"; then
    ok "ctr image import of the busybox OCI archive"
else
    not_ok "ctr image import of the busybox OCI archive" "$out"
    echo "$PASSED passed, $FAILED failed"
    exit 1
fi

# ---------------------------------------------------------------------------------------
# ctr run in the foreground
# ---------------------------------------------------------------------------------------
case_echo t-hello
case_exit_status t-exit

out=$(C run --rm "${RUN_OPTS[@]}" "$IMAGE" t-env sh -c 'echo "$PATH $(id -u) $$"; ls /proc/self >/dev/null && echo proc' 2>&1)
if [ "$out" = "/bin 0 1
proc" ]; then
    ok "the process gets the image's env, uid 0, PID 1 and /proc"
else
    not_ok "process environment inside ctr run" "$out"
fi

case_stdin t-stdin

mkdir -p "$WORK/volume"
echo from-host >"$WORK/volume/in"
out=$(C run --rm "${RUN_OPTS[@]}" --read-only --mount "type=bind,src=$WORK/volume,dst=/data,options=rbind:rw" \
    --env GREETING=hi --cwd /data "$IMAGE" t-mnt sh -c 'echo "$GREETING $(pwd) $(cat in)"; echo from-container >out; touch /x 2>/dev/null || echo read-only' 2>&1)
if [ "$out" = "hi /data from-host
read-only" ] && [ "$(cat "$WORK/volume/out" 2>&1)" = from-container ]; then
    ok "ctr run --mount (a writable bind), --read-only, --env, --cwd"
else
    not_ok "ctr run --mount, --read-only, --env, --cwd" "$out"
fi

# Confinement under containerd's defaults: its default capability set (CHOWN, DAC_OVERRIDE,
# FSETID, FOWNER, MKNOD, NET_RAW, SETGID, SETUID, SETFCAP, SETPCAP, NET_BIND_SERVICE,
# SYS_CHROOT, KILL, AUDIT_WRITE = a80425fb) and, with --seccomp, its default profile, which
# refuses unshare without CAP_SYS_ADMIN.
out=$(C run --rm --seccomp "${RUN_OPTS[@]}" "$IMAGE" t-confine sh -c \
    'grep -E "^(CapEff|CapBnd|Seccomp):" /proc/self/status; unshare -m true 2>/dev/null && echo unshare-allowed || echo unshare-refused' 2>&1)
if [ "$out" = "$(printf 'CapEff:\t00000000a80425fb\nCapBnd:\t00000000a80425fb\nSeccomp:\t2\nunshare-refused')" ]; then
    ok "ctr run --seccomp: containerd's default capabilities and seccomp profile hold (CapEff, Seccomp: 2)"
else
    not_ok "ctr run --seccomp: default capabilities and seccomp profile" "$out
$(shim_logs)"
fi

left=$(C container ls -q 2>&1; ls -A "$RUNTIME_ROOT/$NS" 2>&1)
if [ -z "$left" ]; then ok "ctr run --rm leaves no container and no runtime state"; else not_ok "ctr run --rm leaves nothing behind" "$left"; fi

# ---------------------------------------------------------------------------------------
# A detached container: task ls, exec, kill, delete, container rm
# ---------------------------------------------------------------------------------------
LOOP='trap "echo got TERM; exit 0" TERM; echo started; while :; do sleep 1; done'
out=$(C run -d "${RUN_OPTS[@]}" "$IMAGE" t-d sh -c "$LOOP" 2>&1)
rc=$?
if [ "$rc" -eq 0 ] && wait_status t-d RUNNING; then
    ok "ctr run -d, and ctr task ls shows the task RUNNING"
else
    not_ok "ctr run -d then task ls RUNNING (exit $rc)" "$out
$(C task ls 2>&1)
$(shim_logs)"
fi

pid=$(C task ls 2>/dev/null | awk '$1 == "t-d" { print $2 }')
state=$("$STOCKADE" --root "$RUNTIME_ROOT/$NS" state t-d 2>&1)
if grep -q '"status": *"running"' <<<"$state" && grep -q "\"pid\": *$pid\b" <<<"$state"; then
    ok "the shim used stockade: stockade state under the runtime root agrees (pid $pid)"
else
    not_ok "stockade state under --runc-root/$NS" "$state"
fi

case_exec t-d e1

out=$(C task exec --fifo-dir "$WORK/fifo" --exec-id e2 t-d sh -c 'ps -o pid,args | grep -c "while"' 2>&1)
rc=$?
if [ "$rc" -eq 0 ] && [ "$out" -ge 1 ] 2>/dev/null; then
    ok "a second exec (new exec id) sees the init's process tree"
else
    not_ok "a second ctr task exec (exit $rc)" "$out"
fi

out=$( (sleep 2; printf 'piped\n') | C task exec --fifo-dir "$WORK/fifo" --exec-id e3 t-d cat 2>&1)
if [ "$out" = piped ]; then ok "ctr task exec passes stdin"; else not_ok "ctr task exec passes stdin" "$out"; fi

case_ps t-d "$pid"
case_exec_tty t-d e4
case_kill_term t-d

out=$(C task delete t-d 2>&1)
rc=$?
if [ "$rc" -eq 0 ] && ! C task ls -q 2>/dev/null | grep -qx t-d; then
    ok "ctr task delete"
else
    not_ok "ctr task delete (exit $rc)" "$out"
fi

out=$(C container rm t-d 2>&1)
rc=$?
if [ "$rc" -eq 0 ] && [ -z "$(C container ls -q 2>&1)" ]; then ok "ctr container rm"; else not_ok "ctr container rm (exit $rc)" "$out"; fi

left=$(ls -A "$RUNTIME_ROOT/$NS" 2>&1)
if [ -z "$left" ]; then ok "nothing is left under the runtime root"; else not_ok "nothing is left under the runtime root" "$left"; fi

# SIGKILL to a process that ignores TERM (sleep as PID 1).
C run -d "${RUN_OPTS[@]}" "$IMAGE" t-k sleep 1000 >/dev/null 2>&1
wait_status t-k RUNNING
out=$(C task kill -s SIGKILL t-k 2>&1)
if wait_status t-k STOPPED && out=$(C task delete t-k 2>&1 && C container rm t-k 2>&1) \
    && [ -z "$(C container ls -q 2>&1; ls -A "$RUNTIME_ROOT/$NS" 2>&1)" ]; then
    ok "ctr task kill -s SIGKILL, task delete and container rm leave nothing"
else
    not_ok "SIGKILL then delete" "$out
$(C task ls 2>&1)"
fi

# Resource limits: ctr's --memory-limit and --cpus arrive as linux.resources with the
# cgroupsPath /<namespace>/<id>, and stockade enforces them in that cgroup.
C run -d "${RUN_OPTS[@]}" --memory-limit 67108864 --cpus 0.5 "$IMAGE" t-lim sleep 1000 >/dev/null 2>&1
wait_status t-lim RUNNING
lim_pid=$(C task ls 2>/dev/null | awk '$1 == "t-lim" { print $2 }')
memcg=$(cgroup_dir "$lim_pid" memory)
cpucg=$(cgroup_dir "$lim_pid" cpu)
mem=$(cgroup_limit "$memcg" memory.limit_in_bytes memory.max)
quota=$(cgroup_limit "$cpucg" cpu.cfs_quota_us cpu.max)
if [[ $memcg == */$NS/t-lim ]] && [ "$mem" = 67108864 ] && [ "$quota" = 50000 ]; then
    ok "ctr run --memory-limit --cpus: enforced in the cgroup at the cgroupsPath ctr gives"
else
    not_ok "ctr run --memory-limit --cpus" "pid=$lim_pid memory=$memcg:$mem cpu=$cpucg:$quota"
fi
C task kill -s SIGKILL t-lim >/dev/null 2>&1
wait_status t-lim STOPPED
C task delete t-lim >/dev/null 2>&1
C container rm t-lim >/dev/null 2>&1
if [ -n "$memcg" ] && [ ! -e "$memcg" ] && [ ! -e "$cpucg" ]; then
    ok "ctr task delete removes the container's cgroups"
else
    not_ok "ctr task delete removes the container's cgroups" "$memcg $cpucg"
fi

# ---------------------------------------------------------------------------------------
# A terminal: ctr run -t (console socket), with ctr itself on a pty
# ---------------------------------------------------------------------------------------
CTR_T="$PTY_CTR run -t --rm --runtime io.containerd.runc.v2 --runc-binary '$STOCKADE' --runc-root '$RUNTIME_ROOT' --fifo-dir '$WORK/fifo' '$IMAGE'"
case_run_tty t-tty t-tty2

left=$(C container ls -q 2>&1; ls -A "$RUNTIME_ROOT/$NS" 2>&1)
if [ -z "$left" ]; then ok "after every test no container and no runtime state is left"; else not_ok "nothing left at the end" "$left"; fi

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
