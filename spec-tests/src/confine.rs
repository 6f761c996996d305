//! Linux confinement seen from inside (issue 10): the five capability sets, NoNewPrivs and
//! the seccomp mode in /proc/self/status for several configs; syscalls a profile forbids
//! failing with the configured errno (per rule, by default, by argument, by masked argument);
//! the notify flow with a listener in the test; exec with its own capabilities; and a bad
//! capability name refused at create leaving nothing behind.

use serde_json::{json, Value};

use crate::bundle::DEFAULT_PATH;
use crate::ctx::Ctx;
use crate::harness::{Fail, Test, TestResult};

#[cfg(target_os = "linux")]
mod notify;
#[cfg(target_os = "linux")]
use notify::{
    exec_sends_its_own_notify_fd_to_the_listener,
    seccomp_notify_sends_the_fd_and_state_to_the_listener,
};

#[cfg(not(target_os = "linux"))]
fn seccomp_notify_sends_the_fd_and_state_to_the_listener(_ctx: &Ctx) -> TestResult {
    linux_only()
}

#[cfg(not(target_os = "linux"))]
fn exec_sends_its_own_notify_fd_to_the_listener(_ctx: &Ctx) -> TestResult {
    linux_only()
}

pub fn tests() -> Vec<Test> {
    vec![
        test!("confine", runc_spec_capabilities_are_exactly_the_sets),
        test!("confine", no_capabilities_field_means_empty_sets),
        test!("confine", ambient_capabilities_reach_a_non_root_user),
        test!("confine", all_capabilities_the_kernel_knows),
        test!(
            "confine",
            seccomp_without_no_new_privs_is_loaded_before_caps_drop
        ),
        test!("confine", seccomp_rule_returns_its_errno),
        test!("confine", seccomp_default_errno_ret_is_returned),
        test!("confine", seccomp_argument_rule_matches_only_its_value),
        test!("confine", seccomp_masked_eq_compares_the_masked_argument),
        test!(
            "confine",
            seccomp_realistic_profile_loads_and_allows_a_shell
        ),
        test!(
            "confine",
            seccomp_notify_sends_the_fd_and_state_to_the_listener
        ),
        test!("confine", exec_sends_its_own_notify_fd_to_the_listener),
        test!("confine", exec_applies_its_own_capabilities_and_the_profile),
        test!("confine", unknown_capability_fails_create_naming_the_path),
        test!("confine", bad_seccomp_operator_fails_create_naming_the_path),
        test!(
            "confine",
            lsm_labels_the_host_lacks_fail_create_naming_the_field
        ),
    ]
}

pub(super) fn linux_only() -> TestResult {
    if cfg!(target_os = "linux") {
        Ok(())
    } else {
        Err(Fail::Skip("capabilities and seccomp are Linux-only".into()))
    }
}

/// runc spec's default: three capabilities in bounding, effective and permitted.
pub const RUNC_CAPS: &[&str] = &["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
/// Their mask: bits 29, 5 and 10.
const RUNC_MASK: u64 = (1 << 29) | (1 << 5) | (1 << 10);

pub(super) fn runc_caps() -> Value {
    json!({"bounding": RUNC_CAPS, "effective": RUNC_CAPS, "permitted": RUNC_CAPS})
}

/// The `Key:` line of /proc/self/status text.
fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .map(str::trim)
}

fn mask(text: &str, key: &str) -> Result<u64, Fail> {
    let v = field(text, key).ok_or_else(|| format!("no {key} line in {text:?}"))?;
    u64::from_str_radix(v, 16).map_err(|e| Fail::Fail(format!("{key} {v:?}: {e}")))
}

/// Checks the five sets (as masks), NoNewPrivs and Seccomp of a status text.
fn expect_status(text: &str, sets: [u64; 5], nnp: &str, seccomp: &str) -> TestResult {
    for (key, want) in ["CapBnd", "CapEff", "CapPrm", "CapInh", "CapAmb"]
        .iter()
        .zip(sets)
    {
        let got = mask(text, key)?;
        ensure!(got == want, "{key}: {got:016x}, expected {want:016x}");
    }
    ensure_eq!(field(text, "NoNewPrivs"), Some(nnp), "NoNewPrivs");
    ensure_eq!(field(text, "Seccomp"), Some(seccomp), "Seccomp");
    Ok(())
}

fn status_of(
    ctx: &Ctx,
    name: &str,
    process: &[(&str, Value)],
    seccomp: Option<Value>,
) -> Result<String, Fail> {
    let mut b = ctx.bundle(&["cat", "/proc/self/status"])?;
    for (k, v) in process {
        b.process()[*k] = v.clone();
    }
    if let Some(s) = seccomp {
        b.config["linux"]["seccomp"] = s;
    }
    Ok(ctx.run_to_stop(name, &b)?.0)
}

/// The kernel's full capability mask (cap_last_cap).
fn kernel_mask() -> Result<u64, Fail> {
    let last: u32 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .map_err(|e| format!("cap_last_cap: {e}"))?
        .trim()
        .parse()
        .map_err(|e| format!("cap_last_cap: {e}"))?;
    Ok(if last >= 63 {
        u64::MAX
    } else {
        (1u64 << (last + 1)) - 1
    })
}

fn runc_spec_capabilities_are_exactly_the_sets(ctx: &Ctx) -> TestResult {
    linux_only()?;
    let text = status_of(ctx, "runc-caps", &[("capabilities", runc_caps())], None)?;
    expect_status(&text, [RUNC_MASK, RUNC_MASK, RUNC_MASK, 0, 0], "1", "0")
}

fn no_capabilities_field_means_empty_sets(ctx: &Ctx) -> TestResult {
    linux_only()?;
    let text = status_of(ctx, "no-caps", &[], None)?;
    expect_status(&text, [0; 5], "1", "0")
}

fn ambient_capabilities_reach_a_non_root_user(ctx: &Ctx) -> TestResult {
    linux_only()?;
    let two = ["CAP_KILL", "CAP_NET_BIND_SERVICE"];
    let m: u64 = (1 << 5) | (1 << 10);
    let text = status_of(
        ctx,
        "ambient",
        &[
            ("user", json!({"uid": 1000, "gid": 1000})),
            (
                "capabilities",
                json!({"bounding": two, "effective": two, "permitted": two,
                       "inheritable": two, "ambient": two}),
            ),
        ],
        None,
    )?;
    ensure!(
        field(&text, "Uid").is_some_and(|u| u.starts_with("1000")),
        "Uid: {text:?}"
    );
    expect_status(&text, [m, m, m, m, m], "1", "0")
}

fn all_capabilities_the_kernel_knows(ctx: &Ctx) -> TestResult {
    linux_only()?;
    let all = [
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_DAC_READ_SEARCH",
        "CAP_FOWNER",
        "CAP_FSETID",
        "CAP_KILL",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETPCAP",
        "CAP_LINUX_IMMUTABLE",
        "CAP_NET_BIND_SERVICE",
        "CAP_NET_BROADCAST",
        "CAP_NET_ADMIN",
        "CAP_NET_RAW",
        "CAP_IPC_LOCK",
        "CAP_IPC_OWNER",
        "CAP_SYS_MODULE",
        "CAP_SYS_RAWIO",
        "CAP_SYS_CHROOT",
        "CAP_SYS_PTRACE",
        "CAP_SYS_PACCT",
        "CAP_SYS_ADMIN",
        "CAP_SYS_BOOT",
        "CAP_SYS_NICE",
        "CAP_SYS_RESOURCE",
        "CAP_SYS_TIME",
        "CAP_SYS_TTY_CONFIG",
        "CAP_MKNOD",
        "CAP_LEASE",
        "CAP_AUDIT_WRITE",
        "CAP_AUDIT_CONTROL",
        "CAP_SETFCAP",
        "CAP_MAC_OVERRIDE",
        "CAP_MAC_ADMIN",
        "CAP_SYSLOG",
        "CAP_WAKE_ALARM",
        "CAP_BLOCK_SUSPEND",
        "CAP_AUDIT_READ",
        "CAP_PERFMON",
        "CAP_BPF",
        "CAP_CHECKPOINT_RESTORE",
    ];
    // A runtime cannot grant what it lacks itself (a host in a container may not have every
    // capability): every name the kernel knows and this (root) process holds.
    let me = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let own = mask(&me, "CapPrm")?;
    let k = kernel_mask()? & own;
    let held: Vec<&str> = all
        .iter()
        .enumerate()
        .filter(|(i, _)| k & (1 << i) != 0)
        .map(|(_, n)| *n)
        .collect();
    let text = status_of(
        ctx,
        "all-caps",
        &[(
            "capabilities",
            json!({"bounding": all.to_vec(), "effective": held, "permitted": held}),
        )],
        None,
    )?;
    let bounding = kernel_mask()? & mask(&me, "CapBnd")?;
    expect_status(&text, [bounding, k, k, 0, 0], "1", "0")
}

/// A profile allowing everything but `rules`.
fn allow_all_but(rules: Value) -> Value {
    json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules})
}

fn seccomp_without_no_new_privs_is_loaded_before_caps_drop(ctx: &Ctx) -> TestResult {
    linux_only()?;
    let profile =
        allow_all_but(json!([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]));
    let text = status_of(
        ctx,
        "seccomp-nnp0",
        &[
            ("capabilities", runc_caps()),
            ("noNewPrivileges", json!(false)),
        ],
        Some(profile),
    )?;
    expect_status(&text, [RUNC_MASK, RUNC_MASK, RUNC_MASK, 0, 0], "0", "2")
}

/// Runs `script` under `profile` and returns its stdout.
fn run_script(ctx: &Ctx, name: &str, script: &str, profile: Value) -> Result<String, Fail> {
    let mut b = ctx.bundle(&["sh", "-c", script])?;
    b.process()["capabilities"] = runc_caps();
    b.config["linux"]["seccomp"] = profile;
    Ok(ctx.run_to_stop(name, &b)?.0)
}

fn seccomp_rule_returns_its_errno(ctx: &Ctx) -> TestResult {
    linux_only()?;
    // ENOSPC (28): "No space left on device".
    let profile = allow_all_but(json!([
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 28}
    ]));
    let out = run_script(
        ctx,
        "errno-ret",
        "mkdir /tmp/x 2>&1; echo rc=$?; grep Seccomp: /proc/self/status",
        profile,
    )?;
    ensure!(
        out.contains("No space left on device") && out.contains("rc=1"),
        "mkdir under the profile: {out:?}"
    );
    ensure!(out.contains("Seccomp:\t2"), "Seccomp mode: {out:?}");
    Ok(())
}

fn seccomp_default_errno_ret_is_returned(ctx: &Ctx) -> TestResult {
    linux_only()?;
    // Everything a shell needs is allowed (the realistic profile's names), mkdir is not:
    // it falls to the default, ERRNO with defaultErrnoRet EXDEV (18).
    let mut profile = realistic_profile();
    profile["defaultErrnoRet"] = json!(18);
    strip_names(&mut profile, &["mkdir", "mkdirat"]);
    let out = run_script(
        ctx,
        "default-errno",
        "mkdir /tmp/x 2>&1; echo rc=$?",
        profile,
    )?;
    ensure!(
        out.contains("Invalid cross-device link") && out.contains("rc=1"),
        "mkdir under the profile: {out:?}"
    );
    Ok(())
}

fn seccomp_argument_rule_matches_only_its_value(ctx: &Ctx) -> TestResult {
    linux_only()?;
    // kill(pid, SIGCONT) is refused with ENOTSUP; kill(pid, 0) is not.
    let profile = allow_all_but(json!([
        {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 95,
         "args": [{"index": 1, "value": 18, "op": "SCMP_CMP_EQ"}]}
    ]));
    let out = run_script(
        ctx,
        "args-eq",
        "kill -0 $$ && echo zero-ok; kill -CONT $$ 2>&1; echo cont-rc=$?",
        profile,
    )?;
    ensure!(out.contains("zero-ok"), "kill -0 must be allowed: {out:?}");
    ensure!(
        out.contains("Operation not supported") && out.contains("cont-rc=1"),
        "kill -CONT must fail with ENOTSUP: {out:?}"
    );
    Ok(())
}

fn seccomp_masked_eq_compares_the_masked_argument(ctx: &Ctx) -> TestResult {
    linux_only()?;
    // (sig & 3) == 1: SIGCHLD (17) matches; SIGWINCH (28) and 0 do not. An EQ on either value
    // alone would let SIGCHLD through.
    let profile = allow_all_but(json!([
        {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 95,
         "args": [{"index": 1, "value": 3, "valueTwo": 1, "op": "SCMP_CMP_MASKED_EQ"}]}
    ]));
    let out = run_script(
        ctx,
        "masked-eq",
        "kill -0 $$ && echo zero-ok; kill -WINCH $$ && echo winch-ok; kill -CHLD $$ 2>&1; echo chld-rc=$?",
        profile,
    )?;
    ensure!(
        out.contains("zero-ok") && out.contains("winch-ok"),
        "unmatched signals must be allowed: {out:?}"
    );
    ensure!(
        out.contains("Operation not supported") && out.contains("chld-rc=1"),
        "kill -CHLD must fail: {out:?}"
    );
    Ok(())
}

/// containerd's default profile shape (scripts/bench/seccomp-default.json): an allow-list
/// of about 350 names with default ERRNO/EPERM.
pub fn realistic_profile() -> Value {
    serde_json::from_str(include_str!("../../scripts/bench/seccomp-default.json"))
        .expect("scripts/bench/seccomp-default.json is valid JSON")
}

fn strip_names(profile: &mut Value, drop: &[&str]) {
    if let Some(rules) = profile["syscalls"].as_array_mut() {
        for r in rules.iter_mut() {
            if let Some(names) = r["names"].as_array_mut() {
                names.retain(|n| !drop.iter().any(|d| n == d));
            }
        }
        rules.retain(|r| r["names"].as_array().is_some_and(|n| !n.is_empty()));
    }
}

fn seccomp_realistic_profile_loads_and_allows_a_shell(ctx: &Ctx) -> TestResult {
    linux_only()?;
    let out = run_script(
        ctx,
        "realistic",
        "echo hello > /tmp/f && cat /tmp/f && ls / >/dev/null && echo ls-ok; \
         unshare -m true 2>&1; echo unshare-rc=$?; grep -E 'Seccomp:|CapEff:' /proc/self/status",
        realistic_profile(),
    )?;
    ensure!(
        out.contains("hello") && out.contains("ls-ok"),
        "a shell under the profile: {out:?}"
    );
    ensure!(out.contains("Seccomp:\t2"), "Seccomp mode: {out:?}");
    ensure!(
        out.contains(&format!("CapEff:\t{RUNC_MASK:016x}")),
        "CapEff: {out:?}"
    );
    ensure!(
        !out.contains("unshare-rc=0"),
        "unshare must be refused: {out:?}"
    );
    Ok(())
}

fn exec_applies_its_own_capabilities_and_the_profile(ctx: &Ctx) -> TestResult {
    linux_only()?;
    let mut b = ctx.bundle(&["sleep", "1000"])?;
    b.process()["capabilities"] = runc_caps();
    b.config["linux"]["seccomp"] = allow_all_but(json!([
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 28}
    ]));
    let id = ctx.id("exec-caps");
    ctx.create_start(&id, &b)?;
    let kill_only = ["CAP_KILL"];
    let process = json!({
        "user": {"uid": 0, "gid": 0},
        "args": ["sh", "-c", "cat /proc/self/status; mkdir /tmp/y 2>&1"],
        "env": [DEFAULT_PATH],
        "cwd": "/",
        "capabilities": {"bounding": kill_only, "effective": kill_only, "permitted": kill_only}
    });
    let file = ctx.path("process.json");
    std::fs::write(&file, process.to_string()).map_err(|e| e.to_string())?;
    let out = ctx
        .sk(&["exec", "--process", &file.to_string_lossy(), &id])
        .run()?;
    ctx.note(format!("exec --process: {:?} {:?}", out.stdout, out.stderr));
    expect_status(&out.stdout, [1 << 5, 1 << 5, 1 << 5, 0, 0], "0", "2")?;
    ensure!(
        out.stdout.contains("No space left on device"),
        "the container's profile holds in exec: {:?}",
        out.stdout
    );
    // From flags: the container's own sets plus --cap.
    let out = ctx
        .sk(&[
            "exec",
            "--cap",
            "CAP_NET_ADMIN",
            &id,
            "cat",
            "/proc/self/status",
        ])
        .run()?;
    let with_admin = RUNC_MASK | (1 << 12);
    expect_status(
        &out.stdout,
        [with_admin, with_admin, with_admin, 0, 0],
        "1",
        "2",
    )?;
    Ok(())
}

fn unknown_capability_fails_create_naming_the_path(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle(&["true"])?;
    b.process()["capabilities"] =
        json!({"bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_FOO"]});
    let id = ctx.id("bad-cap");
    let out = ctx.create(&id, &b)?;
    out.expect_failure("create with CAP_FOO")?;
    out.expect_stderr_contains("process.capabilities.bounding[3]")?;
    out.expect_stderr_contains("\"CAP_FOO\"")?;
    ctx.ensure_root_empty("create with CAP_FOO")?;
    Ok(())
}

fn bad_seccomp_operator_fails_create_naming_the_path(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle(&["true"])?;
    b.config["linux"]["seccomp"] = allow_all_but(json!([
        {"names": ["kill"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 1, "value": 1, "op": "SCMP_CMP_SOMETIMES"}]}
    ]));
    let id = ctx.id("bad-op");
    let out = ctx.create(&id, &b)?;
    out.expect_failure("create with an unknown operator")?;
    out.expect_stderr_contains("linux.seccomp.syscalls[0].args[0].op")?;
    ctx.ensure_root_empty("create with an unknown operator")?;
    Ok(())
}

fn lsm_labels_the_host_lacks_fail_create_naming_the_field(ctx: &Ctx) -> TestResult {
    linux_only()?;
    let apparmor = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.starts_with('Y'));
    let selinux = std::path::Path::new("/sys/fs/selinux/enforce").exists();
    if apparmor && selinux {
        return Err(Fail::Skip("this host has both AppArmor and SELinux".into()));
    }
    for (enabled, field, value) in [
        (apparmor, "apparmorProfile", "stockade-test-profile"),
        (selinux, "selinuxLabel", "system_u:system_r:container_t:s0"),
    ] {
        if enabled {
            continue;
        }
        let mut b = ctx.bundle(&["true"])?;
        b.process()[field] = json!(value);
        let id = ctx.id(field);
        let out = ctx.create(&id, &b)?;
        out.expect_failure(&format!("create with process.{field} on a host without it"))?;
        out.expect_stderr_contains(&format!("process.{field}"))?;
        ctx.ensure_root_empty(&format!("create with process.{field}"))?;
    }
    Ok(())
}
