//! The container process's settings as seen from inside: user, groups, cwd, env, rlimits,
//! umask, hostname, noNewPrivileges, preserved fds, args looked up in the container's PATH.

use serde_json::json;

use crate::bundle::{Bundle, DEFAULT_HOSTNAME, DEFAULT_PATH};
use crate::ctx::Ctx;
use crate::harness::{Test, TestResult};
use crate::rootfs;
use crate::stockade::HOST_ENV_MARKER;

pub fn tests() -> Vec<Test> {
    vec![
        test!(
            "process",
            process_runs_as_configured_uid_gid_and_additional_gids
        ),
        test!("process", process_starts_in_the_configured_cwd),
        test!("process", process_env_is_the_configured_environment_only),
        test!("process", process_args_are_looked_up_in_the_container_path),
        test!("process", process_sees_its_args_unchanged),
        test!("process", rlimit_nofile_is_applied),
        test!("process", umask_is_applied),
        test!("process", hostname_is_set_inside_and_the_host_keeps_its_own),
        test!("process", no_new_privileges_is_set),
        test!("process", preserve_fds_passes_extra_fds_to_the_process),
    ]
}

/// Runs the bundle to completion and returns what the process printed on stdout.
fn output_of(ctx: &Ctx, name: &str, b: &Bundle) -> Result<String, crate::harness::Fail> {
    ctx.run_to_stop(name, b).map(|(text, _)| text)
}

/// The value of a `Key:` line of /proc/self/status as printed by the container.
fn status_field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .map(str::trim)
}

fn process_runs_as_configured_uid_gid_and_additional_gids(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle(&[
        "sh",
        "-c",
        "echo \"id=$(id -u):$(id -g)\"; cat /proc/self/status",
    ])?;
    b.process()["user"] = json!({
        "uid": rootfs::USER_UID,
        "gid": rootfs::USER_GID,
        "additionalGids": rootfs::EXTRA_GIDS,
    });
    let text = output_of(ctx, "user", &b)?;
    ensure!(text.contains("id=1000:1000"), "id -u/-g inside: {text:?}");
    let uid = status_field(&text, "Uid").ok_or("no Uid line")?;
    ensure_eq!(
        uid.split_whitespace().collect::<Vec<_>>(),
        vec!["1000"; 4],
        "Uid (real, effective, saved, fs)"
    );
    let gid = status_field(&text, "Gid").ok_or("no Gid line")?;
    ensure_eq!(
        gid.split_whitespace().collect::<Vec<_>>(),
        vec!["1000"; 4],
        "Gid (real, effective, saved, fs)"
    );
    let mut groups: Vec<u32> = status_field(&text, "Groups")
        .ok_or("no Groups line")?
        .split_whitespace()
        .filter_map(|g| g.parse().ok())
        .collect();
    groups.sort_unstable();
    groups.retain(|g| *g != rootfs::USER_GID);
    ensure_eq!(
        groups,
        rootfs::EXTRA_GIDS.to_vec(),
        "supplementary groups (besides the primary)"
    );
    Ok(())
}

fn process_starts_in_the_configured_cwd(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle(&["pwd"])?;
    b.process()["cwd"] = json!("/home/user");
    let text = output_of(ctx, "cwd", &b)?;
    ensure_eq!(text.trim(), "/home/user", "pwd inside");
    Ok(())
}

fn process_env_is_the_configured_environment_only(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle(&["env"])?;
    b.process()["env"] = json!([DEFAULT_PATH, "FOO=bar", "SPACED=a b c", "EMPTY="]);
    let text = output_of(ctx, "env", &b)?;
    let lines: Vec<&str> = text.lines().collect();
    for want in [DEFAULT_PATH, "FOO=bar", "SPACED=a b c", "EMPTY="] {
        ensure!(lines.contains(&want), "env lacks {want:?}: {lines:?}");
    }
    ensure!(
        !text.contains(HOST_ENV_MARKER),
        "the runtime's own environment leaked into the container: {lines:?}"
    );
    Ok(())
}

fn process_args_are_looked_up_in_the_container_path(ctx: &Ctx) -> TestResult {
    let b = ctx.bundle(&["only-in-this-rootfs", "first-arg"])?;
    rootfs::script(
        &b.rootfs,
        "usr/local/bin/only-in-this-rootfs",
        "echo \"found-in-container-path $1\"",
    )?;
    let text = output_of(ctx, "pathlookup", &b)?;
    ensure!(
        text.contains("found-in-container-path first-arg"),
        "the entrypoint was not run from the container's PATH: {text:?}"
    );
    Ok(())
}

fn process_sees_its_args_unchanged(ctx: &Ctx) -> TestResult {
    let b = ctx.bundle(&[
        "sh",
        "-c",
        "for a in \"$@\"; do echo \"[$a]\"; done",
        "argv0",
        "with space",
        "",
        "*",
        "$HOME",
    ])?;
    let text = output_of(ctx, "args", &b)?;
    ensure_eq!(
        text,
        "[with space]\n[]\n[*]\n[$HOME]\n",
        "arguments as the process sees them"
    );
    Ok(())
}

fn rlimit_nofile_is_applied(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle(&[
        "sh",
        "-c",
        "ulimit -n; ulimit -Hn; grep 'Max open files' /proc/self/limits",
    ])?;
    b.process()["rlimits"] = json!([{ "type": "RLIMIT_NOFILE", "soft": 777, "hard": 888 }]);
    let text = output_of(ctx, "rlimit", &b)?;
    let lines: Vec<&str> = text.lines().collect();
    ensure!(lines.len() >= 3, "unexpected output {text:?}");
    ensure_eq!(lines[0].trim(), "777", "ulimit -n (soft)");
    ensure_eq!(lines[1].trim(), "888", "ulimit -Hn (hard)");
    let limits: Vec<&str> = lines[2].split_whitespace().collect();
    ensure!(
        limits.len() >= 5 && limits[3] == "777" && limits[4] == "888",
        "/proc/self/limits says {:?}",
        lines[2]
    );
    Ok(())
}

fn umask_is_applied(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle(&["sh", "-c", "umask; grep Umask /proc/self/status"])?;
    b.process()["user"]["umask"] = json!(0o027);
    let text = output_of(ctx, "umask", &b)?;
    let lines: Vec<&str> = text.lines().collect();
    ensure_eq!(
        lines.first().map(|l| l.trim()),
        Some("0027"),
        "umask inside"
    );
    ensure_eq!(
        status_field(&text, "Umask"),
        Some("0027"),
        "Umask in /proc/self/status"
    );
    Ok(())
}

fn hostname_is_set_inside_and_the_host_keeps_its_own(ctx: &Ctx) -> TestResult {
    let host_before = hostname();
    let mut b = ctx.bundle(&["hostname"])?;
    b.config["hostname"] = json!("configured-host");
    let text = output_of(ctx, "hostname", &b)?;
    ensure_eq!(text.trim(), "configured-host", "hostname inside");
    ensure_eq!(hostname(), host_before, "the host's hostname");
    ensure!(
        host_before != DEFAULT_HOSTNAME,
        "the host is named like the test default"
    );
    Ok(())
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return String::new();
    }
    let end = buf.iter().position(|&c| c == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

fn no_new_privileges_is_set(ctx: &Ctx) -> TestResult {
    if !cfg!(target_os = "linux") {
        return Err(crate::harness::Fail::Skip(
            "noNewPrivileges is Linux-only".into(),
        ));
    }
    let mut b = ctx.bundle(&["grep", "NoNewPrivs", "/proc/self/status"])?;
    b.process()["noNewPrivileges"] = json!(true);
    let text = output_of(ctx, "nnp", &b)?;
    ensure_eq!(status_field(&text, "NoNewPrivs"), Some("1"), "NoNewPrivs");
    Ok(())
}

fn preserve_fds_passes_extra_fds_to_the_process(ctx: &Ctx) -> TestResult {
    let b = ctx.bundle(&["sh", "-c", "echo through-fd-3 >&3; echo through-fd-4 >&4"])?;
    b.save()?;
    let id = ctx.id("fds");
    ctx.track(&id);
    let f3 = ctx.path("fd3");
    let f4 = ctx.path("fd4");
    let open = |p: &std::path::Path| {
        std::fs::File::create(p)
            .map(std::os::fd::OwnedFd::from)
            .map_err(|e| format!("creating {}: {e}", p.display()))
    };
    let out = ctx
        .sk(&[
            "create",
            "--preserve-fds",
            "2",
            "--bundle",
            &b.dir.to_string_lossy(),
            &id,
        ])
        .extra_fd(open(&f3)?)
        .extra_fd(open(&f4)?)
        .run()?
        .expect_ok()?;
    ctx.start_ok(&id)?;
    ctx.wait_status(&id, "stopped")?;
    ctx.note(format!("container stderr: {:?}", out.stderr_now()));
    let (t3, t4) = (crate::ctx::read_text(&f3), crate::ctx::read_text(&f4));
    ensure_eq!(t3.trim(), "through-fd-3", "what fd 3 received");
    ensure_eq!(t4.trim(), "through-fd-4", "what fd 4 received");
    Ok(())
}
