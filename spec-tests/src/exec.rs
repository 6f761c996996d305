//! `exec` (issue 4): foreground with the exit status, detached with a pid file, user, cwd,
//! env, a process file, and refusal when the container is not running.

use serde_json::json;

use crate::bundle::{DEFAULT_HOSTNAME, DEFAULT_PATH};
use crate::ctx::{read_text, Ctx};
use crate::harness::{Fail, Test, TestResult};
use crate::host;
use crate::procs::Exit;
use crate::rootfs;

pub fn tests() -> Vec<Test> {
    vec![
        test!(
            "exec",
            exec_runs_in_the_container_and_returns_the_exit_status
        ),
        test!("exec", exec_joins_the_container_pid_namespace),
        test!("exec", exec_passes_stdin_and_stdout_through),
        test!("exec", exec_detached_writes_the_pid_file_and_keeps_running),
        test!("exec", exec_with_user_additional_gids_and_cwd_flags),
        test!("exec", exec_env_flag_sets_variables),
        test!(
            "exec",
            exec_with_process_file_uses_its_args_env_cwd_and_user
        ),
        test!("exec", exec_into_created_container_fails_with_no_effect),
        test!("exec", exec_into_stopped_container_fails_with_no_effect),
        test!("exec", exec_of_unknown_id_says_does_not_exist),
    ]
}

/// A running container whose init sleeps; returns its id.
fn running(ctx: &Ctx) -> Result<(String, crate::bundle::Bundle), Fail> {
    let b = ctx.bundle(&["sleep", "1000"])?;
    let id = ctx.id("exec");
    ctx.create_start(&id, &b)?;
    Ok((id, b))
}

fn exec_runs_in_the_container_and_returns_the_exit_status(ctx: &Ctx) -> TestResult {
    let (id, _) = running(ctx)?;
    let out = ctx
        .sk(&[
            "exec",
            &id,
            "sh",
            "-c",
            &format!("cat /{}; hostname; exit 5", rootfs::MARKER_FILE),
        ])
        .run()?;
    ensure_eq!(out.exit, Exit::Code(5), "exit status of exec");
    ensure!(
        out.stdout.contains(rootfs::MARKER_TEXT),
        "exec did not see the container's root: {:?}",
        out.stdout
    );
    ensure!(
        out.stdout.contains(DEFAULT_HOSTNAME),
        "exec did not see the container's hostname: {:?}",
        out.stdout
    );
    ensure_eq!(ctx.status(&id)?, "running", "container status after exec");
    Ok(())
}

fn exec_joins_the_container_pid_namespace(ctx: &Ctx) -> TestResult {
    let (id, _) = running(ctx)?;
    let out = ctx
        .sk(&["exec", &id, "cat", "/proc/1/cmdline"])
        .run()?
        .expect_ok()?;
    ensure_eq!(
        out.stdout.replace('\0', " ").trim(),
        "sleep 1000",
        "pid 1 as exec sees it"
    );
    Ok(())
}

fn exec_passes_stdin_and_stdout_through(ctx: &Ctx) -> TestResult {
    let (id, _) = running(ctx)?;
    let out = ctx
        .sk(&["exec", &id, "cat"])
        .stdin_bytes(b"through exec\n")
        .run()?
        .expect_ok()?;
    ensure_eq!(out.stdout.as_str(), "through exec\n", "stdout of exec cat");
    Ok(())
}

fn exec_detached_writes_the_pid_file_and_keeps_running(ctx: &Ctx) -> TestResult {
    let (id, _) = running(ctx)?;
    let init = ctx.pid(&id)?;
    let pid_file = ctx.path("exec.pid");
    ctx.sk(&[
        "exec",
        "--detach",
        "--pid-file",
        &pid_file.to_string_lossy(),
        &id,
        "sleep",
        "999",
    ])
    .run()?
    .expect_ok()?;
    let text = read_text(&pid_file);
    ensure!(
        !text.is_empty() && text.bytes().all(|c| c.is_ascii_digit()),
        "pid file must be the decimal pid alone, no newline: {text:?}"
    );
    let pid: i32 = text.parse().map_err(|e| format!("pid file: {e}"))?;
    let p = host::proc_id(pid).ok_or_else(|| format!("exec'd pid {pid} is not alive"))?;
    ensure!(host::alive(p), "exec'd pid {pid} is not alive");
    #[cfg(target_os = "linux")]
    ensure_eq!(
        host::pid_namespace(pid),
        host::pid_namespace(init),
        "pid namespace of the exec'd process"
    );
    let _ = init;
    // SAFETY: kill(2) of the pid exec just reported, checked alive above.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    Ok(())
}

fn exec_with_user_additional_gids_and_cwd_flags(ctx: &Ctx) -> TestResult {
    let (id, _) = running(ctx)?;
    let out = ctx
        .sk(&[
            "exec",
            "--user",
            "1000:1000",
            "--additional-gids",
            "1001",
            "--cwd",
            "/home/user",
            &id,
            "sh",
            "-c",
            "echo \"$(id -u) $(id -g) $(pwd)\"; grep Groups /proc/self/status",
        ])
        .run()?
        .expect_ok()?;
    let mut lines = out.stdout.lines();
    ensure_eq!(
        lines.next().unwrap_or_default(),
        "1000 1000 /home/user",
        "uid gid cwd"
    );
    let groups = lines.next().unwrap_or_default();
    ensure!(
        groups.split_whitespace().any(|g| g == "1001"),
        "groups lack 1001: {groups:?}"
    );
    Ok(())
}

fn exec_env_flag_sets_variables(ctx: &Ctx) -> TestResult {
    let (id, _) = running(ctx)?;
    let out = ctx
        .sk(&[
            "exec",
            "--env",
            "A=one",
            "--env",
            "B=two words",
            &id,
            "sh",
            "-c",
            "echo \"$A|$B\"",
        ])
        .run()?
        .expect_ok()?;
    ensure_eq!(
        out.stdout.trim(),
        "one|two words",
        "variables set with --env"
    );
    Ok(())
}

fn exec_with_process_file_uses_its_args_env_cwd_and_user(ctx: &Ctx) -> TestResult {
    let (id, _) = running(ctx)?;
    let process = json!({
        "terminal": false,
        "user": { "uid": 1000, "gid": 1000 },
        "args": ["sh", "-c", "echo \"$FROM_FILE $(pwd) $(id -u)\"; exit 4"],
        "env": [DEFAULT_PATH, "FROM_FILE=yes"],
        "cwd": "/tmp"
    });
    let file = ctx.path("process.json");
    std::fs::write(&file, process.to_string()).map_err(|e| e.to_string())?;
    let out = ctx
        .sk(&["exec", "--process", &file.to_string_lossy(), &id])
        .run()?;
    ensure_eq!(out.exit, Exit::Code(4), "exit status");
    ensure_eq!(
        out.stdout.trim(),
        "yes /tmp 1000",
        "env, cwd and uid from the process file"
    );
    Ok(())
}

fn exec_into_created_container_fails_with_no_effect(ctx: &Ctx) -> TestResult {
    let b = ctx.bundle(&["sleep", "1000"])?;
    let id = ctx.id("execcreated");
    ctx.create_ok(&id, &b)?;
    ctx.sk(&["exec", &id, "touch", "/tmp/exec-ran"])
        .run()?
        .expect_failure("exec into a created container")?;
    ensure_eq!(ctx.status(&id)?, "created", "status after the refused exec");
    ensure!(
        !b.rootfs.join("tmp/exec-ran").exists(),
        "the refused exec ran its process"
    );
    Ok(())
}

fn exec_into_stopped_container_fails_with_no_effect(ctx: &Ctx) -> TestResult {
    let b = ctx.bundle(&["true"])?;
    let id = ctx.id("execstopped");
    ctx.create_start(&id, &b)?;
    ctx.wait_status(&id, "stopped")?;
    ctx.sk(&["exec", &id, "touch", "/tmp/exec-ran"])
        .run()?
        .expect_failure("exec into a stopped container")?;
    ensure_eq!(ctx.status(&id)?, "stopped", "status after the refused exec");
    ensure!(
        !b.rootfs.join("tmp/exec-ran").exists(),
        "the refused exec ran its process"
    );
    Ok(())
}

fn exec_of_unknown_id_says_does_not_exist(ctx: &Ctx) -> TestResult {
    let out = ctx.sk(&["exec", "no-such-container", "true"]).run()?;
    out.expect_failure("exec into an unknown id")?;
    out.expect_stderr_contains("does not exist")?;
    Ok(())
}
