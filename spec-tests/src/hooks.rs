//! The six OCI hook phases (issue 4): order, state on stdin, args/env, timeouts, failures.
//!
//! Every hook appends its phase to `<log>/order` and saves its stdin as `<log>/<phase>.json`.
//! The log directory is bind-mounted into the container at /hooklog, so the startContainer
//! hook (which runs inside the container) and the process itself can write there too.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::bundle::Bundle;
use crate::ctx::{read_text, Ctx};
use crate::harness::{Fail, Test, TestResult};
use crate::host;
use crate::schema;

pub fn tests() -> Vec<Test> {
    vec![
        test!("hooks", hooks_run_in_spec_order_around_the_process),
        test!("hooks", hooks_receive_the_state_json_on_stdin),
        test!(
            "hooks",
            hook_gets_args_with_args0_as_argv0_and_exactly_its_env
        ),
        test!(
            "hooks",
            hook_timeout_kills_the_hook_and_its_children_and_fails_create
        ),
        test!(
            "hooks",
            failing_prestart_hook_aborts_create_and_leaves_nothing
        ),
        test!(
            "hooks",
            failing_create_runtime_hook_aborts_create_and_leaves_nothing
        ),
        test!(
            "hooks",
            failing_create_container_hook_aborts_create_and_leaves_nothing
        ),
        test!(
            "hooks",
            failing_start_container_hook_fails_start_and_the_process_never_runs
        ),
        test!(
            "hooks",
            failing_poststop_hook_is_a_warning_and_delete_succeeds
        ),
        test!(
            "hooks",
            failing_poststart_hook_is_a_warning_and_the_container_runs_on
        ),
    ]
}

const HOOK_PATH_ENV: &str = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
/// Phases that run in the runtime's namespace, where the host's /bin/sh is the hook.
const HOST_PHASES: [&str; 5] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "poststart",
    "poststop",
];

/// A host directory for hook output, bind-mounted at /hooklog in the container.
fn log_dir(ctx: &Ctx, b: &mut Bundle) -> Result<PathBuf, Fail> {
    let dir = ctx.path("hooklog");
    std::fs::create_dir(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
    b.add_mount(json!({
        "destination": "/hooklog", "type": "bind", "source": dir.to_string_lossy(),
        "options": ["rbind", "rw"]
    }));
    Ok(dir)
}

/// A hook running `script` with /bin/sh (host or container, depending on the phase).
fn sh_hook(script: &str) -> Value {
    json!({ "path": "/bin/sh", "args": ["sh", "-c", script], "env": [HOOK_PATH_ENV] })
}

/// The recording hook for `phase`: saves stdin and appends the phase to the order file.
fn recording_hook(phase: &str, log: &Path) -> Value {
    let dir = if phase == "startContainer" {
        "/hooklog".to_string()
    } else {
        log.to_string_lossy().into_owned()
    };
    sh_hook(&format!(
        "cat > {dir}/{phase}.json; echo {phase} >> {dir}/order"
    ))
}

fn set_hooks(b: &mut Bundle, phase: &str, hooks: Vec<Value>) {
    if !b.config["hooks"].is_object() {
        b.config["hooks"] = json!({});
    }
    b.config["hooks"][phase] = Value::Array(hooks);
}

fn all_recording_hooks(b: &mut Bundle, log: &Path) {
    for phase in HOST_PHASES.iter().chain(["startContainer"].iter()) {
        set_hooks(b, phase, vec![recording_hook(phase, log)]);
    }
}

fn order(log: &Path) -> Vec<String> {
    read_text(&log.join("order"))
        .lines()
        .map(str::to_string)
        .collect()
}

fn hooks_run_in_spec_order_around_the_process(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle(&["sh", "-c", "echo process >> /hooklog/order"])?;
    let log = log_dir(ctx, &mut b)?;
    all_recording_hooks(&mut b, &log);
    let id = ctx.id("order");
    ctx.create_ok(&id, &b)?;
    ensure_eq!(
        order(&log),
        vec!["prestart", "createRuntime", "createContainer"],
        "hooks run by create"
    );
    ctx.start_ok(&id)?;
    let after_start = order(&log);
    ensure!(
        after_start.len() >= 5
            && after_start[..4]
                == [
                    "prestart",
                    "createRuntime",
                    "createContainer",
                    "startContainer"
                ],
        "hooks after start: {after_start:?}"
    );
    ensure!(
        after_start.iter().any(|p| p == "poststart"),
        "poststart had not run when start returned: {after_start:?}"
    );
    ctx.wait_status(&id, "stopped")?;
    ctx.sk(&["delete", &id]).run()?.expect_ok()?;
    let all = order(&log);
    ensure_eq!(all.len(), 7, "number of entries in {all:?}");
    ensure_eq!(
        all[..4].to_vec(),
        vec![
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer"
        ],
        "first four"
    );
    let mut middle = all[4..6].to_vec();
    middle.sort();
    ensure_eq!(
        middle,
        vec!["poststart", "process"],
        "the process and poststart (any order)"
    );
    ensure_eq!(all[6].as_str(), "poststop", "last");
    Ok(())
}

fn hooks_receive_the_state_json_on_stdin(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle(&["sh", "-c", "sleep 1"])?;
    b.config["annotations"] = json!({ "org.example.hooks": "yes", "org.example.n": "7" });
    let log = log_dir(ctx, &mut b)?;
    all_recording_hooks(&mut b, &log);
    let id = ctx.id("hookstate");
    ctx.create_ok(&id, &b)?;
    let pid = ctx.pid(&id)?;
    ctx.start_ok(&id)?;
    ctx.wait_status(&id, "stopped")?;
    ctx.sk(&["delete", &id]).run()?.expect_ok()?;
    let bundle = std::fs::canonicalize(&b.dir).map_err(|e| e.to_string())?;
    let allowed: [(&str, &[&str]); 6] = [
        ("prestart", &["creating", "created"]),
        ("createRuntime", &["creating", "created"]),
        ("createContainer", &["creating", "created"]),
        ("startContainer", &["created", "running"]),
        ("poststart", &["running"]),
        ("poststop", &["stopped"]),
    ];
    for (phase, statuses) in allowed {
        let text = read_text(&log.join(format!("{phase}.json")));
        let st: Value = serde_json::from_str(&text)
            .map_err(|e| format!("{phase} hook's stdin is not JSON ({e}): {text:?}"))?;
        schema::validate(&ctx.env.schema_dir, "state-schema.json", &st)
            .map_err(|e| format!("{phase} hook's state: {e}"))?;
        ensure_eq!(st["id"].as_str(), Some(id.as_str()), "{phase}: id");
        let status = st["status"].as_str().unwrap_or_default();
        ensure!(
            statuses.contains(&status),
            "{phase}: status {status:?}, expected one of {statuses:?}"
        );
        let got_bundle = std::fs::canonicalize(st["bundle"].as_str().unwrap_or_default())
            .map_err(|e| format!("{phase}: bundle {}: {e}", st["bundle"]))?;
        ensure_eq!(got_bundle, bundle, "{phase}: bundle");
        ensure_eq!(
            st["annotations"],
            b.config["annotations"],
            "{phase}: annotations"
        );
        match phase {
            // Run in the runtime's namespaces: the host pid, as `state` reports it.
            "prestart" | "createRuntime" | "poststart" => {
                ensure_eq!(st["pid"].as_i64(), Some(pid as i64), "{phase}: pid")
            }
            // Run in the container's namespaces (runc reports the pid as seen there).
            "createContainer" | "startContainer" => ensure!(
                st["pid"].as_i64().is_some_and(|p| p > 0),
                "{phase}: no positive pid in {st}"
            ),
            _ => {}
        }
    }
    Ok(())
}

fn hook_gets_args_with_args0_as_argv0_and_exactly_its_env(ctx: &Ctx) -> TestResult {
    // The hook is this suite's own binary in `--hook-dump` mode, which records its argv and
    // environment as received (a shell would add PWD, SHLVL, …). args[0] is deliberately
    // not the path: a runtime that passed the path as argv[0] would be caught.
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let mut b = ctx.bundle(&["true"])?;
    let log = ctx.path("hookargs");
    std::fs::create_dir(&log).map_err(|e| e.to_string())?;
    let l = log.to_string_lossy().into_owned();
    set_hooks(
        &mut b,
        "createRuntime",
        vec![json!({
            "path": exe.to_string_lossy(),
            "args": ["custom-argv0", "--hook-dump", l, "one", "two words"],
            "env": ["HOOK_A=1", "HOOK_B=two words"]
        })],
    );
    let id = ctx.id("hookargs");
    ctx.create_ok(&id, &b)?;
    let argv = read_text(&log.join("argv"));
    ensure_eq!(
        argv.split('\0')
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>(),
        vec![
            "custom-argv0",
            "--hook-dump",
            l.as_str(),
            "one",
            "two words"
        ],
        "the hook's argv"
    );
    let environ = read_text(&log.join("environ"));
    let mut env: Vec<&str> = environ.split('\0').filter(|s| !s.is_empty()).collect();
    env.sort_unstable();
    ensure_eq!(
        env,
        vec!["HOOK_A=1", "HOOK_B=two words"],
        "the hook's environment"
    );
    let stdin = read_text(&log.join("stdin"));
    let st: Value = serde_json::from_str(&stdin)
        .map_err(|e| format!("the hook's stdin is not the state JSON ({e}): {stdin:?}"))?;
    ensure_eq!(
        st["id"].as_str(),
        Some(id.as_str()),
        "id in the hook's state"
    );
    Ok(())
}

fn hook_timeout_kills_the_hook_and_its_children_and_fails_create(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle(&["true"])?;
    let log = ctx.path("hooktimeout");
    std::fs::create_dir(&log).map_err(|e| e.to_string())?;
    let l = log.to_string_lossy();
    let mut hook = sh_hook(&format!(
        "sleep 300 & echo $! > {l}/child; echo $$ > {l}/hook; wait"
    ));
    hook["timeout"] = json!(1);
    set_hooks(&mut b, "createRuntime", vec![hook]);
    let id = ctx.id("timeout");
    let created = ctx.create(&id, &b);
    let pids: Vec<i32> = ["hook", "child"]
        .iter()
        .filter_map(|f| read_text(&log.join(f)).trim().parse().ok())
        .collect();
    let procs: Vec<host::ProcId> = pids.iter().filter_map(|p| host::proc_id(*p)).collect();
    let result = (|| -> TestResult {
        let out = created?;
        out.expect_failure("create whose createRuntime hook times out")?;
        out.expect_stderr_contains("createRuntime")?;
        ctx.ensure_root_empty("after the timed-out hook")?;
        ensure_eq!(pids.len(), 2, "pids recorded by the hook");
        ctx.wait_until("the hook and its child to be killed", || {
            procs.iter().all(|p| !host::alive(*p))
        })?;
        Ok(())
    })();
    // Never leave the hook's sleep behind, whatever the runtime did.
    for p in procs.iter().filter(|p| host::alive(**p)) {
        // SAFETY: kill(2) on a pid we just checked is the hook's (same start time).
        unsafe { libc::kill(p.pid, libc::SIGKILL) };
    }
    result
}

/// A hook of `phase` that saves its stdin, prints a diagnostic and exits 7.
fn failing_hook(phase: &str, log: &Path) -> Value {
    let l = log.to_string_lossy();
    sh_hook(&format!(
        "cat > {l}/{phase}.json; echo hook-diagnostic-text >&2; exit 7"
    ))
}

fn failing_create_hook(ctx: &Ctx, phase: &str) -> TestResult {
    let mut b = ctx.bundle(&["true"])?;
    let log = ctx.path("hookfail");
    std::fs::create_dir(&log).map_err(|e| e.to_string())?;
    set_hooks(&mut b, phase, vec![failing_hook(phase, &log)]);
    let id = ctx.id("hookfail");
    let out = ctx.create(&id, &b)?;
    out.expect_failure(&format!("create with a failing {phase} hook"))?;
    out.expect_stderr_contains("hook-diagnostic-text")?;
    out.expect_stderr_contains(phase)?;
    ctx.ensure_root_empty(&format!("after the failing {phase} hook"))?;
    let mounts = host::mounts_under(&b.dir).unwrap_or_default();
    ensure!(mounts.is_empty(), "mounts left: {mounts:?}");
    let st: Value = serde_json::from_str(&read_text(&log.join(format!("{phase}.json"))))
        .map_err(|e| format!("the {phase} hook got no state JSON: {e}"))?;
    if let Some(pid) = st["pid"].as_i64() {
        let pid = pid as i32;
        ctx.wait_until("the container's init to be gone", || {
            host::proc_id(pid).is_none_or(|p| !host::alive(p)) || !in_foreign_pid_namespace(pid)
        })?;
    }
    let procs = host::processes_using(&b.dir);
    ensure!(procs.is_empty(), "processes left in the bundle: {procs:?}");
    Ok(())
}

/// After the container is gone its pid may be reused by an unrelated host process; such a
/// process shares our pid namespace.
fn in_foreign_pid_namespace(pid: i32) -> bool {
    #[cfg(target_os = "linux")]
    {
        host::pid_namespace(pid) != host::pid_namespace(std::process::id() as i32)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        true
    }
}

fn failing_prestart_hook_aborts_create_and_leaves_nothing(ctx: &Ctx) -> TestResult {
    failing_create_hook(ctx, "prestart")
}

fn failing_create_runtime_hook_aborts_create_and_leaves_nothing(ctx: &Ctx) -> TestResult {
    failing_create_hook(ctx, "createRuntime")
}

fn failing_create_container_hook_aborts_create_and_leaves_nothing(ctx: &Ctx) -> TestResult {
    failing_create_hook(ctx, "createContainer")
}

fn failing_start_container_hook_fails_start_and_the_process_never_runs(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle(&["sh", "-c", "echo the-process-ran"])?;
    set_hooks(
        &mut b,
        "startContainer",
        vec![sh_hook("echo hook-diagnostic-text >&2; exit 7")],
    );
    let id = ctx.id("startfail");
    let out = ctx.create_ok(&id, &b)?;
    let init = host::proc_id(ctx.pid(&id)?).ok_or("state.pid is not a live process")?;
    ctx.sk(&["start", &id])
        .run()?
        .expect_failure("start with a failing startContainer hook")?;
    ctx.wait_until("the container's init to be gone", || !host::alive(init))?;
    let st = ctx.sk(&["state", &id]).run()?;
    if st.ok() {
        ensure!(
            st.stdout.contains("\"stopped\""),
            "the container is not stopped: {}",
            st.stdout
        );
    }
    ensure!(
        !out.stdout_now().contains("the-process-ran"),
        "the process ran although its startContainer hook failed"
    );
    Ok(())
}

fn failing_poststop_hook_is_a_warning_and_delete_succeeds(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle(&["true"])?;
    set_hooks(
        &mut b,
        "poststop",
        vec![sh_hook("echo hook-diagnostic-text >&2; exit 7")],
    );
    let id = ctx.id("poststop");
    ctx.create_start(&id, &b)?;
    ctx.wait_status(&id, "stopped")?;
    let out = ctx.sk(&["delete", &id]).run()?;
    ensure!(
        out.ok(),
        "delete failed because of a failing poststop hook: {}",
        out.stderr.trim()
    );
    ensure!(
        out.stderr.contains("poststop") || out.stderr.contains("hook-diagnostic-text"),
        "no warning about the failed poststop hook on stderr: {:?}",
        out.stderr
    );
    ctx.ensure_root_empty("after delete")?;
    Ok(())
}

/// The runtime spec: a failing poststart hook is logged as a warning, and the remaining
/// hooks and the lifecycle continue as if it had succeeded (runc fails start instead).
fn failing_poststart_hook_is_a_warning_and_the_container_runs_on(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle(&["sleep", "30"])?;
    let log = ctx.path("poststart-log");
    std::fs::create_dir(&log).map_err(|e| format!("mkdir {}: {e}", log.display()))?;
    set_hooks(
        &mut b,
        "poststart",
        vec![
            sh_hook("echo hook-diagnostic-text >&2; exit 5"),
            recording_hook("poststart", &log),
        ],
    );
    let id = ctx.id("poststartfail");
    ctx.create_ok(&id, &b)?;
    let out = ctx.sk(&["start", &id]).run()?;
    ensure!(
        out.ok(),
        "start failed because of a failing poststart hook: {}",
        out.stderr.trim()
    );
    ensure!(
        out.stderr.contains("poststart hook 0") && out.stderr.contains("exited with status 5"),
        "no warning naming the poststart hook and its status on stderr: {:?}",
        out.stderr
    );
    ensure!(
        order(&log) == ["poststart"],
        "the hook after the failing one did not run: {:?}",
        order(&log)
    );
    let st = ctx.sk(&["state", &id]).run()?;
    ensure!(
        st.ok() && st.stdout.contains("\"running\""),
        "the container is not running after start: {} {}",
        st.stdout,
        st.stderr
    );
    ctx.sk(&["delete", "--force", &id]).run()?;
    Ok(())
}
