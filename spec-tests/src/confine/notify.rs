//! The seccomp notify flow: a listener in the test receives the notify descriptor and the
//! state from the runtime (for the init, and for an exec'd process) and answers. Linux only.

use serde_json::{json, Value};

use super::runc_caps;
use crate::ctx::Ctx;
use crate::harness::{Fail, TestResult};

pub(super) fn seccomp_notify_sends_the_fd_and_state_to_the_listener(ctx: &Ctx) -> TestResult {
    use std::os::unix::net::UnixListener;
    let sock = ctx.path("agent.sock");
    let listener =
        UnixListener::bind(&sock).map_err(|e| format!("bind {}: {e}", sock.display()))?;
    let mut b = ctx.bundle(&["sh", "-c", "mkdir /tmp/x 2>&1; echo rc=$?"])?;
    b.process()["capabilities"] = runc_caps();
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock,
        "listenerMetadata": "stockade-spec-metadata",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
    });
    // The agent: takes the descriptor and the state, answers one notification with EDQUOT.
    let agent = std::thread::spawn(move || notify_agent(&listener));
    let run = ctx.run_to_stop("notify", &b);
    // Once the container is gone every copy of the connection is closed, so the agent
    // returns (with what it got, or why it got nothing).
    let agent = agent
        .join()
        .map_err(|_| "the agent thread panicked".to_string())?;
    let (text, id) = run.map_err(|e| match e {
        Fail::Fail(m) => Fail::Fail(format!("{m}\nagent: {agent:?}")),
        skip => skip,
    })?;
    let (state, nr) = agent?;
    ctx.note(format!("agent received {state}"));
    ensure_eq!(state["fds"], json!(["seccompFd"]), "fds");
    ensure_eq!(
        state["metadata"],
        json!("stockade-spec-metadata"),
        "metadata"
    );
    ensure_eq!(state["state"]["id"], json!(id), "state.id");
    ensure!(state["pid"].as_i64().is_some_and(|p| p > 0), "pid: {state}");
    ensure!(
        nr == libc::SYS_mkdir as i32 || nr == libc::SYS_mkdirat as i32,
        "notified syscall number {nr}"
    );
    ensure!(
        text.contains("Disk quota exceeded") && text.contains("rc=1"),
        "mkdir answered by the agent: {text:?}"
    );
    Ok(())
}

/// Accepts the runtime's connection, receives (state JSON, notify fd), answers the first
/// notification with -EDQUOT; returns the state and the notified syscall number.
fn notify_agent(listener: &std::os::unix::net::UnixListener) -> Result<(Value, i32), String> {
    let (state, fd) = receive_notify_fd(listener)?;
    let nr = answer_one(fd);
    // SAFETY: closing the descriptor this thread received and owns.
    unsafe { libc::close(fd) };
    Ok((state, nr?))
}

/// Accepts one connection and receives the state JSON and the descriptor sent with it.
fn receive_notify_fd(listener: &std::os::unix::net::UnixListener) -> Result<(Value, i32), String> {
    use std::os::fd::AsRawFd;
    let (conn, _) = listener.accept().map_err(|e| format!("accept: {e}"))?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut cmsg = [0u8; 64];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: an all-zero msghdr is valid; the pointers set below outlive the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cmsg.as_mut_ptr().cast();
    msg.msg_controllen = cmsg.len() as _;
    let n = loop {
        // SAFETY: msg describes live buffers of the sizes given.
        let n = unsafe { libc::recvmsg(conn.as_raw_fd(), &mut msg, 0) };
        if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        break n;
    };
    if n <= 0 {
        return Err(format!("recvmsg: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: the control buffer was filled by the kernel; CMSG_FIRSTHDR/DATA walk it.
    let fd = unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        if c.is_null() || (*c).cmsg_type != libc::SCM_RIGHTS {
            return Err("no SCM_RIGHTS descriptor in the message".into());
        }
        std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const i32)
    };
    let state: Value = serde_json::from_slice(&buf[..n as usize])
        .map_err(|e| format!("state payload is not JSON: {e}"))?;
    Ok((state, fd))
}

/// Answers the next notification on `fd` with -EDQUOT; returns its syscall number.
fn answer_one(fd: i32) -> Result<i32, String> {
    // SAFETY: an all-zero seccomp_notif is the required input of NOTIF_RECV.
    let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    let r = loop {
        // SAFETY: fd is a notify descriptor; req is a live seccomp_notif.
        let r = unsafe { libc::ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_RECV, &mut req) };
        if r != 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            // SAFETY: NOTIF_RECV requires a zeroed request each time.
            req = unsafe { std::mem::zeroed() };
            continue;
        }
        break r;
    };
    if r != 0 {
        return Err(format!(
            "SECCOMP_IOCTL_NOTIF_RECV: {}",
            std::io::Error::last_os_error()
        ));
    }
    let mut resp = libc::seccomp_notif_resp {
        id: req.id,
        val: 0,
        error: -libc::EDQUOT,
        flags: 0,
    };
    // SAFETY: resp is a live seccomp_notif_resp for the request just received.
    let r = unsafe { libc::ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_SEND, &mut resp) };
    if r != 0 {
        return Err(format!(
            "SECCOMP_IOCTL_NOTIF_SEND: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(req.data.nr)
}

pub(super) fn exec_sends_its_own_notify_fd_to_the_listener(ctx: &Ctx) -> TestResult {
    use std::os::unix::net::UnixListener;
    let sock = ctx.path("agent-exec.sock");
    let listener =
        UnixListener::bind(&sock).map_err(|e| format!("bind {}: {e}", sock.display()))?;
    let mut b = ctx.bundle(&["sleep", "1000"])?;
    b.process()["capabilities"] = runc_caps();
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock,
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
    });
    // The init's descriptor is received and closed (the init never calls mkdir); the exec'd
    // process's descriptor answers its mkdir.
    let agent = std::thread::spawn(move || -> Result<(Value, Value, i32), String> {
        let (init_state, init_fd) = receive_notify_fd(&listener)?;
        // SAFETY: closing the descriptor this thread received and owns.
        unsafe { libc::close(init_fd) };
        let (exec_state, fd) = receive_notify_fd(&listener)?;
        let nr = answer_one(fd);
        // SAFETY: as above.
        unsafe { libc::close(fd) };
        Ok((init_state, exec_state, nr?))
    });
    let id = ctx.id("exec-notify");
    let started = ctx.create_start(&id, &b);
    let out = match &started {
        Ok(_) => Some(
            ctx.sk(&["exec", &id, "sh", "-c", "mkdir /tmp/z 2>&1; echo rc=$?"])
                .run()?,
        ),
        Err(_) => None,
    };
    if out.is_none() {
        let _ = ctx.sk(&["delete", "--force", &id]).run();
    }
    let agent = agent
        .join()
        .map_err(|_| "the agent thread panicked".to_string())?;
    started?;
    let out = out.ok_or("exec did not run")?;
    ctx.note(format!(
        "exec: {:?} {:?}; agent: {agent:?}",
        out.stdout, out.stderr
    ));
    let (init_state, exec_state, _nr) = agent?;
    ensure_eq!(init_state["state"]["id"], json!(id), "init's state.id");
    ensure_eq!(exec_state["state"]["id"], json!(id), "exec's state.id");
    ensure!(
        exec_state["pid"] != init_state["pid"],
        "exec's pid must be its own: {exec_state}"
    );
    ensure!(
        out.stdout.contains("Disk quota exceeded") && out.stdout.contains("rc=1"),
        "exec's mkdir answered by the agent: {:?}",
        out.stdout
    );
    Ok(())
}
