//! Resource limits from `linux.resources`: memory, memory+swap, pids and CPU quota are
//! enforced (cgroups on Linux, rctl rules on the jail on FreeBSD) for the init and for
//! exec'd processes, and removed on delete; values that contradict each other fail create.

use serde_json::{json, Value};

#[cfg(target_os = "linux")]
use crate::ctx::read_text;
use crate::ctx::Ctx;
#[cfg(not(target_os = "freebsd"))]
use crate::harness::Fail;
use crate::harness::{Test, TestResult};

pub fn tests() -> Vec<Test> {
    vec![
        test!(
            "limits",
            limits_hold_for_init_and_exec_and_go_away_on_delete
        ),
        test!("limits", a_pids_limit_stops_forks_beyond_it),
        test!(
            "limits",
            update_changes_adds_and_lifts_limits_of_a_live_container
        ),
        test!(
            "limits",
            contradictory_or_unplaceable_limits_fail_create_leaving_nothing
        ),
    ]
}

const MEMORY: u64 = 64 << 20;
const MEMORY_AND_SWAP: u64 = 96 << 20;

fn resources(pids: u64) -> Value {
    json!({
        "memory": { "limit": MEMORY, "swap": MEMORY_AND_SWAP },
        "pids": { "limit": pids },
        "cpu": { "quota": 50000, "period": 100000 },
        "devices": [{ "allow": false, "access": "rwm" }]
    })
}

/// Where each cgroup controller is mounted on this host (v1 by controller name, v2 as
/// "unified"), from /proc/self/mountinfo.
#[cfg(target_os = "linux")]
fn cgroup_mounts() -> Vec<(String, String)> {
    let text = read_text(std::path::Path::new("/proc/self/mountinfo"));
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let Some(mount) = left.split(' ').nth(4) else {
            continue;
        };
        let fields: Vec<&str> = right.split(' ').collect();
        match fields.as_slice() {
            ["cgroup", _, opts, ..] => {
                for o in opts.split(',') {
                    out.push((o.to_string(), mount.to_string()));
                }
            }
            ["cgroup2", ..] => out.push(("unified".into(), mount.to_string())),
            _ => {}
        }
    }
    out
}

/// Skips unless the host has `controllers` mounted (v1, or enabled in the v2 root), as
/// stockade needs them to enforce the limits these tests set.
#[cfg(target_os = "linux")]
fn require_controllers(controllers: &[&str]) -> Result<(), Fail> {
    let mounts = cgroup_mounts();
    let v2 = mounts
        .iter()
        .find(|(c, _)| c == "unified")
        .map(|(_, m)| read_text(std::path::Path::new(&format!("{m}/cgroup.controllers"))))
        .unwrap_or_default();
    for c in controllers {
        if !mounts.iter().any(|(o, _)| o == c) && !v2.split_whitespace().any(|x| x == *c) {
            return Err(Fail::Skip(format!(
                "this host has no {c} cgroup controller mounted"
            )));
        }
    }
    Ok(())
}

/// The host directory of `pid`'s cgroup for `controller`: (directory, is v2).
#[cfg(target_os = "linux")]
pub fn cgroup_dir_of(pid: i32, controller: &str) -> Result<(String, bool), Fail> {
    let mounts = cgroup_mounts();
    let membership = read_text(std::path::Path::new(&format!("/proc/{pid}/cgroup")));
    if let Some((_, mount)) = mounts.iter().find(|(c, _)| c == controller) {
        let path = membership
            .lines()
            .find_map(|l| {
                let mut f = l.splitn(3, ':');
                let (_, list, path) = (f.next()?, f.next()?, f.next()?);
                list.split(',')
                    .any(|c| c == controller)
                    .then(|| path.to_string())
            })
            .ok_or_else(|| format!("pid {pid} has no {controller} cgroup: {membership}"))?;
        return Ok((format!("{mount}{path}"), false));
    }
    let (_, mount) = mounts
        .iter()
        .find(|(c, _)| c == "unified")
        .ok_or_else(|| Fail::Skip(format!("no {controller} cgroup controller on this host")))?;
    let listed = read_text(std::path::Path::new(&format!("{mount}/cgroup.controllers")));
    if !listed.split_whitespace().any(|c| c == controller) {
        return Err(Fail::Skip(format!(
            "no {controller} cgroup controller on this host"
        )));
    }
    let path = membership
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or_else(|| format!("pid {pid} has no v2 cgroup: {membership}"))?;
    Ok((format!("{mount}{path}"), true))
}

/// Every limit file as the host sees it for `pid`, one `name=value` per limit.
#[cfg(target_os = "linux")]
fn limits_of(pid: i32) -> Result<(Vec<String>, Vec<String>), Fail> {
    let mut seen = Vec::new();
    let mut dirs = Vec::new();
    let read = |dir: &str, f: &str| read_text(std::path::Path::new(&format!("{dir}/{f}")));
    let (mem, v2) = cgroup_dir_of(pid, "memory")?;
    if v2 {
        seen.push(format!("memory={}", read(&mem, "memory.max").trim()));
    } else {
        seen.push(format!(
            "memory={}",
            read(&mem, "memory.limit_in_bytes").trim()
        ));
    }
    dirs.push(mem);
    let (pids, _) = cgroup_dir_of(pid, "pids")?;
    seen.push(format!("pids={}", read(&pids, "pids.max").trim()));
    dirs.push(pids);
    let (cpu, v2) = cgroup_dir_of(pid, "cpu")?;
    if v2 {
        seen.push(format!(
            "cpu={}",
            read(&cpu, "cpu.max").trim().replace(' ', "/")
        ));
    } else {
        seen.push(format!(
            "cpu={}/{}",
            read(&cpu, "cpu.cfs_quota_us").trim(),
            read(&cpu, "cpu.cfs_period_us").trim()
        ));
    }
    dirs.push(cpu);
    Ok((seen, dirs))
}

#[cfg(target_os = "linux")]
fn limits_hold_for_init_and_exec_and_go_away_on_delete(ctx: &Ctx) -> TestResult {
    require_controllers(&["memory", "pids", "cpu"])?;
    let mut b = ctx.bundle(&["sleep", "1000"])?;
    let id = ctx.id("limits");
    let cgroups_path = format!("/stockade-spec/{id}");
    b.config["linux"]["resources"] = resources(64);
    b.config["linux"]["cgroupsPath"] = json!(cgroups_path);
    if let Some(ns) = b.config["linux"]["namespaces"].as_array_mut() {
        ns.push(json!({ "type": "cgroup" }));
    }
    b.add_mount(json!({
        "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
        "options": ["nosuid", "noexec", "nodev", "ro"]
    }));
    b.save()?;
    let created = ctx.create_ok(&id, &b)?;
    ctx.note(format!("create stderr: {:?}", created.stderr));
    let init = ctx.pid(&id)?;
    let (seen, dirs) = limits_of(init)?;
    ensure_eq!(
        seen,
        vec![
            format!("memory={MEMORY}"),
            "pids=64".to_string(),
            "cpu=50000/100000".to_string()
        ],
        "limits of the init's cgroups"
    );
    for d in &dirs {
        ensure!(
            d.ends_with(&cgroups_path),
            "the init's cgroup {d} is not at linux.cgroupsPath {cgroups_path}"
        );
    }
    // Linux enforces device rules (a cgroup device filter: see confine_ns); FreeBSD names
    // them in a warning.
    ensure!(
        created.stderr.contains("linux.resources.devices") == cfg!(target_os = "freebsd"),
        "the device rules are named in a warning exactly where they are not enforced: {:?}",
        created.stderr
    );
    ctx.start_ok(&id)?;
    let exec_pid = ctx.exec_detached(&id, &["sleep", "999"])?;
    let (_, exec_dirs) = limits_of(exec_pid)?;
    ensure_eq!(exec_dirs, dirs, "cgroups of an exec'd process");
    // The cgroup namespace is rooted at the container's own cgroups, for the init and
    // for exec alike: a process inside sees "/" as its cgroup in every hierarchy.
    let inside = ctx
        .sk(&["exec", &id, "cat", "/proc/self/cgroup"])
        .run()?
        .expect_ok()?
        .stdout;
    // A mount of type cgroup shows the container its own cgroups, limits at the top.
    let mounted = ctx
        .sk(&[
            "exec",
            &id,
            "sh",
            "-c",
            "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory/memory.max \
             /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/pids.max 2>/dev/null",
        ])
        .run()?
        .stdout;
    let values: Vec<&str> = mounted.lines().map(str::trim).collect();
    ensure_eq!(
        values,
        vec![MEMORY.to_string().as_str(), "64"],
        "memory and pids limits read inside at /sys/fs/cgroup"
    );
    // v2: one "0::PATH" line.
    if let Some(line) = inside.lines().find(|l| l.starts_with("0::")) {
        let v1_too = inside.lines().any(|l| !l.starts_with("0::"));
        ensure!(
            v1_too || line == "0::/",
            "inside the container its v2 cgroup is not the namespace root: {inside}"
        );
    }
    for controller in ["memory", "pids", "cpu"] {
        let line = inside.lines().find(|l| {
            l.split(':')
                .nth(1)
                .is_some_and(|list| list.split(',').any(|c| c == controller))
        });
        if let Some(line) = line {
            ensure!(
                line.ends_with(":/"),
                "inside the container the {controller} cgroup is not the namespace root: {inside}"
            );
        }
    }
    ctx.sk(&["delete", "--force", &id]).run()?.expect_ok()?;
    for d in &dirs {
        ensure!(
            !std::path::Path::new(d).exists(),
            "cgroup {d} is still there after delete"
        );
    }
    remove_spec_parents();
    Ok(())
}

/// stockade leaves parent cgroups (other containers may share them); the tests' own
/// parent goes once empty (rmdir fails while another test still uses it).
#[cfg(target_os = "linux")]
fn remove_spec_parents() {
    for (_, mount) in cgroup_mounts() {
        let _ = std::fs::remove_dir(format!("{mount}/stockade-spec"));
    }
}

#[cfg(not(target_os = "linux"))]
fn remove_spec_parents() {}

#[cfg(target_os = "freebsd")]
fn limits_hold_for_init_and_exec_and_go_away_on_delete(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle(&["sleep", "1000"])?;
    let id = ctx.id("limits");
    b.config["linux"]["resources"] = resources(64);
    b.save()?;
    ctx.create_ok(&id, &b)?;
    let rules = std::process::Command::new("/usr/bin/rctl")
        .arg(format!("jail:{id}"))
        .output()
        .map_err(|e| format!("rctl: {e}"))?;
    let rules = String::from_utf8_lossy(&rules.stdout).to_string();
    for want in [
        format!("jail:{id}:memoryuse:deny={MEMORY}"),
        format!("jail:{id}:swapuse:deny={MEMORY_AND_SWAP}"),
        format!("jail:{id}:maxproc:deny=64"),
        format!("jail:{id}:pcpu:deny=50"),
    ] {
        ensure!(rules.contains(&want), "rctl lists no {want}: {rules}");
    }
    ctx.sk(&["delete", "--force", &id]).run()?.expect_ok()?;
    let after = std::process::Command::new("/usr/bin/rctl")
        .arg(format!("jail:{id}"))
        .output()
        .map_err(|e| format!("rctl: {e}"))?;
    ensure!(
        String::from_utf8_lossy(&after.stdout).trim().is_empty(),
        "rules left after delete"
    );
    Ok(())
}

#[cfg(not(any(target_os = "linux", target_os = "freebsd")))]
fn limits_hold_for_init_and_exec_and_go_away_on_delete(_ctx: &Ctx) -> TestResult {
    Err(Fail::Skip(
        "resource limits are checked on Linux and FreeBSD only".into(),
    ))
}

fn a_pids_limit_stops_forks_beyond_it(ctx: &Ctx) -> TestResult {
    #[cfg(target_os = "linux")]
    require_controllers(&["pids"])?;
    // Twelve background sleeps under a limit of eight processes: some forks must fail,
    // and the shell says so.
    let mut b = ctx.bundle(&[
        "sh",
        "-c",
        "n=0; for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 30 & n=$((n+1)); done; echo started $n",
    ])?;
    let id = ctx.id("pidsmax");
    b.config["linux"]["resources"] = json!({ "pids": { "limit": 8 } });
    b.config["linux"]["cgroupsPath"] = json!(format!("/stockade-spec/{id}"));
    b.save()?;
    let out = ctx.create_start(&id, &b)?;
    ctx.wait_status(&id, "stopped")?;
    let stderr = out.stderr_now();
    ctx.note(format!("stdout {:?} stderr {stderr:?}", out.stdout_now()));
    ensure!(
        stderr.contains("fork") || stderr.contains("Resource temporarily unavailable"),
        "forks beyond pids.limit 8 were not refused; stderr: {stderr:?}"
    );
    ensure!(
        !out.stdout_now().contains("started 12"),
        "all twelve forks succeeded under pids.limit 8"
    );
    ctx.sk(&["delete", &id]).run()?.expect_ok()?;
    remove_spec_parents();
    Ok(())
}

fn contradictory_or_unplaceable_limits_fail_create_leaving_nothing(ctx: &Ctx) -> TestResult {
    let cases: Vec<(Value, Option<&str>, &str)> = vec![
        (
            json!({ "memory": { "limit": MEMORY, "swap": MEMORY / 2 } }),
            None,
            "linux.resources.memory.swap",
        ),
        (
            json!({ "cpu": { "quota": 50000, "period": 5 } }),
            None,
            "linux.resources.cpu.period",
        ),
        #[cfg(target_os = "linux")]
        (
            json!({ "pids": { "limit": 10 } }),
            Some("/stockade-spec/../../escape"),
            "linux.cgroupsPath",
        ),
    ];
    for (i, (res, path, field)) in cases.into_iter().enumerate() {
        let mut b = ctx.bundle(&["true"])?;
        b.config["linux"]["resources"] = res;
        if let Some(p) = path {
            b.config["linux"]["cgroupsPath"] = json!(p);
        }
        b.save()?;
        let id = ctx.id(&format!("badlimits{i}"));
        let out = ctx.create(&id, &b)?;
        out.expect_failure(&format!("create with a bad {field}"))?;
        out.expect_stderr_contains(field)?;
        ctx.ensure_root_empty(&format!("after the refused create naming {field}"))?;
    }
    Ok(())
}

/// The pids and memory limits of `pid`'s cgroups as the host sees them (`None`: the
/// process is in no cgroup stockade made for that controller).
#[cfg(target_os = "linux")]
fn pids_and_memory(pid: i32, id: &str) -> Result<(Option<String>, Option<String>), Fail> {
    let read = |controller: &str, v1: &str, v2: &str| -> Result<Option<String>, Fail> {
        let (dir, is_v2) = cgroup_dir_of(pid, controller)?;
        if !dir.contains(id) {
            return Ok(None);
        }
        let file = if is_v2 { v2 } else { v1 };
        Ok(Some(
            read_text(std::path::Path::new(&format!("{dir}/{file}")))
                .trim()
                .to_string(),
        ))
    };
    Ok((
        read("pids", "pids.max", "pids.max")?,
        read("memory", "memory.limit_in_bytes", "memory.max")?,
    ))
}

#[cfg(target_os = "linux")]
fn update_changes_adds_and_lifts_limits_of_a_live_container(ctx: &Ctx) -> TestResult {
    require_controllers(&["memory", "pids"])?;
    // Created without limits: update makes the cgroups and moves every process in.
    let mut b = ctx.bundle(&["sleep", "1000"])?;
    let id = ctx.id("update");
    b.config["linux"]["cgroupsPath"] = json!(format!("/stockade-spec/{id}"));
    b.save()?;
    ctx.create_start(&id, &b)?;
    let init = ctx.pid(&id)?;
    let second = ctx.exec_detached(&id, &["sleep", "998"])?;
    ensure_eq!(
        pids_and_memory(init, &id)?,
        (None, None),
        "limits before update"
    );
    ctx.sk(&["update", "--pids-limit", "50", "--memory", "64m", &id])
        .run()?
        .expect_ok()?;
    ensure_eq!(
        pids_and_memory(init, &id)?,
        (Some("50".into()), Some(MEMORY.to_string())),
        "limits after update --pids-limit 50 --memory 64m"
    );
    ensure_eq!(
        pids_and_memory(second, &id)?,
        (Some("50".into()), Some(MEMORY.to_string())),
        "limits of an exec'd process moved in by update"
    );
    // As containerd sends it: linux.resources on stdin. Fields not given stay.
    ctx.sk(&["update", "--resources", "-", &id])
        .stdin_bytes(br#"{"memory":{"limit":134217728}}"#)
        .run()?
        .expect_ok()?;
    ensure_eq!(
        pids_and_memory(init, &id)?,
        (Some("50".into()), Some((128u64 << 20).to_string())),
        "limits after update --resources - with a new memory limit"
    );
    // -1 lifts a limit.
    ctx.sk(&["update", "--pids-limit", "-1", &id])
        .run()?
        .expect_ok()?;
    let (pids, _) = pids_and_memory(init, &id)?;
    ensure_eq!(
        pids.as_deref(),
        Some("max"),
        "pids.max after --pids-limit -1"
    );
    // A contradiction is refused and changes nothing.
    let out = ctx.sk(&["update", "--memory-swap", "1m", &id]).run()?;
    out.expect_failure("update with memory+swap below memory")?;
    out.expect_stderr_contains("linux.resources.memory.swap")?;
    ensure_eq!(
        pids_and_memory(init, &id)?.1,
        Some((128u64 << 20).to_string()),
        "memory limit after a refused update"
    );
    let state = ctx.sk(&["state", &id]).run()?.expect_ok()?.stdout;
    ensure!(
        state.contains("\"running\""),
        "still running after updates: {state}"
    );
    ctx.sk(&["kill", &id, "KILL"]).run()?.expect_ok()?;
    ctx.wait_status(&id, "stopped")?;
    let out = ctx.sk(&["update", "--pids-limit", "5", &id]).run()?;
    out.expect_failure("update of a stopped container")?;
    out.expect_stderr_contains("stopped")?;
    ctx.sk(&["delete", &id]).run()?.expect_ok()?;
    remove_spec_parents();
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn update_changes_adds_and_lifts_limits_of_a_live_container(ctx: &Ctx) -> TestResult {
    let b = ctx.bundle(&["sleep", "1000"])?;
    let id = ctx.id("update");
    ctx.create_start(&id, &b)?;
    ctx.sk(&["update", "--pids-limit", "50", &id])
        .run()?
        .expect_ok()?;
    let rules = std::process::Command::new("/usr/bin/rctl")
        .arg(format!("jail:{id}"))
        .output()
        .map_err(|e| format!("rctl: {e}"))?;
    let rules = String::from_utf8_lossy(&rules.stdout).to_string();
    ensure!(
        rules.contains(&format!("jail:{id}:maxproc:deny=50")),
        "rctl: {rules}"
    );
    ctx.sk(&["delete", "--force", &id]).run()?.expect_ok()?;
    Ok(())
}
