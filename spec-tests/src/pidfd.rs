//! `--pidfd-socket` (runc 1.2's protocol): `create` and `exec` send a pidfd of the process
//! they started over an AF_UNIX socket, with `standard` or `setns` as the payload.

use crate::ctx::Ctx;
#[cfg(target_os = "linux")]
use crate::harness::Fail;
use crate::harness::{Test, TestResult};
#[cfg(target_os = "linux")]
use crate::terminal::{accept_within, console_socket, recv_fd};
#[cfg(target_os = "linux")]
use std::os::fd::{AsRawFd, OwnedFd};

pub fn tests() -> Vec<Test> {
    vec![test!(
        "lifecycle",
        pidfd_socket_receives_the_init_and_an_exec_process
    )]
}

#[cfg(target_os = "linux")]
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The pid a pidfd refers to, from /proc/self/fdinfo.
#[cfg(target_os = "linux")]
fn pid_of(fd: &OwnedFd) -> Result<i32, Fail> {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd()))
        .map_err(|e| format!("reading the pidfd's fdinfo: {e}"))?;
    info.lines()
        .find_map(|l| l.strip_prefix("Pid:"))
        .and_then(|p| p.trim().parse().ok())
        .ok_or_else(|| Fail::Fail(format!("not a pidfd (no Pid: line): {info}")))
}

#[cfg(target_os = "linux")]
fn pidfd_socket_receives_the_init_and_an_exec_process(ctx: &Ctx) -> TestResult {
    let b = ctx.bundle(&["sleep", "1000"])?;
    let id = ctx.id("pidfd");
    let (listener, sock) = console_socket(ctx)?;
    ctx.track(&id);
    let pending = ctx
        .sk(&[
            "create",
            "--bundle",
            &b.dir.to_string_lossy(),
            "--pidfd-socket",
            &sock.to_string_lossy(),
            &id,
        ])
        .spawn()?;
    let received = accept_within(&listener, TIMEOUT).and_then(|s| recv_fd(&s, TIMEOUT));
    pending.wait()?.expect_ok()?;
    let (fd, payload) = received?;
    ensure_eq!(payload.as_str(), "standard", "payload naming the init");
    ensure_eq!(
        pid_of(&fd)?,
        ctx.pid(&id)?,
        "the pid the init's pidfd refers to"
    );
    ctx.start_ok(&id)?;

    let pid_file = ctx.path("pidfd-exec.pid");
    let pending = ctx
        .sk(&[
            "exec",
            "--detach",
            "--pid-file",
            &pid_file.to_string_lossy(),
            "--pidfd-socket",
            &sock.to_string_lossy(),
            &id,
            "sleep",
            "999",
        ])
        .spawn()?;
    let received = accept_within(&listener, TIMEOUT).and_then(|s| recv_fd(&s, TIMEOUT));
    pending.wait()?.expect_ok()?;
    let (fd, payload) = received?;
    ensure_eq!(
        payload.as_str(),
        "setns",
        "payload naming an exec'd process"
    );
    let exec_pid: i32 = crate::ctx::read_text(&pid_file)
        .parse()
        .map_err(|e| format!("exec pid file: {e}"))?;
    ensure_eq!(pid_of(&fd)?, exec_pid, "the pid the exec's pidfd refers to");
    Ok(())
}

/// FreeBSD cannot open a descriptor for an existing pid: create fails and makes nothing.
#[cfg(not(target_os = "linux"))]
fn pidfd_socket_receives_the_init_and_an_exec_process(ctx: &Ctx) -> TestResult {
    let b = ctx.bundle(&["true"])?;
    let id = ctx.id("pidfd");
    let out = ctx
        .sk(&[
            "create",
            "--bundle",
            &b.dir.to_string_lossy(),
            "--pidfd-socket",
            &ctx.path("pidfd.sock").to_string_lossy(),
            &id,
        ])
        .run()?;
    out.expect_failure("create --pidfd-socket on FreeBSD")?;
    out.expect_stderr_contains("pidfd")?;
    ctx.ensure_root_empty("after the refused create")?;
    Ok(())
}
