#!/usr/bin/env bash
# Lifecycle benchmark: create -> start -> wait until stopped -> delete of /bin/true in a busybox
# bundle, N times, for stockade, crun and runc side by side in one run (the runtimes take
# turns within each round, so a noisy neighbour hurts them alike). Prints the median time per
# lifecycle for each runtime, the ratios stockade/crun and stockade/runc, and stockade's peak
# RSS (max of `/usr/bin/time -f %M` over every stockade command of a separate, untimed pass).
#
# Two cases (CASES, default both): `plain`, and `confined`: the same config with `runc spec`'s
# capabilities and a seccomp profile of realistic size (scripts/bench/seccomp-default.json,
# containerd's default shape: ~360 syscall names, default ERRNO).
#
#   STOCKADE=target/release/stockade N=200 CASES="plain confined" scripts/bench/lifecycle.sh
#
# Needs root, busybox-static, crun, runc, jq and GNU time (scripts/setup.sh installs them).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
N=${N:-200}
RSS_RUNS=${RSS_RUNS:-20}
CASES=${CASES:-plain confined}
PROFILE=$here/scripts/bench/seccomp-default.json
STOCKADE=${STOCKADE:-$here/target/release/stockade}
BUSYBOX=${BUSYBOX:-/bin/busybox}

die() { printf 'lifecycle.sh: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root (containers need it)"

# crun refuses a hybrid cgroup hierarchy (v1 controllers plus a cgroup2 mount at
# /sys/fs/cgroup/unified). Then the whole benchmark, every runtime alike, runs in a private
# mount namespace without that cgroup2 mount; the host's mounts are not touched.
if [[ -z ${LIFECYCLE_BENCH_PRIVATE_NS:-} ]] && findmnt -n -t cgroup2 /sys/fs/cgroup/unified >/dev/null 2>&1; then
    export LIFECYCLE_BENCH_PRIVATE_NS=1
    exec unshare --mount --propagation private -- \
        bash -c 'umount -l /sys/fs/cgroup/unified && exec bash "$0" "$@"' "${BASH_SOURCE[0]}" "$@"
fi
[[ -x $STOCKADE ]] || die "no stockade binary at $STOCKADE (cargo build --release -p stockade, or set STOCKADE)"
[[ -x $BUSYBOX ]] || die "no busybox at $BUSYBOX (apt-get install busybox-static)"
[[ -x /usr/bin/time ]] || die "GNU time is missing (apt-get install time)"
command -v jq >/dev/null || die "jq is missing (apt-get install jq)"
STOCKADE=$(cd "$(dirname "$STOCKADE")" && pwd)/$(basename "$STOCKADE")

runtimes=(stockade)
declare -A bin=([stockade]=$STOCKADE)
for rt in crun runc; do
    if path=$(command -v "$rt"); then
        runtimes+=("$rt")
        bin[$rt]=$path
    else
        printf 'lifecycle.sh: %s not installed, skipping it\n' "$rt" >&2
    fi
done

work=$(mktemp -d /tmp/stockade-bench.XXXXXX)
cleanup() {
    for rt in "${runtimes[@]}"; do
        for d in "$work/root-$rt"/*/; do
            [[ -d $d ]] || continue
            "${bin[$rt]}" --root "$work/root-$rt" delete --force "$(basename "$d")" >/dev/null 2>&1 || true
        done
    done
    rm -rf "$work"
}
trap cleanup EXIT

# The bundle: busybox with its applets, and a Linux-flavoured config running /bin/true.
bundle=$work/bundle
mkdir -p "$bundle/rootfs"/{bin,etc,proc,dev,sys,tmp}
cp "$BUSYBOX" "$bundle/rootfs/bin/busybox"
for applet in $("$BUSYBOX" --list); do
    [[ $applet == busybox ]] || ln -sf busybox "$bundle/rootfs/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$bundle/rootfs/etc/passwd"
echo 'root:x:0:' >"$bundle/rootfs/etc/group"
cat >"$bundle/config.json" <<'JSON'
{
  "ociVersion": "1.0.2",
  "process": {
    "terminal": false,
    "user": { "uid": 0, "gid": 0 },
    "args": ["/bin/true"],
    "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
    "cwd": "/",
    "noNewPrivileges": true
  },
  "root": { "path": "rootfs", "readonly": false },
  "hostname": "bench",
  "mounts": [
    { "destination": "/proc", "type": "proc", "source": "proc" },
    { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
      "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] }
  ],
  "linux": {
    "namespaces": [
      { "type": "pid" }, { "type": "ipc" }, { "type": "uts" },
      { "type": "mount" }, { "type": "network" }
    ]
  }
}
JSON
# The confined case: runc spec's three capabilities and the realistic seccomp profile.
mkdir -p "$work/bundle-confined"
jq --slurpfile profile "$PROFILE" --arg root "$bundle/rootfs" '
    .root.path = $root
    | .process.capabilities = {
        bounding: ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
        effective: ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
        permitted: ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]}
    | .linux.seccomp = $profile[0]' "$bundle/config.json" >"$work/bundle-confined/config.json"
declare -A bundles=([plain]=$bundle [confined]=$work/bundle-confined)

# One lifecycle with runtime $1 as container $2 of bundle $3: create, start, poll `state` until
# stopped, delete. The command prefix in $wrap (if any) runs each runtime command (the RSS pass).
wrap=()
lifecycle() {
    local rt=$1 id=$2 b=$3 root=$work/root-$1 st tries=0 err=$work/err
    local rtc=("${wrap[@]}" "${bin[$rt]}" --root "$root")
    "${rtc[@]}" create --bundle "$b" "$id" </dev/null >/dev/null 2>"$err" || { echo "$rt create: $(cat "$err")" >&2; return 1; }
    "${rtc[@]}" start "$id" >/dev/null 2>"$err" || { echo "$rt start: $(cat "$err")" >&2; return 1; }
    while :; do
        st=$("${rtc[@]}" state "$id" 2>"$err") || { echo "$rt state: $(cat "$err")" >&2; return 1; }
        [[ $st == *'"stopped"'* ]] && break
        ((++tries < 10000)) || { echo "$rt: $id never stopped" >&2; return 1; }
    done
    "${rtc[@]}" delete "$id" >/dev/null 2>"$err" || { echo "$rt delete: $(cat "$err")" >&2; return 1; }
}

now_ns() { date +%s%N; }

median_us() { sort -n "$1" | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

# One case: N timed rounds, the RSS pass, the table.
run_case() {
    local case=$1 b=${bundles[$1]} rt i t0 t1 m peak_kib
    declare -A median
    for rt in "${runtimes[@]}"; do
        mkdir -p "$work/root-$rt"
        : >"$work/times-$rt"
        lifecycle "$rt" "warmup-$case-$rt" "$b" || die "$rt cannot run the $case benchmark bundle"
    done
    printf 'lifecycle.sh: %s: %d lifecycles of /bin/true for each of: %s\n' "$case" "$N" "${runtimes[*]}" >&2
    for ((i = 0; i < N; i++)); do
        for rt in "${runtimes[@]}"; do
            t0=$(now_ns)
            lifecycle "$rt" "bench-$case-$rt-$i" "$b" || die "$rt failed in round $i ($case)"
            t1=$(now_ns)
            echo $(((t1 - t0) / 1000)) >>"$work/times-$rt"
        done
    done

    # Peak RSS of stockade: every command of RSS_RUNS lifecycles under GNU time, max of %M (KiB).
    local rss_file=$work/rss-$case
    : >"$rss_file"
    wrap=(/usr/bin/time -a -o "$rss_file" -f %M)
    for ((i = 0; i < RSS_RUNS; i++)); do
        lifecycle stockade "rss-$case-$i" "$b" || die "stockade failed in the RSS pass ($case)"
    done
    wrap=()
    peak_kib=$(sort -n "$rss_file" | tail -n 1)

    echo
    echo "case: $case"
    printf '%-10s %14s %12s\n' runtime 'median (ms)' 'lifecycles'
    for rt in "${runtimes[@]}"; do
        m=$(median_us "$work/times-$rt")
        median[$rt]=$m
        printf '%-10s %14.3f %12d\n' "$rt" "$(awk -v u="$m" 'BEGIN { print u / 1000 }')" "$(wc -l <"$work/times-$rt")"
    done
    for rt in crun runc; do
        [[ -n ${median[$rt]:-} ]] || continue
        printf '%s stockade/%s: %.3f\n' "$case" "$rt" "$(awk -v a="${median[stockade]}" -v b="${median[$rt]}" 'BEGIN { print a / b }')"
    done
    printf '%s stockade peak RSS: %d KiB (%.1f MiB), max over %d commands\n' \
        "$case" "$peak_kib" "$(awk -v k="$peak_kib" 'BEGIN { print k / 1024 }')" "$(wc -l <"$rss_file")"
}

for c in $CASES; do
    [[ -n ${bundles[$c]:-} ]] || die "unknown case $c (plain, confined)"
    run_case "$c"
done
