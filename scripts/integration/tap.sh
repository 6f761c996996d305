# TAP-style reporting shared by the integration scripts: `ok NAME`, `not_ok NAME [DETAIL]`
# (DETAIL shown as `#` lines), `check NAME COMMAND...`, and the counts for the closing
# "N passed, N failed" line; also what every script checks first (`stockade_binary`,
# `need_root`, `need_tools`). Sourced, not run.
PASSED=0
FAILED=0
ok() { PASSED=$((PASSED + 1)); echo "ok - $1"; }
not_ok() {
    FAILED=$((FAILED + 1))
    echo "not ok - $1"
    [ -n "${2:-}" ] && printf '%s\n' "$2" | sed 's/^/#   /' | head -30
    return 0
}
check() { # check NAME COMMAND...: passes when the command succeeds
    local name=$1 out
    shift
    if out=$("$@" 2>&1); then ok "$name"; else not_ok "$name" "$out"; fi
}

# stockade_binary SCRIPT: $STOCKADE made absolute (default: the debug build under
# $CARGO_TARGET_DIR, else target/); exits 2 when there is no binary there.
stockade_binary() {
    STOCKADE=${STOCKADE:-${CARGO_TARGET_DIR:-target}/debug/stockade}
    [ -x "$STOCKADE" ] || { echo "$1: no stockade binary at $STOCKADE" >&2; exit 2; }
    STOCKADE=$(cd "$(dirname "$STOCKADE")" && pwd)/$(basename "$STOCKADE")
}
# pids_mentioning TEXT: processes (but this shell) whose command line mentions TEXT — a
# run's work directory, which its shims, conmon and podman processes all carry.
pids_mentioning() {
    local d pid
    for d in /proc/[0-9]*; do
        pid=${d#/proc/}
        [ "$pid" = "$$" ] && continue
        { tr '\0' ' ' <"$d/cmdline"; } 2>/dev/null | grep -qF -- "$1" && echo "$pid"
    done
}
need_root() { # need_root SCRIPT
    [ "$(id -u)" -eq 0 ] || { echo "$1: must run as root" >&2; exit 2; }
}
need_tools() { # need_tools SCRIPT TOOL...
    local script=$1 tool
    shift
    for tool in "$@"; do
        command -v "$tool" >/dev/null || { echo "$script: $tool is missing (run scripts/setup.sh)" >&2; exit 2; }
    done
}

# cgroup_dir PID CONTROLLER: the host directory of PID's cgroup for CONTROLLER — in the
# v1 hierarchy that carries it, else in the v2 hierarchy.
cgroup_dir() {
    local pid=$1 c=$2 mnt
    mnt=$(awk -v c="$c" '{
        for (i = 1; i <= NF; i++) if ($i == "-") break
        if ($(i + 1) == "cgroup") { n = split($(i + 3), o, ","); for (j = 1; j <= n; j++) if (o[j] == c) { print $5; exit } }
    }' /proc/self/mountinfo)
    if [ -n "$mnt" ]; then
        awk -F: -v c="$c" '{ n = split($2, o, ","); for (j = 1; j <= n; j++) if (o[j] == c) print $3 }' "/proc/$pid/cgroup" 2>/dev/null \
            | head -1 | sed "s|^|$mnt|"
        return
    fi
    mnt=$(awk '{ for (i = 1; i <= NF; i++) if ($i == "-") break; if ($(i + 1) == "cgroup2") { print $5; exit } }' /proc/self/mountinfo)
    [ -n "$mnt" ] && sed -n 's|^0::||p' "/proc/$pid/cgroup" 2>/dev/null | sed "s|^|$mnt|"
}
# cgroup_limit DIR V1FILE V2FILE: the first word of whichever of the two files DIR has.
cgroup_limit() {
    local f
    for f in "$1/$2" "$1/$3"; do
        [ -f "$f" ] && { read -r v _ <"$f"; echo "$v"; return; }
    done
}
