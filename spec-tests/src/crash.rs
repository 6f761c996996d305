//! Crash safety (issue 11): each runtime command is killed with SIGKILL at every named step
//! (a debug build's `STOCKADE_FAULT=<step>` hook) and at random instants (0–30 ms after it
//! starts), then `delete --force` must succeed without blocking and leave nothing: no state
//! directory, no process of the container, no cgroup, no host mount, and the root
//! filesystem exactly as it was before the container existed (no mount point left over).
//! Each command's test prints `N trials / N clean`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::bundle::Bundle;
use crate::ctx::Ctx;
use crate::harness::{Fail, Test, TestResult};
use crate::host;
use crate::procs::Exit;

/// Trials per command at least (named steps first, then timed kills).
const MIN_TRIALS: usize = 20;
/// Timed kills per command, whatever the number of named steps.
const MIN_TIMED: usize = 8;
/// Trials run at once.
const WORKERS: usize = 6;
/// The latest instant of a timed kill.
const MAX_KILL_MS: u64 = 30;

pub fn tests() -> Vec<Test> {
    vec![
        test!("crash", create_killed_anywhere_is_cleaned_by_delete_force),
        test!("crash", start_killed_anywhere_is_cleaned_by_delete_force),
        test!("crash", exec_killed_anywhere_is_cleaned_by_delete_force),
        test!("crash", kill_killed_anywhere_is_cleaned_by_delete_force),
        test!("crash", delete_killed_anywhere_is_finished_by_delete_force),
        test!("crash", update_killed_anywhere_is_cleaned_by_delete_force),
        test!("crash", run_killed_anywhere_is_cleaned_by_delete_force),
    ]
}

/// What must exist before the command under test runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Setup {
    Nothing,
    Created,
    Running,
}

struct Command {
    name: &'static str,
    setup: Setup,
    /// The named steps of `STOCKADE_FAULT` this command passes.
    steps: &'static [&'static str],
    /// The command line, given the id and bundle directory.
    argv: fn(&str, &str) -> Vec<String>,
}

const CREATE_STEPS: &[&str] = &[
    "create:before-lock",
    "create:after-lock",
    "create:after-state",
    "create:before-prepare",
    "create:after-prepare",
    "create:after-clone",
    "create:after-pid",
    "create:after-intent",
    "create:after-mount-point",
    "create:after-prepared",
    "create:after-hooks",
    "create:after-ready",
    "create:done",
    "init:before-recorded",
];

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn create_start_kill_argv(verb: &'static str) -> fn(&str, &str) -> Vec<String> {
    match verb {
        "start" => |id, _| strings(&["start", id]),
        "kill" => |id, _| strings(&["kill", id, "KILL"]),
        "delete" => |id, _| strings(&["delete", "--force", id]),
        "exec" => |id, _| strings(&["exec", id, "true"]),
        _ => |id, _| strings(&["update", "--pids-limit", "50", "--memory", "64m", id]),
    }
}

fn command(name: &str) -> Command {
    match name {
        "create" => Command {
            name: "create",
            setup: Setup::Nothing,
            steps: CREATE_STEPS,
            argv: |id, b| strings(&["create", "--bundle", b, id]),
        },
        "run" => Command {
            name: "run",
            setup: Setup::Nothing,
            steps: &[
                "create:after-clone",
                "create:after-intent",
                "create:after-ready",
                "run:after-create",
                "run:after-start",
                "start:after-go",
                "start:before-state",
            ],
            argv: |id, b| strings(&["run", "--bundle", b, id]),
        },
        "start" => Command {
            name: "start",
            setup: Setup::Created,
            steps: &[
                "start:after-lock",
                "start:after-go",
                "start:before-state",
                "start:after-state",
            ],
            argv: create_start_kill_argv("start"),
        },
        "exec" => Command {
            name: "exec",
            setup: Setup::Running,
            steps: &["exec:after-lock", "exec:after-spawn"],
            argv: create_start_kill_argv("exec"),
        },
        "kill" => Command {
            name: "kill",
            setup: Setup::Running,
            steps: &["kill:after-lock", "kill:before-signal"],
            argv: create_start_kill_argv("kill"),
        },
        "delete" => Command {
            name: "delete",
            setup: Setup::Running,
            steps: &[
                "delete:before-lock",
                "delete:after-lock",
                "delete:after-kill",
                "delete:after-destroy",
                "delete:after-mount-points",
                "delete:before-remove",
                "delete:after-state-file",
            ],
            argv: create_start_kill_argv("delete"),
        },
        _ => Command {
            name: "update",
            setup: Setup::Running,
            steps: &["update:after-lock", "update:before-state"],
            argv: create_start_kill_argv("update"),
        },
    }
}

fn create_killed_anywhere_is_cleaned_by_delete_force(ctx: &Ctx) -> TestResult {
    crash_suite(ctx, &command("create"))
}
fn start_killed_anywhere_is_cleaned_by_delete_force(ctx: &Ctx) -> TestResult {
    crash_suite(ctx, &command("start"))
}
fn exec_killed_anywhere_is_cleaned_by_delete_force(ctx: &Ctx) -> TestResult {
    crash_suite(ctx, &command("exec"))
}
fn kill_killed_anywhere_is_cleaned_by_delete_force(ctx: &Ctx) -> TestResult {
    crash_suite(ctx, &command("kill"))
}
fn delete_killed_anywhere_is_finished_by_delete_force(ctx: &Ctx) -> TestResult {
    crash_suite(ctx, &command("delete"))
}
fn update_killed_anywhere_is_cleaned_by_delete_force(ctx: &Ctx) -> TestResult {
    crash_suite(ctx, &command("update"))
}
fn run_killed_anywhere_is_cleaned_by_delete_force(ctx: &Ctx) -> TestResult {
    crash_suite(ctx, &command("run"))
}

/// How one trial kills the command.
#[derive(Clone, Debug)]
enum Kill {
    Step(&'static str),
    AfterMs(u64),
}

/// Whether the binary has the fault hook: `create` told to die before taking its lock
/// must be killed by SIGKILL.
fn has_fault_hook(ctx: &Ctx) -> Result<bool, Fail> {
    let b = ctx.bundle(&["true"])?;
    let id = ctx.id("probe");
    ctx.track(&id);
    let out = ctx
        .sk(&["create", "--bundle", &b.dir.to_string_lossy(), &id])
        .env("STOCKADE_FAULT", "create:before-lock")
        .quiet()
        .run()?;
    Ok(out.exit == Exit::Signal(libc::SIGKILL))
}

fn crash_suite(ctx: &Ctx, cmd: &Command) -> TestResult {
    ctx.require_containers()?;
    if host::mounts_under(&ctx.dir).is_err() {
        return Err(Fail::Skip(
            "needs the Linux host's /proc to check for leftovers".into(),
        ));
    }
    if !has_fault_hook(ctx)? {
        return Err(Fail::Skip(
            "the stockade binary has no fault hook (a release build); build it in debug".into(),
        ));
    }
    let mut plan: Vec<Kill> = cmd.steps.iter().map(|s| Kill::Step(s)).collect();
    let timed = MIN_TIMED.max(MIN_TRIALS.saturating_sub(plan.len()));
    let mut seed = std::process::id() as u64 ^ now_nanos();
    for _ in 0..timed {
        plan.push(Kill::AfterMs(next_random(&mut seed) % (MAX_KILL_MS + 1)));
    }
    let next = AtomicUsize::new(0);
    let problems = Mutex::new(Vec::<String>::new());
    let killed = AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..WORKERS {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(kill) = plan.get(i) else { break };
                match trial(ctx, cmd, kill) {
                    Ok(died) => {
                        if died {
                            killed.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    Err(e) => problems
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(format!("{kill:?}: {e}")),
                }
            });
        }
    });
    let problems = problems.into_inner().unwrap_or_else(|e| e.into_inner());
    let n = plan.len();
    println!(
        "# crash: {}: {n} trials / {} clean ({} named steps, {timed} timed kills 0-{MAX_KILL_MS} ms; \
         {} commands died by SIGKILL; {:.1}s)",
        cmd.name,
        n - problems.len(),
        cmd.steps.len(),
        killed.load(Ordering::SeqCst),
        started.elapsed().as_secs_f64()
    );
    let mounts = host::mounts_under(&ctx.dir).map_err(Fail::Skip)?;
    ensure!(
        mounts.is_empty(),
        "host mounts left under the test directory: {mounts:?}"
    );
    ensure!(
        problems.is_empty(),
        "{} of {n} trials of {} left something behind:\n{}",
        problems.len(),
        cmd.name,
        problems.join("\n")
    );
    Ok(())
}

/// One trial; returns whether the command died by SIGKILL.
fn trial(ctx: &Ctx, cmd: &Command, kill: &Kill) -> Result<bool, String> {
    let argv0: &[&str] = if cmd.name == "run" {
        &["true"]
    } else {
        &["sleep", "1000"]
    };
    let mut b = ctx.bundle(argv0).map_err(|e| e.to_string())?;
    // update must also be crash-safe when it makes the container's first cgroups: half of
    // its trials start from a container created without limits.
    let limits = !(cmd.name == "update" && matches!(kill, Kill::AfterMs(ms) if ms % 2 == 1));
    dress(ctx, &mut b, limits)?;
    let before = tree(&b.rootfs);
    let id = ctx.id(&format!("crash-{}", cmd.name));
    ctx.track(&id);
    let bundle = b.dir.to_string_lossy().into_owned();
    if cmd.setup != Setup::Nothing {
        let out = ctx
            .sk(&["create", "--bundle", &bundle, &id])
            .quiet()
            .run()?;
        if !out.ok() {
            return Err(format!(
                "setting up: create: {}: {}",
                out.exit,
                out.stderr.trim()
            ));
        }
        if cmd.setup == Setup::Running {
            let out = ctx.sk(&["start", &id]).quiet().run()?;
            if !out.ok() {
                return Err(format!(
                    "setting up: start: {}: {}",
                    out.exit,
                    out.stderr.trim()
                ));
            }
        }
    }
    let argv = (cmd.argv)(&id, &bundle);
    let died = match kill {
        Kill::Step(step) => {
            let out = ctx.sk(&argv).env("STOCKADE_FAULT", step).quiet().run()?;
            out.exit == Exit::Signal(libc::SIGKILL)
        }
        Kill::AfterMs(ms) => {
            let pending = ctx.sk(&argv).quiet().spawn()?;
            std::thread::sleep(Duration::from_millis(*ms));
            // SAFETY: kill(2) of the pid of our own, not yet reaped, child.
            unsafe { libc::kill(pending.pid(), libc::SIGKILL) };
            pending.wait()?.exit == Exit::Signal(libc::SIGKILL)
        }
    };
    // The init's pid as recorded, to check it is gone afterwards.
    let init = std::fs::read_to_string(ctx.root.join(&id).join("state.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["pid"].as_i64())
        .and_then(|p| host::proc_id(p as i32));
    let ns = init.and_then(|p| pid_namespace(p.pid));
    let out = ctx.sk(&["delete", "--force", &id]).quiet().run()?;
    if !out.ok() {
        return Err(format!(
            "delete --force: {}: {}",
            out.exit,
            out.stderr.trim()
        ));
    }
    let mut left = Vec::new();
    if ctx.root.join(&id).exists() {
        left.push(format!("state directory {}", ctx.root.join(&id).display()));
    }
    if let Some(p) = init {
        if host::alive(p) {
            left.push(format!("init process {}", p.pid));
        }
    }
    // The kernel kills the rest of a pid namespace once its init is gone, not at once.
    if let Some(ns) = ns {
        if ctx
            .wait_until("the container's pid namespace to empty", || {
                pids_in_namespace(&ns).is_empty()
            })
            .is_err()
        {
            left.push(format!(
                "processes in the container's pid namespace: {}",
                describe(&pids_in_namespace(&ns))
            ));
        }
    }
    if ctx
        .wait_until("no process rooted in the bundle", || {
            host::processes_using(&b.dir).is_empty()
        })
        .is_err()
    {
        left.push(format!(
            "processes rooted in the bundle: {:?}",
            host::processes_using(&b.dir)
        ));
    }
    let mentioning = processes_mentioning(&id);
    if !mentioning.is_empty() {
        left.push(format!(
            "processes naming the id: {}",
            describe(&mentioning)
        ));
    }
    for cg in cgroups_named(&id) {
        left.push(format!("cgroup {}", cg.display()));
    }
    let after = tree(&b.rootfs);
    let extra: Vec<_> = after.difference(&before).collect();
    let missing: Vec<_> = before.difference(&after).collect();
    if !extra.is_empty() {
        left.push(format!("on the root filesystem: {extra:?}"));
    }
    if !missing.is_empty() {
        left.push(format!("removed from the root filesystem: {missing:?}"));
    }
    if left.is_empty() {
        Ok(died)
    } else {
        Err(format!(
            "{id} (command {}): {}",
            if died { "killed" } else { "finished" },
            left.join("; ")
        ))
    }
}

/// Mount points create must make on the root filesystem (a directory chain, a file bind
/// mount point) and, with `limits`, a limit, so that there is a cgroup to leak.
fn dress(ctx: &Ctx, b: &mut Bundle, limits: bool) -> Result<(), String> {
    let file = ctx.path("bindfile");
    std::fs::write(&file, b"host file\n")
        .map_err(|e| format!("writing {}: {e}", file.display()))?;
    b.add_mount(json!({"destination": "/crash/a/b", "type": "tmpfs", "source": "tmpfs"}));
    b.add_mount(json!({"destination": "/etc/crash-file", "type": "bind",
        "source": file.to_string_lossy(), "options": ["bind", "ro"]}));
    if limits {
        b.config["linux"]["resources"] = json!({"pids": {"limit": 100}});
    }
    b.save()
}

#[cfg(target_os = "linux")]
use host::{pid_namespace, pids_in_namespace};

/// Other systems: the suite skips before it gets here (no /proc mount table).
#[cfg(not(target_os = "linux"))]
fn pid_namespace(_pid: i32) -> Option<String> {
    None
}

#[cfg(not(target_os = "linux"))]
fn pids_in_namespace(_ns: &str) -> Vec<i32> {
    Vec::new()
}

/// Live processes whose command line names `id` (a stockade command still running).
fn processes_mentioning(id: &str) -> Vec<i32> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let alive = host::proc_id(*pid).is_some_and(host::alive);
            alive && cmdline.split(|b| *b == 0).any(|arg| arg == id.as_bytes())
        })
        .collect()
}

/// `pid (comm) state` of each pid, for a message.
fn describe(pids: &[i32]) -> String {
    pids.iter()
        .map(|p| {
            let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            let state = stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .next()
                .unwrap_or("?")
                .to_string();
            format!("{p} ({}) {state}", comm.trim())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every path under `root` (not following links).
fn tree(root: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.filter_map(|e| e.ok()) {
            let p = e.path();
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                stack.push(p.clone());
            }
            out.insert(p.strip_prefix(root).unwrap_or(&p).to_path_buf());
        }
    }
    out
}

/// cgroup directories named after the container (v2 and v1 layouts).
fn cgroups_named(id: &str) -> Vec<PathBuf> {
    let base = Path::new("/sys/fs/cgroup");
    let mut found = Vec::new();
    let mut candidates = vec![base.join("stockade").join(id)];
    if let Ok(rd) = std::fs::read_dir(base) {
        for e in rd.filter_map(|e| e.ok()) {
            candidates.push(e.path().join("stockade").join(id));
        }
    }
    for c in candidates {
        if c.is_dir() {
            found.push(c);
        }
    }
    found
}

fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// xorshift64: enough to spread kill instants; no crate needed.
fn next_random(state: &mut u64) -> u64 {
    let mut x = (*state).max(1);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    x
}
