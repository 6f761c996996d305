# A private containerd (Debian's 1.6) for the scripts that drive stockade through ctr:
# containerd.sh (containerd's runc v2 shim calling stockade) and shim.sh (stockade's own
# shim). Source it after setting WORK (a fresh directory), SOCK (containerd's socket in it),
# NS (the ctr namespace) and IDS (every container id the script uses); then call
# `ctr_cleanup_on_exit STATE_ROOT` and `start_containerd [VAR=VALUE…]`.
# shellcheck shell=bash

CONTAINERD_PID=
# containerd 1.6's shims put their sockets in /run/containerd/s whatever the config says
# (each shim removes its own); the directories go too if this run made them.
HAD_RUN_CONTAINERD=$(ls -d /run/containerd 2>/dev/null)
HAD_NS_CGROUP=$(ls -d /sys/fs/cgroup/*/"$NS" /sys/fs/cgroup/"$NS" 2>/dev/null)

# ctr_cleanup STATE_ROOT: every container stockade keeps under STATE_ROOT/$NS, containerd,
# whatever still mentions $WORK, its mounts, the namespace cgroup, the shims' sockets, $WORK.
ctr_cleanup() {
    local root=$1 id p m
    # Containers first (through stockade itself), so no shim waits on a live process.
    if [ -d "$root/$NS" ]; then
        for id in $("$STOCKADE" --root "$root/$NS" list -q 2>/dev/null); do
            "$STOCKADE" --root "$root/$NS" delete --force "$id" >/dev/null 2>&1
        done
    fi
    if [ -n "$CONTAINERD_PID" ]; then
        kill "$CONTAINERD_PID" 2>/dev/null
        wait "$CONTAINERD_PID" 2>/dev/null
    fi
    for p in $(pids_mentioning "$WORK"); do kill -KILL "$p" 2>/dev/null; done
    # Snapshot and rootfs mounts, deepest first.
    for m in $(findmnt -rn -o TARGET | grep -F -- "$WORK" | sort -r); do umount -l "$m" 2>/dev/null; done
    # ctr gives each container the cgroupsPath /<namespace>/<id>; the containerd side
    # leaves an empty /<namespace> cgroup in every hierarchy, and stockade leaves it in
    # those it made a container's limits in. It goes too if this run made it (rmdir fails
    # on a cgroup in use).
    if [ -z "$HAD_NS_CGROUP" ]; then
        for m in /sys/fs/cgroup/*/"$NS" /sys/fs/cgroup/"$NS"; do
            [ -d "$m" ] || continue
            rmdir "$m"/*/ 2>/dev/null
            rmdir "$m" 2>/dev/null
        done
    fi
    # A shim killed above could not remove its socket: /run/containerd/s/<sha256 of
    # "<containerd address>/<namespace>/<id>">, for the ids this script uses.
    for id in "${IDS[@]}"; do
        rm -f "/run/containerd/s/$(printf '%s' "$SOCK/$NS/$id" | sha256sum | cut -c1-64)"
    done
    if [ -z "$HAD_RUN_CONTAINERD" ]; then
        rmdir /run/containerd/s /run/containerd/fifo /run/containerd 2>/dev/null
    fi
    rm -rf "$WORK"
}
ctr_cleanup_on_exit() {
    # shellcheck disable=SC2064 # the root is fixed now, on purpose
    trap "ctr_cleanup '$1'" EXIT
    trap 'exit 130' INT TERM
}

# ctr run forwards signals to the task, so a plain TERM from timeout may be ignored: -k.
C() { timeout -k 5 60 ctr --address "$SOCK" --namespace "$NS" "$@"; }
task_status() { C task ls 2>/dev/null | awk -v id="$1" '$1 == id { print $3 }'; }
wait_status() { # wait_status ID STATUS: up to 10 s
    local i
    for i in $(seq 1 100); do
        [ "$(task_status "$1")" = "$2" ] && return 0
        sleep 0.1
    done
    return 1
}
# ctr -t on a terminal of its own: script(1) gives it a pty. script runs the command with
# $SHELL -c, so the shell is fixed here: with dash (what an unset SHELL means, as under
# CI) the command is a child in the pty's foreground process group, with bash it is
# exec'd. timeout must stay in that foreground group (--foreground): by default it moves
# into a process group of its own, and ctr, putting the pty into raw mode from a
# background group, would be stopped by SIGTTOU and hang until the timeout.
PTY_CTR="timeout --foreground -k 5 60 ctr --address '$SOCK' --namespace '$NS'"
on_pty() { # on_pty COMMAND: runs it with a pty as its terminal; output (without CRs) in $out, status in $rc
    SHELL=/bin/sh script -qec "$1" /dev/null </dev/null >"$WORK/pty.out" 2>&1
    rc=$?
    # script(1) turns its stdin's EOF into a VEOF on the pty, which the container's
    # terminal echoes as "^@" (runc shows the same).
    out=$(tr -d '\r' <"$WORK/pty.out" | sed 's/\^@//g')
}

# start_containerd [VAR=VALUE…]: containerd with a private configuration, state and socket
# (the assignments go into its environment, which its shims inherit); exits 2 when it
# does not answer within 10 s. With CTR_CRI_CONFIG set (cri.sh), the CRI plugin runs and
# that text is appended to the configuration; otherwise CRI is disabled.
start_containerd() {
    local disabled='"io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"'
    # Only what ctr needs: no CRI (it wants CNI and would probe the host), no tracing.
    [ -n "${CTR_CRI_CONFIG:-}" ] || disabled="\"io.containerd.grpc.v1.cri\", $disabled"
    cat >"$WORK/config.toml" <<EOF
version = 2
root = "$WORK/root"
state = "$WORK/state"
disabled_plugins = [$disabled]

[grpc]
  address = "$SOCK"

[ttrpc]
  address = "$SOCK.ttrpc"

[debug]
  address = "$WORK/debug.sock"
  level = "info"

[metrics]
  address = ""
${CTR_CRI_CONFIG:-}
EOF
    env "$@" containerd --config "$WORK/config.toml" >"$WORK/containerd.log" 2>&1 &
    CONTAINERD_PID=$!
    for _ in $(seq 1 100); do
        C version >/dev/null 2>&1 && break
        sleep 0.1
    done
    C version >/dev/null 2>&1 || { echo "containerd did not start" >&2; tail -20 "$WORK/containerd.log" >&2; exit 2; }
}
