#!/usr/bin/env bash
# Podman integration tests: Debian's Podman 4 with conmon 2 drives stockade as its OCI
# runtime (`podman --runtime <stockade>`), with storage, state, configuration, events and
# the runtime's own state directory all private to a temporary directory, so the system's
# Podman setup is neither read nor changed. docs/integration.md explains every setting.
#
#   STOCKADE=target/debug/stockade scripts/integration/podman.sh
#
# Needs root, podman, conmon, busybox-static, python3, util-linux (script, findmnt):
# scripts/setup.sh installs them. The busybox image is built here
# (scripts/integration/busybox-image.sh) and loaded from an OCI archive; nothing is pulled.
# Ends with "N passed, N failed"; exits non-zero if anything failed. Every container,
# conmon, mount and temporary file goes away on exit.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tap.sh
source "$(dirname "${BASH_SOURCE[0]}")/tap.sh"
stockade_binary podman.sh
need_root podman.sh
need_tools podman.sh podman conmon python3 script findmnt timeout

WORK=$(mktemp -d /tmp/stockade-podman.XXXXXX)
# stockade's state stays in its default root: Podman gives the runtime no --root when it
# runs as root, and a --runtime-flag root=… would not reach the "podman container cleanup"
# that conmon runs when a container exits (nor would $STOCKADE_ROOT: Podman runs runtimes
# with an environment of its own). Container ids are unique, and the tests check that
# every container this run made is gone from it at the end.
unset STOCKADE_ROOT
RUNTIME_ROOT=/var/run/stockade
IMAGE=localhost/stockade/busybox:latest
GLOBAL=()
HAD_LIBPOD_PARENT=$(ls -d /sys/fs/cgroup/*/libpod_parent /sys/fs/cgroup/libpod_parent 2>/dev/null)

our_containers() { # every container id this run's Podman made, from its event log
    [ -f "$WORK/events.log" ] && grep -o '"ID":"[0-9a-f]\{64\}"' "$WORK/events.log" | cut -d'"' -f4 | sort -u
}
cleanup() {
    local id p m
    if [ -d "$WORK/storage" ] && ((${#GLOBAL[@]})); then
        timeout 60 podman "${GLOBAL[@]}" rm -af -t 0 >/dev/null 2>&1
    fi
    for id in $(our_containers); do
        "$STOCKADE" --root "$RUNTIME_ROOT" delete --force "$id" >/dev/null 2>&1
    done
    for p in $(pids_mentioning "$WORK"); do kill -KILL "$p" 2>/dev/null; done
    for m in $(findmnt -rn -o TARGET | grep -F -- "$WORK" | sort -r); do umount -l "$m" 2>/dev/null; done
    # The cgroupfs manager puts conmon in <controller>/libpod_parent/conmon; remove those
    # cgroups if this run made them (rmdir fails on a cgroup still in use).
    if [ -z "$HAD_LIBPOD_PARENT" ]; then
        for m in /sys/fs/cgroup/*/libpod_parent /sys/fs/cgroup/libpod_parent; do
            [ -d "$m" ] || continue
            rmdir "$m"/*/ 2>/dev/null
            rmdir "$m" 2>/dev/null
        done
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM


# ---------------------------------------------------------------------------------------
# Private configuration (docs/integration.md explains each setting)
# ---------------------------------------------------------------------------------------
mkdir -p "$WORK/tmp" "$WORK/networks"
cat >"$WORK/storage.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$WORK/storage"
runroot = "$WORK/runroot"
EOF
cat >"$WORK/containers.conf" <<EOF
[containers]
# Podman asks for RLIMIT_NOFILE 1048576 by default; this host's hard limit is 20000 and
# root lacks CAP_SYS_RESOURCE, so setrlimit would fail. Stay within the hard limit.
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
# No bridge, no CNI/netavark, no iptables: the container gets a network namespace of its
# own with loopback only (stockade: vnet new).
netns = "none"
log_driver = "k8s-file"

[engine]
# Hybrid cgroups on this host: no systemd to ask for scopes.
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$WORK/events.log"
tmp_dir = "$WORK/tmp"
volume_path = "$WORK/volumes"
runtime = "stockade"
# stockade writes runc's JSON log lines, so Podman may pass --log-format=json --log FILE;
# without this its warnings go to the create command's stderr, the container's stderr.
runtime_supports_json = ["stockade"]

[engine.runtimes]
stockade = ["$STOCKADE"]

[network]
network_config_dir = "$WORK/networks"
EOF
export CONTAINERS_CONF=$WORK/containers.conf
export CONTAINERS_STORAGE_CONF=$WORK/storage.conf
export CONTAINERS_REGISTRIES_CONF=$WORK/registries.conf
printf 'unqualified-search-registries = []\n' >"$CONTAINERS_REGISTRIES_CONF"
export TMPDIR=$WORK/tmp

GLOBAL=(--root "$WORK/storage" --runroot "$WORK/runroot" --storage-driver vfs
    --cgroup-manager cgroupfs --events-backend file --tmpdir "$WORK/tmp"
    --runtime "$STOCKADE")
P() { timeout 60 podman "${GLOBAL[@]}" "$@"; }

# ---------------------------------------------------------------------------------------
# The busybox image: built here, loaded from an OCI archive
# ---------------------------------------------------------------------------------------
STOCKADE=$STOCKADE "$HERE/busybox-image.sh" "$WORK/busybox-oci.tar" "$IMAGE" \
    || { echo "podman.sh: building the busybox image failed" >&2; exit 2; }
if out=$(P load -q -i "$WORK/busybox-oci.tar" 2>&1) && P image exists "$IMAGE"; then
    ok "podman load of the busybox OCI archive"
else
    not_ok "podman load of the busybox OCI archive" "$out
$(P images 2>&1)"
    echo "$PASSED passed, $FAILED failed"
    exit 1
fi

# ---------------------------------------------------------------------------------------
# Foreground runs
# ---------------------------------------------------------------------------------------
out=$(P run --rm "$IMAGE" echo hi 2>&1)
rc=$?
if [ "$rc" -eq 0 ] && [ "$out" = hi ]; then ok "podman run --rm echo hi"; else not_ok "podman run --rm echo hi (exit $rc)" "$out"; fi

out=$(P run --rm "$IMAGE" sh -c 'echo failing; exit 42' 2>&1)
rc=$?
if [ "$rc" -eq 42 ] && [ "$out" = failing ]; then
    ok "podman run propagates the exit code (42)"
else
    not_ok "podman run propagates the exit code (exit $rc)" "$out"
fi

out=$(P run --rm --name p-env --hostname box "$IMAGE" sh -c 'echo "$(hostname) $(id -u) $$ $(cat /proc/self/comm)"; test -f /run/.containerenv && echo containerenv; ulimit -n' 2>&1)
if [ "$out" = "box 0 1 cat
containerenv
1024" ]; then
    ok "hostname, uid 0, PID 1, /proc, podman's file mounts and rlimits inside the container"
else
    not_ok "process environment inside podman run" "$out"
fi

mkdir -p "$WORK/volume"
echo from-host >"$WORK/volume/in"
out=$(P run --rm --user 65534:65534 --workdir /tmp -e GREETING=hello --read-only --tmpfs /scratch \
    -v "$WORK/volume:/data" "$IMAGE" sh -c 'echo "$(id -u):$(id -g) $(pwd) $GREETING $(cat /data/in)"; touch /scratch/x && echo tmpfs-writable; touch /etc/x 2>/dev/null || echo rootfs-read-only' 2>&1)
if [ "$out" = "65534:65534 /tmp hello from-host
tmpfs-writable
rootfs-read-only" ]; then
    ok "--user, --workdir, -e, --read-only, --tmpfs and a -v bind volume"
else
    not_ok "--user, --workdir, -e, --read-only, --tmpfs, -v" "$out"
fi

out=$(P run --rm -v "$WORK/volume:/data" "$IMAGE" sh -c 'echo from-container >/data/out' 2>&1)
if [ "$(cat "$WORK/volume/out" 2>&1)" = from-container ]; then ok "a -v bind volume is writable from the container"; else not_ok "writable -v volume" "$out"; fi

# More than any process may have (fs.nr_open is 1048576 by default): create must fail.
out=$(P run --rm --ulimit nofile=1048577:1048577 "$IMAGE" true 2>&1)
rc=$?
if [ "$rc" -ne 0 ] && grep -q 'RLIMIT_NOFILE' <<<"$out" && ! grep -q ' start ' <<<"$out"; then
    ok "an impossible ulimit fails the create, naming RLIMIT_NOFILE (exit $rc)"
else
    not_ok "an impossible ulimit fails the create (exit $rc)" "$out"
fi

# Confinement under Podman's defaults (its default capabilities and seccomp profile): the same
# CapEff/CapBnd as runc gets from the same podman, Seccomp: 2, and unshare refused.
CONFINE_SH='grep -E "^(CapEff|CapBnd|Seccomp):" /proc/self/status; unshare -m true 2>/dev/null && echo unshare-allowed || echo unshare-refused'
out=$(P run --rm "$IMAGE" sh -c "$CONFINE_SH" 2>&1)
if runc_bin=$(command -v runc); then
    want=$(timeout 60 podman "${GLOBAL[@]}" --runtime "$runc_bin" run --rm "$IMAGE" sh -c "$CONFINE_SH" 2>&1)
else
    want=$(printf 'CapEff:\t00000000800405fb\nCapBnd:\t00000000800405fb\nSeccomp:\t2\nunshare-refused')
fi
if [ "$out" = "$want" ] && grep -q 'Seccomp:.2' <<<"$out" && grep -q unshare-refused <<<"$out"; then
    ok "podman's default capabilities and seccomp profile hold as with runc (CapEff, Seccomp: 2)"
else
    not_ok "podman's default capabilities and seccomp profile" "stockade: $out
runc: $want"
fi

out=$(printf 'from stdin\n' | P run --rm -i "$IMAGE" cat 2>&1)
if [ "$out" = "from stdin" ]; then ok "podman run -i passes stdin"; else not_ok "podman run -i passes stdin" "$out"; fi

out=$(P run -d --name p-kill "$IMAGE" sleep 1000 2>&1) && out=$(P kill p-kill 2>&1) && out=$(P wait p-kill 2>&1)
if [ "$out" = 137 ]; then ok "podman kill (SIGKILL): podman wait reports 137"; else not_ok "podman kill then wait" "$out"; fi
P rm -f p-kill >/dev/null 2>&1

# ---------------------------------------------------------------------------------------
# A detached container: ps, exec, logs, stop, rm
# ---------------------------------------------------------------------------------------
LOOP='trap "echo got TERM; exit 0" TERM; echo started; while :; do sleep 1; done'
out=$(P run -d --name p-d "$IMAGE" sh -c "$LOOP" 2>&1)
rc=$?
if [ "$rc" -eq 0 ] && [ "$(P inspect -f '{{.State.Status}}' p-d 2>&1)" = running ]; then
    ok "podman run -d starts a running container"
else
    not_ok "podman run -d (exit $rc)" "$out"
fi

out=$(P ps --format '{{.Names}} {{.Status}}' 2>&1)
if grep -q '^p-d Up' <<<"$out"; then ok "podman ps shows it Up"; else not_ok "podman ps shows it Up" "$out"; fi

state=$("$STOCKADE" --root "$RUNTIME_ROOT" state "$(P inspect -f '{{.Id}}' p-d)" 2>&1)
if grep -q '"status": *"running"' <<<"$state"; then
    ok "conmon used stockade: stockade state under the runtime root says running"
else
    not_ok "stockade state under the runtime root" "$state"
fi

out=$(P exec p-d sh -c 'echo "exec in $(hostname)"; exit 3' 2>&1)
rc=$?
if [ "$rc" -eq 3 ] && [ "$out" = "exec in $(P inspect -f '{{.Config.Hostname}}' p-d)" ]; then
    ok "podman exec runs in the container and returns its status (3)"
else
    not_ok "podman exec (exit $rc)" "$out"
fi

out=$(P exec --user 65534 --workdir /tmp -e WHO=exec p-d sh -c 'echo "$(id -u) $(pwd) $WHO"' 2>&1)
if [ "$out" = "65534 /tmp exec" ]; then ok "podman exec --user, --workdir, -e"; else not_ok "podman exec --user, --workdir, -e" "$out"; fi

out=$(printf 'piped\n' | P exec -i p-d cat 2>&1)
if [ "$out" = piped ]; then ok "podman exec -i passes stdin"; else not_ok "podman exec -i passes stdin" "$out"; fi

out=$(P exec -d p-d sh -c 'echo detached-exec >/tmp/marker' 2>&1)
rc=$?
sleep 0.5
if [ "$rc" -eq 0 ] && [ "$(P exec p-d cat /tmp/marker 2>&1)" = detached-exec ]; then
    ok "podman exec -d"
else
    not_ok "podman exec -d (exit $rc)" "$out"
fi

out=$(P top p-d 2>&1)
if grep -q 'while' <<<"$out" || grep -q 'sh' <<<"$out"; then ok "podman top lists the container's processes"; else not_ok "podman top" "$out"; fi

out=$(P logs p-d 2>&1)
if [ "$out" = started ]; then ok "podman logs shows the container's output"; else not_ok "podman logs" "$out"; fi

start=$(date +%s)
out=$(P stop -t 20 p-d 2>&1)
rc=$?
took=$(($(date +%s) - start))
status=$(P inspect -f '{{.State.Status}} {{.State.ExitCode}}' p-d 2>&1)
if [ "$rc" -eq 0 ] && [ "$took" -lt 15 ] && [ "$status" = "exited 0" ] && P logs p-d 2>&1 | grep -q 'got TERM'; then
    ok "podman stop: TERM is honoured within the timeout (${took}s, exit 0)"
else
    not_ok "podman stop (exit $rc, ${took}s, $status)" "$out
$(P logs p-d 2>&1)"
fi

out=$(P ps -a --format '{{.Names}} {{.Status}}' 2>&1)
if grep -q '^p-d Exited (0)' <<<"$out" && ! P ps --format '{{.Names}}' 2>&1 | grep -qx p-d; then
    ok "podman ps -a shows it Exited (0), podman ps no longer lists it"
else
    not_ok "podman ps after stop" "$out"
fi

out=$(P rm p-d 2>&1)
rc=$?
if [ "$rc" -eq 0 ] && [ -z "$(P ps -aq 2>&1)" ]; then ok "podman rm"; else not_ok "podman rm (exit $rc)" "$out"; fi

# stop of a container that ignores TERM: podman waits the timeout, then SIGKILL.
P run -d --name p-k "$IMAGE" sleep 1000 >/dev/null 2>&1
start=$(date +%s)
out=$(P stop -t 2 p-k 2>&1)
rc=$?
took=$(($(date +%s) - start))
status=$(P inspect -f '{{.State.Status}} {{.State.ExitCode}}' p-k 2>&1)
if [ "$rc" -eq 0 ] && [ "$took" -ge 2 ] && [ "$took" -lt 12 ] && [ "$status" = "exited 137" ]; then
    ok "podman stop of a process that ignores TERM kills it after the timeout (137)"
else
    not_ok "podman stop with SIGKILL fallback (exit $rc, ${took}s, $status)" "$out"
fi
out=$(P rm p-k 2>&1) || not_ok "podman rm p-k" "$out"

out=$(P run -d --name p-r "$IMAGE" sh -c 'echo run; trap "exit 0" TERM; while :; do sleep 1; done' 2>&1) \
    && out=$(P restart -t 5 p-r 2>&1) && sleep 0.5 && out=$(P logs p-r 2>&1)
if [ "$(P inspect -f '{{.State.Status}}' p-r 2>&1)" = running ] && [ "$(grep -c '^run$' <<<"$out")" -eq 2 ]; then
    ok "podman restart: the same container id is deleted and created again"
else
    not_ok "podman restart" "$out"
fi
P rm -f -t 0 p-r >/dev/null 2>&1

out=$(P run -d --name p-f "$IMAGE" sleep 1000 2>&1 && P rm -f -t 0 p-f 2>&1)
rc=$?
if [ "$rc" -eq 0 ] && [ -z "$(P ps -aq 2>&1)" ]; then ok "podman rm -f of a running container"; else not_ok "podman rm -f (exit $rc)" "$out"; fi

# Resource limits: Podman's --memory and --pids-limit arrive as linux.resources with a
# cgroupsPath under libpod_parent, and stockade enforces them in cgroups.
out=$(P run -d --name p-lim --memory 48m --pids-limit 100 "$IMAGE" sleep 1000 2>&1)
lim_pid=$(P inspect -f '{{.State.Pid}}' p-lim 2>/dev/null)
mem_path=$(cgroup_dir "$lim_pid" memory)
pids_path=$(cgroup_dir "$lim_pid" pids)
mem_limit=$(cgroup_limit "$mem_path" memory.limit_in_bytes memory.max)
pids_limit=$(cgroup_limit "$pids_path" pids.max pids.max)
if [ "$mem_limit" = $((48 << 20)) ] && [ "$pids_limit" = 100 ] && [[ $mem_path == */libpod_parent/* ]]; then
    ok "podman run --memory --pids-limit: enforced in the container's cgroups ($mem_path)"
else
    not_ok "podman run --memory --pids-limit" "pid=$lim_pid memory=$mem_path:$mem_limit pids=$pids_path:$pids_limit $out"
fi
out=$(P exec p-lim sh -c 'cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory.max \
    /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/pids.max 2>/dev/null' 2>&1)
if [ "$out" = "$((48 << 20))
100" ]; then
    ok "inside, Podman's /sys/fs/cgroup mount shows the container's own cgroups and limits"
else
    not_ok "inside, Podman's /sys/fs/cgroup mount shows the container's own cgroups and limits" "$out"
fi
P rm -f -t 0 p-lim >/dev/null 2>&1
if [ -n "$mem_path" ] && [ ! -d "$mem_path" ] && [ ! -d "$pids_path" ]; then
    ok "podman rm: the container's cgroups are removed"
else
    not_ok "podman rm: the container's cgroups are removed" "$mem_path $pids_path"
fi
out=$(P run --rm --pids-limit 8 "$IMAGE" sh -c 'for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 30 & done; echo done' 2>&1)
if grep -qi "fork" <<<"$out"; then
    ok "podman run --pids-limit 8: forks beyond the limit fail"
else
    not_ok "podman run --pids-limit 8: forks beyond the limit fail" "$out"
fi

out=$(P create --name p-c "$IMAGE" sh -c 'echo created-then-started; exit 4' 2>&1) \
    && out=$(P start -a p-c 2>&1)
rc=$?
if [ "$rc" -eq 4 ] && [ "$out" = created-then-started ]; then
    ok "podman create, then podman start -a (exit 4)"
else
    not_ok "podman create + start -a (exit $rc)" "$out"
fi
P rm -f p-c >/dev/null 2>&1

# ---------------------------------------------------------------------------------------
# Interactive: podman run -it on a pty (conmon gets the pty master over the console socket)
# ---------------------------------------------------------------------------------------
cat >"$WORK/drive-pty.py" <<'PY'
"""drive-pty.py ARGV...: runs ARGV on a new 30x100 pty, types a few lines into it when it
sees a shell prompt, prints what it saw and exits with ARGV's status."""
import fcntl, os, pty, select, struct, sys, termios, time
pid, fd = pty.fork()
if pid == 0:
    fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    os.execvp(sys.argv[1], sys.argv[1:])
out = b""
script = [b"tty\n", b"echo interactive-$((6*7))\n", b"exit 9\n"]
deadline = time.time() + 60
sent_at = 0.0
while time.time() < deadline:
    r, _, _ = select.select([fd], [], [], 0.2)
    if r:
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        out += data
    if script and (b"# " in out or b"$ " in out) and time.time() - sent_at > 0.3:
        os.write(fd, script.pop(0))
        sent_at = time.time()
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace").replace("\r", ""))
sys.exit(os.waitstatus_to_exitcode(status))
PY
out=$(python3 "$WORK/drive-pty.py" podman "${GLOBAL[@]}" run -it --rm --name p-it "$IMAGE" sh 2>&1)
rc=$?
if [ "$rc" -eq 9 ] && grep -qE '^/dev/pts/[0-9]+$' <<<"$out" && grep -q '^interactive-42$' <<<"$out"; then
    ok "podman run -it: an interactive shell on a pts, driven through a pty (exit 9)"
else
    not_ok "podman run -it through a pty (exit $rc)" "$out"
fi

out=$(python3 "$WORK/drive-pty.py" podman "${GLOBAL[@]}" run -t --rm "$IMAGE" sh -c \
    'test -t 0 && test -t 1 || exit 1; for i in $(seq 50); do s=$(stty size 2>/dev/null) && break; sleep 0.1; done; echo "$s"' 2>&1)
rc=$?
# (conmon sets the size Podman sends it on the pty shortly after the start: hence the loop)
if [ "$rc" -eq 0 ] && grep -qx '30 100' <<<"$out"; then
    ok "podman run -t: stdin and stdout are terminals, of the caller's size (30x100)"
else
    not_ok "podman run -t (exit $rc)" "$out"
fi

left=$(P ps -aq 2>&1; for id in $(our_containers); do [ -e "$RUNTIME_ROOT/$id" ] && echo "$RUNTIME_ROOT/$id"; done)
[ -n "$(our_containers)" ] || left="no container ids in $WORK/events.log"
if [ -z "$left" ]; then ok "no container and no runtime state is left"; else not_ok "nothing left at the end" "$left"; fi

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
