//! Terminals (issue 4): a console-socket client that receives the pty master over AF_UNIX
//! with SCM_RIGHTS, as containerd's shim and conmon do, and reads the container through it.

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::ctx::{Ctx, STATUS_TIMEOUT};
use crate::harness::{Fail, Test, TestResult};

pub fn tests() -> Vec<Test> {
    vec![
        test!(
            "terminal",
            terminal_master_arrives_over_console_socket_and_carries_the_output
        ),
        test!(
            "terminal",
            terminal_process_is_session_leader_with_the_pty_as_controlling_tty
        ),
        test!("terminal", terminal_without_console_socket_fails_create),
        test!("terminal", console_socket_without_terminal_fails_create),
    ]
}

/// Accepts one connection on `listener` within `timeout`.
pub fn accept_within(listener: &UnixListener, timeout: Duration) -> Result<UnixStream, String> {
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + timeout;
    loop {
        match listener.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).map_err(|e| e.to_string())?;
                return Ok(s);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    return Err("nobody connected to the console socket".into());
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(format!("accept on the console socket: {e}")),
        }
    }
}

/// Receives one fd sent with SCM_RIGHTS (runc's protocol: the payload is the pty's name).
pub fn recv_fd(stream: &UnixStream, timeout: Duration) -> Result<(OwnedFd, String), String> {
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let mut data = [0u8; 4096];
    // Room for a handful of fds, aligned for cmsghdr.
    let mut control = [0u64; 64];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // SAFETY: msghdr is plain data; all-zero is a valid empty value that we then fill in.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: msg points at live buffers (data, control) whose sizes it states.
    let n = unsafe { libc::recvmsg(stream.as_raw_fd(), &mut msg, 0) };
    if n < 0 {
        return Err(format!(
            "recvmsg on the console socket: {}",
            std::io::Error::last_os_error()
        ));
    }
    let name = String::from_utf8_lossy(&data[..n as usize]).into_owned();
    let mut fds = Vec::new();
    // SAFETY: the CMSG_* macros walk the control buffer the kernel just filled, within
    // msg_controllen; CMSG_DATA of an SCM_RIGHTS message holds c_int fds.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data_len = (*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                let count = data_len / std::mem::size_of::<libc::c_int>();
                let p = libc::CMSG_DATA(cmsg) as *const libc::c_int;
                for i in 0..count {
                    fds.push(OwnedFd::from_raw_fd(std::ptr::read_unaligned(p.add(i))));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    if msg.msg_flags & libc::MSG_CTRUNC != 0 {
        return Err("the control message was truncated".into());
    }
    let mut it = fds.into_iter();
    let fd = it
        .next()
        .ok_or_else(|| format!("no fd came with the console-socket message (payload {name:?})"))?;
    if it.next().is_some() {
        return Err("more than one fd came over the console socket".into());
    }
    Ok((fd, name))
}

/// Reads the pty master until the slave side is closed (EIO on Linux) or `timeout`.
pub fn read_master(master: OwnedFd, timeout: Duration) -> Result<String, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut f = std::fs::File::from(master);
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                // EIO: every slave fd is closed (the process exited).
                Err(_) => break,
            }
        }
        let _ = tx.send(out);
    });
    rx.recv_timeout(timeout)
        .map(|b| String::from_utf8_lossy(&b).replace('\r', ""))
        .map_err(|_| format!("the pty was not closed within {}s", timeout.as_secs()))
}

/// A listening console socket in the test's directory.
pub fn console_socket(ctx: &Ctx) -> Result<(UnixListener, std::path::PathBuf), Fail> {
    let path = ctx.path("console.sock");
    let l = UnixListener::bind(&path).map_err(|e| format!("binding {}: {e}", path.display()))?;
    Ok((l, path))
}

/// Creates `id` with a terminal, receives the master, starts it and returns all its output.
fn run_with_terminal(ctx: &Ctx, id: &str, bundle_dir: &Path) -> Result<String, Fail> {
    let (listener, sock) = console_socket(ctx)?;
    ctx.track(id);
    let pending = ctx
        .sk(&[
            "create",
            "--bundle",
            &bundle_dir.to_string_lossy(),
            "--console-socket",
            &sock.to_string_lossy(),
            id,
        ])
        .spawn()?;
    let accepted = accept_within(&listener, STATUS_TIMEOUT);
    let received = accepted.and_then(|s| recv_fd(&s, STATUS_TIMEOUT));
    let out = pending.wait()?.expect_ok()?;
    let (master, name) = received?;
    ctx.note(format!(
        "console socket payload {name:?}; create stderr {:?}",
        out.stderr
    ));
    ctx.start_ok(id)?;
    let text = read_master(master, STATUS_TIMEOUT)?;
    ctx.note(format!("pty output {text:?}"));
    ctx.wait_status(id, "stopped")?;
    Ok(text)
}

fn terminal_master_arrives_over_console_socket_and_carries_the_output(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle(&["sh", "-c", "tty; stty size; echo hello-through-the-pty"])?;
    b.process()["terminal"] = json!(true);
    b.process()["consoleSize"] = json!({ "height": 33, "width": 101 });
    b.save()?;
    let id = ctx.id("tty");
    let text = run_with_terminal(ctx, &id, &b.dir)?;
    ensure!(
        text.contains("hello-through-the-pty"),
        "the pty did not carry the output: {text:?}"
    );
    let first = text.lines().next().unwrap_or_default();
    ensure!(
        first.starts_with("/dev/"),
        "stdin is not a terminal inside: `tty` says {first:?}"
    );
    ensure!(
        text.lines().any(|l| l.trim() == "33 101"),
        "consoleSize not applied: {text:?}"
    );
    Ok(())
}

fn terminal_process_is_session_leader_with_the_pty_as_controlling_tty(ctx: &Ctx) -> TestResult {
    let script = "read pid comm state ppid pgrp sid ttynr rest < /proc/self/stat; \
                  echo \"pid=$$ sid=$sid tty=$ttynr\"";
    let mut b = ctx.bundle(&["sh", "-c", script])?;
    b.process()["terminal"] = json!(true);
    b.save()?;
    let id = ctx.id("ctty");
    let text = run_with_terminal(ctx, &id, &b.dir)?;
    let line = text
        .lines()
        .find(|l| l.starts_with("pid="))
        .ok_or_else(|| format!("no output: {text:?}"))?;
    let field = |k: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{k}=")))
            .unwrap_or_default()
            .to_string()
    };
    ensure_eq!(
        field("sid"),
        field("pid"),
        "session id of the process ({line})"
    );
    ensure!(
        field("tty").parse::<i64>().is_ok_and(|t| t != 0),
        "the process has no controlling terminal ({line})"
    );
    Ok(())
}

fn terminal_without_console_socket_fails_create(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle(&["true"])?;
    b.process()["terminal"] = json!(true);
    let id = ctx.id("nosock");
    let out = ctx.create(&id, &b)?;
    out.expect_failure("create with terminal but no console socket")?;
    out.expect_stderr_contains("console")?;
    ctx.ensure_root_empty("after the refused create")?;
    Ok(())
}

fn console_socket_without_terminal_fails_create(ctx: &Ctx) -> TestResult {
    let b = ctx.bundle(&["true"])?;
    b.save()?;
    let (_listener, sock) = console_socket(ctx)?;
    let id = ctx.id("noterm");
    ctx.track(&id);
    let out = ctx
        .sk(&[
            "create",
            "--bundle",
            &b.dir.to_string_lossy(),
            "--console-socket",
            &sock.to_string_lossy(),
            &id,
        ])
        .run()?;
    out.expect_failure("create with a console socket but terminal false")?;
    ensure!(
        out.stderr.contains("terminal") || out.stderr.contains("tty"),
        "the error does not say that terminal is false: {:?}",
        out.stderr
    );
    ctx.ensure_root_empty("after the refused create")?;
    Ok(())
}
