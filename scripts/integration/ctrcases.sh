# The ctr test cases containerd.sh (containerd's runc v2 shim running stockade) and shim.sh
# (stockade's own shim) both run: the same checks through either shim. Sourced after
# ctrlib.sh; each case takes the container id(s) it uses and reads the caller's C,
# RUN_OPTS, IMAGE, WORK, PTY_CTR, CTR_T (the `ctr run -t --rm … IMAGE` command line for
# on_pty) and shim_logs.
# shellcheck shell=bash

case_echo() { # case_echo ID
    local out rc
    out=$(C run --rm "${RUN_OPTS[@]}" "$IMAGE" "$1" echo hello 2>&1)
    rc=$?
    if [ "$rc" -eq 0 ] && [ "$out" = hello ]; then
        ok "ctr run --rm echo hello prints hello and exits 0"
    else
        not_ok "ctr run --rm echo hello (exit $rc)" "$out
$(shim_logs)"
    fi
}

case_exit_status() { # case_exit_status ID
    local out rc
    out=$(C run --rm "${RUN_OPTS[@]}" "$IMAGE" "$1" sh -c 'echo failing >&2; exit 7' 2>&1)
    rc=$?
    if [ "$rc" -eq 7 ] && [ "$out" = failing ]; then
        ok "stderr and a non-zero exit status (7) come back through ctr run"
    else
        not_ok "stderr and exit status 7 through ctr run (exit $rc)" "$out"
    fi
}

case_stdin() { # case_stdin ID
    local out
    # ctr forwards stdin's EOF (CloseIO) only once the task exists, so the input comes late.
    out=$( (sleep 2; printf 'from stdin\n') | C run --rm "${RUN_OPTS[@]}" "$IMAGE" "$1" cat 2>&1)
    if [ "$out" = "from stdin" ]; then
        ok "stdin reaches the container, and CloseIO ends it"
    else
        not_ok "stdin reaches the container" "$out"
    fi
}

case_run_tty() { # case_run_tty ID1 ID2: ctr run -t, with ctr itself on a pty
    on_pty "$CTR_T $1 tty"
    if grep -qE '^/dev/pts/[0-9]+$' <<<"$out" && [ "$rc" -eq 0 ]; then
        ok "ctr run -t: the process's stdin is a pts, its output comes back"
    else
        not_ok "ctr run -t tty prints a pts path (exit $rc)" "$out
$(shim_logs)"
    fi
    on_pty "$CTR_T $2 sh -c 'test -t 0 && test -t 1 && exit 5'"
    if [ "$rc" -eq 5 ]; then
        ok "ctr run -t: stdin and stdout are terminals, and the exit status (5) comes back"
    else
        not_ok "ctr run -t exit status (exit $rc)" "$out"
    fi
}

case_exec() { # case_exec ID EXEC_ID: ID runs sh as its init
    local out rc
    # shellcheck disable=SC2016 # expanded in the container
    out=$(C task exec --fifo-dir "$WORK/fifo" --exec-id "$2" "$1" sh -c 'echo "exec beside $(cat /proc/1/comm)"; exit 3' 2>&1)
    rc=$?
    if [ "$rc" -eq 3 ] && [ "$out" = "exec beside sh" ]; then
        ok "ctr task exec runs in the container and returns its status (3)"
    else
        not_ok "ctr task exec (exit $rc)" "$out
$(shim_logs)"
    fi
}

case_exec_tty() { # case_exec_tty ID EXEC_ID
    on_pty "$PTY_CTR task exec -t --fifo-dir '$WORK/fifo' --exec-id $2 $1 sh -c 'tty; exit 6'"
    if [ "$rc" -eq 6 ] && grep -qE '^/dev/pts/[0-9]+$' <<<"$out"; then
        ok "ctr task exec -t: the exec gets its own pts, and its status (6)"
    else
        not_ok "ctr task exec -t (exit $rc)" "$out
$(shim_logs)"
    fi
}

case_ps() { # case_ps ID INIT_PID: the init runs a loop around sleep
    local out
    out=$(C task ps "$1" 2>&1)
    if grep -q "^$2\b" <<<"$out" && [ "$(grep -cE '^[0-9]+' <<<"$out")" -ge 2 ]; then
        ok "ctr task ps lists the container's processes (the init and its sleep)"
    else
        not_ok "ctr task ps" "$out"
    fi
}

case_kill_term() { # case_kill_term ID: the init traps TERM and exits
    local out
    out=$(C task kill "$1" 2>&1)
    if wait_status "$1" STOPPED; then
        ok "ctr task kill (TERM): the task stops (TaskExit reached containerd)"
    else
        not_ok "ctr task kill then STOPPED" "$out
$(C task ls 2>&1)
$(shim_logs)"
    fi
}
