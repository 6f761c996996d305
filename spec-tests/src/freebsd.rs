//! The FreeBSD profile (`--group freebsd`): checks that only make sense in a jail. Bundles
//! come from `stockade spec` (devfs at /dev with ruleset 4, fdescfs at /dev/fd) with the
//! host's statically linked /rescue mounted read-only as the container's tools, so no
//! busybox is needed. On other systems every test here is skipped.

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

use crate::bundle::Bundle;
use crate::ctx::{read_text, Ctx, STATUS_TIMEOUT};
use crate::harness::{Fail, Test, TestResult};

pub fn tests() -> Vec<Test> {
    vec![
        test!(
            "freebsd",
            jail_parameters_hostname_and_mounts_are_seen_from_inside
        ),
        test!("freebsd", dev_hides_what_ruleset_4_hides),
        test!("freebsd", freebsd_devices_unhide_only_what_is_listed),
        test!(
            "freebsd",
            a_running_jail_has_its_devfs_ruleset_limits_exec_ps_and_kill_all
        ),
        test!("freebsd", hooks_run_in_order_around_a_jailed_process),
        test!(
            "freebsd",
            a_terminal_in_the_jail_arrives_over_the_console_socket
        ),
    ]
}

/// Skips off FreeBSD and without root.
fn only_freebsd() -> TestResult {
    if !cfg!(target_os = "freebsd") {
        return Err(Fail::Skip("a FreeBSD jail check".into()));
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(Fail::Skip("jails need root".into()));
    }
    Ok(())
}

/// A bundle from `stockade spec` whose process runs `script` with /rescue/sh.
fn bundle(ctx: &Ctx, script: &str) -> Result<Bundle, Fail> {
    only_freebsd()?;
    let dir = ctx.path("bundle");
    let rootfs = dir.join("rootfs");
    for d in ["rescue", "dev", "tmp"] {
        std::fs::create_dir_all(rootfs.join(d)).map_err(|e| format!("mkdir {d}: {e}"))?;
    }
    let dir_arg = dir.to_string_lossy().into_owned();
    ctx.sk(&["spec", "--bundle", dir_arg.as_str()])
        .run()?
        .expect_ok()?;
    let mut config: Value = serde_json::from_str(&read_text(&dir.join("config.json")))
        .map_err(|e| format!("stockade spec wrote no JSON: {e}"))?;
    config["process"]["args"] = json!(["/rescue/sh", "-c", script]);
    config["process"]["env"] = json!(["PATH=/rescue", "TERM=xterm"]);
    if let Some(m) = config["mounts"].as_array_mut() {
        m.push(
            json!({"destination": "/rescue", "type": "nullfs", "source": "/rescue",
                      "options": ["ro"]}),
        );
    }
    let b = Bundle {
        dir,
        rootfs,
        config,
    };
    b.save()?;
    Ok(b)
}

/// A host command's stdout; a failure is a test failure naming it.
fn host(prog: &str, args: &[&str]) -> Result<String, Fail> {
    let out = Command::new(prog)
        .args(args)
        .output()
        .map_err(|e| format!("{prog}: {e}"))?;
    if !out.status.success() {
        return Err(Fail::Fail(format!(
            "{prog} {args:?}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn jail_parameters_hostname_and_mounts_are_seen_from_inside(ctx: &Ctx) -> TestResult {
    let b = bundle(
        ctx,
        "hostname; sysctl -n security.jail.jailed; sysctl -n security.jail.enforce_statfs; mount -p",
    )?;
    let (out, _) = ctx.run_to_stop("inside", &b)?;
    let lines: Vec<&str> = out.lines().collect();
    ensure!(lines.len() >= 4, "too little output: {out:?}");
    ensure_eq!(lines[0], "stockade", "hostname inside the jail");
    ensure_eq!(lines[1], "1", "security.jail.jailed inside the jail");
    ensure_eq!(
        lines[2],
        "2",
        "security.jail.enforce_statfs inside the jail"
    );
    let mounts = lines[3..].join("\n");
    for (fs, on) in [
        ("devfs", "/dev"),
        ("fdescfs", "/dev/fd"),
        ("nullfs", "/rescue"),
    ] {
        ensure!(
            mounts
                .lines()
                .any(|l| l.split_whitespace().take(3).collect::<Vec<_>>()[1..] == [on, fs]),
            "no {fs} on {on} in mount -p: {mounts}"
        );
    }
    Ok(())
}

/// Nodes ruleset 1 hides and 2, 3 and 4 never unhide, which every FreeBSD host has.
const HIDDEN: &[&str] = &["mem", "kmem", "io", "devctl", "ctty"];

fn dev_nodes(ctx: &Ctx, b: &Bundle) -> Result<Vec<String>, Fail> {
    let (out, _) = ctx.run_to_stop("dev", b)?;
    Ok(out.split_whitespace().map(String::from).collect())
}

fn dev_hides_what_ruleset_4_hides(ctx: &Ctx) -> TestResult {
    let b = bundle(ctx, "ls /dev")?;
    let nodes = dev_nodes(ctx, &b)?;
    for shown in ["null", "zero", "random", "urandom", "stdin", "fd", "pts"] {
        ensure!(
            nodes.iter().any(|n| n == shown),
            "/dev has no {shown}: {nodes:?}"
        );
    }
    for hidden in HIDDEN {
        ensure!(
            !nodes.iter().any(|n| n == hidden),
            "/dev shows {hidden}: {nodes:?}"
        );
    }
    Ok(())
}

fn freebsd_devices_unhide_only_what_is_listed(ctx: &Ctx) -> TestResult {
    let mut b = bundle(ctx, "ls /dev")?;
    b.config["freebsd"]["devices"] = json!([{"path": "ctty"}]);
    b.save()?;
    let nodes = dev_nodes(ctx, &b)?;
    ensure!(
        nodes.iter().any(|n| n == "ctty"),
        "ctty not unhidden: {nodes:?}"
    );
    ensure!(
        nodes.iter().any(|n| n == "null"),
        "the base rules are lost: {nodes:?}"
    );
    for hidden in HIDDEN.iter().filter(|h| **h != "ctty") {
        ensure!(
            !nodes.iter().any(|n| n == hidden),
            "/dev shows {hidden} (the base ruleset's hide rules were not applied): {nodes:?}"
        );
    }
    Ok(())
}

fn racct_enabled() -> bool {
    host("/sbin/sysctl", &["-n", "kern.racct.enable"]).is_ok_and(|v| v.trim() == "1")
}

fn a_running_jail_has_its_devfs_ruleset_limits_exec_ps_and_kill_all(ctx: &Ctx) -> TestResult {
    let mut b = bundle(ctx, "exec sleep 1000")?;
    let racct = racct_enabled();
    if racct {
        b.config["linux"] = json!({"resources": {"pids": {"limit": 32}}});
        b.save()?;
    }
    let id = ctx.id("jail");
    ctx.create_start(&id, &b)?;
    // The jail's own devfs_ruleset is its /dev's, so jailed root cannot mount a full /dev.
    let rs = host("/usr/sbin/jls", &["-j", &id, "devfs_ruleset"])?;
    ensure_eq!(rs.trim(), "4", "devfs_ruleset of the jail");
    if racct {
        let rules = host("/usr/bin/rctl", &[&format!("jail:{id}")])?;
        ensure!(
            rules.contains(&format!("jail:{id}:maxproc:deny=32")),
            "rctl lists no maxproc rule: {rules}"
        );
        let usage = host("/usr/bin/rctl", &["-u", &format!("jail:{id}")])?;
        ensure!(usage.contains("maxproc=1"), "rctl -u: {usage}");
    } else {
        ctx.note("kern.racct.enable is 0: limits not checked");
    }
    ctx.sk(&["exec", "--detach", &id, "/rescue/sleep", "1000"])
        .run()?
        .expect_ok()?;
    let ps = ctx
        .sk(&["ps", "--format", "json", &id])
        .run()?
        .expect_ok()?;
    let listed: Value = serde_json::from_str(&ps.stdout)
        .map_err(|e| format!("ps --format json is not JSON ({e}): {:?}", ps.stdout))?;
    ensure_eq!(
        listed.as_array().map_or(0, |a| a.len()),
        2,
        "processes listed by ps: {listed}"
    );
    ctx.sk(&["kill", "--all", &id, "KILL"]).run()?.expect_ok()?;
    ctx.wait_status(&id, "stopped")?;
    ctx.sk(&["delete", &id]).run()?.expect_ok()?;
    ensure!(
        host("/usr/sbin/jls", &["-j", &id]).is_err(),
        "the jail is still there after delete"
    );
    if racct {
        let left = host("/usr/bin/rctl", &[&format!("jail:{id}")])?;
        ensure!(left.trim().is_empty(), "rules left after delete: {left}");
    }
    ensure!(
        !Path::new(&b.rootfs).join("rescue/sh").exists(),
        "the /rescue nullfs is still mounted in the root after delete"
    );
    Ok(())
}

fn hooks_run_in_order_around_a_jailed_process(ctx: &Ctx) -> TestResult {
    let mut b = bundle(ctx, "echo process >> /hooklog/order")?;
    let log = ctx.path("hooklog");
    std::fs::create_dir(&log).map_err(|e| format!("mkdir {}: {e}", log.display()))?;
    std::fs::create_dir_all(b.rootfs.join("hooklog")).map_err(|e| format!("mkdir: {e}"))?;
    b.config["mounts"]
        .as_array_mut()
        .ok_or("no mounts")?
        .push(json!({"destination": "/hooklog", "type": "nullfs",
                     "source": log.to_string_lossy()}));
    let host_hook = |phase: &str| {
        json!({"path": "/bin/sh", "args": ["sh", "-c",
               format!("cat > {0}/{phase}.json; echo {phase} >> {0}/order", log.display())]})
    };
    b.config["hooks"] = json!({
        "prestart": [host_hook("prestart")],
        "createRuntime": [host_hook("createRuntime")],
        "createContainer": [host_hook("createContainer")],
        // Inside the jail, after jail_attach: the jail's own tools.
        "startContainer": [{"path": "/rescue/sh",
                            "args": ["sh", "-c", "echo startContainer >> /hooklog/order"]}],
        "poststart": [host_hook("poststart")],
        "poststop": [host_hook("poststop")]
    });
    b.save()?;
    let (_, id) = ctx.run_to_stop("hooks", &b)?;
    ctx.sk(&["delete", &id]).run()?.expect_ok()?;
    let order: Vec<String> = read_text(&log.join("order"))
        .lines()
        .map(str::to_string)
        .collect();
    ensure_eq!(order.len(), 7, "entries in {order:?}");
    ensure_eq!(
        order[..4].to_vec(),
        vec![
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer"
        ],
        "first four"
    );
    let mut middle = order[4..6].to_vec();
    middle.sort();
    ensure_eq!(middle, vec!["poststart", "process"], "then, in any order");
    ensure_eq!(order[6].as_str(), "poststop", "last");
    let state: Value = serde_json::from_str(&read_text(&log.join("createRuntime.json")))
        .map_err(|e| format!("createRuntime got no state JSON: {e}"))?;
    ensure_eq!(
        state["id"].as_str(),
        Some(id.as_str()),
        "state id on the hook's stdin"
    );
    Ok(())
}

fn a_terminal_in_the_jail_arrives_over_the_console_socket(ctx: &Ctx) -> TestResult {
    use crate::terminal::{accept_within, console_socket, read_master, recv_fd};
    let mut b = bundle(ctx, "tty; echo hello-from-the-jail")?;
    b.config["process"]["terminal"] = json!(true);
    b.save()?;
    let id = ctx.id("tty");
    let (listener, sock) = console_socket(ctx)?;
    ctx.track(&id);
    let pending = ctx
        .sk(&[
            "create",
            "--bundle",
            &b.dir.to_string_lossy(),
            "--console-socket",
            &sock.to_string_lossy(),
            &id,
        ])
        .spawn()?;
    let received =
        accept_within(&listener, STATUS_TIMEOUT).and_then(|s| recv_fd(&s, STATUS_TIMEOUT));
    pending.wait()?.expect_ok()?;
    let (master, _) = received?;
    ctx.start_ok(&id)?;
    let text = read_master(master, STATUS_TIMEOUT)?;
    ctx.wait_status(&id, "stopped")?;
    ensure!(
        text.contains("hello-from-the-jail"),
        "the pty did not carry the output: {text:?}"
    );
    ensure!(
        text.lines()
            .next()
            .is_some_and(|l| l.starts_with("/dev/pts/")),
        "stdin is not the jail's pts: {text:?}"
    );
    ctx.sk(&["delete", &id]).run()?.expect_ok()?;
    Ok(())
}
