//! The container's init process, after it has entered the container: report to `create`,
//! wait on the start fifo, apply the process settings and exec. Shared by both backends;
//! everything here is async-signal-safe enough for a freshly forked single-threaded child.
//!
//! The start handshake: the init opens `exec.fifo` for writing (which blocks until `start`
//! opens it for reading), writes one `0` byte, and execs with the fifo close-on-exec. So
//! `start` sees the `0` (the init is past the wait), then either an error message (the init
//! failed before exec and exits) or end-of-file, which means exec succeeded: only then is
//! the container `running`.

use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use nix::fcntl::{openat, OFlag};
#[cfg(target_os = "linux")]
use nix::sys::resource::setrlimit;
use nix::sys::stat::{umask, Mode};
use nix::unistd::{chdir, execve, setgid, setgroups, setuid, Gid, Uid};

use crate::hooks::{self, Phase};
use crate::platform::{ContainerPlan, InitHandoff, Platform, SeccompListener};
use crate::process::ProcessSpec;
use crate::state::START_FIFO;

/// One message of the create handshake.
pub enum SyncMessage<'a> {
    /// Create → init: the init's pid is recorded in the state; it may start making things.
    Recorded,
    /// Init → create: a path on the root filesystem the init is about to make; the init
    /// waits for [`SyncMessage::Recorded`] before making it.
    Intent(&'a std::path::Path),
    /// Init → create: what the init made on the root filesystem (JSON of
    /// [`crate::mounts::Created`]).
    MountPoint(&'a [u8]),
    /// Init → create: set up inside; prestart and createRuntime hooks may run now.
    Prepared,
    /// Create → init: hooks done; go on, with the state JSON for createContainer and
    /// startContainer hooks.
    Go(&'a [u8]),
    /// Init → create: the container is set up; the init now waits for `start`.
    Ready,
    /// Init → create: setting up failed.
    Error(&'a str),
}

/// Writes one handshake message: a kind byte, the payload length and `:`, the payload.
pub fn send(sync: &mut impl Write, msg: SyncMessage<'_>) -> std::io::Result<()> {
    let (kind, payload): (u8, &[u8]) = match msg {
        SyncMessage::Recorded => (b'W', b""),
        SyncMessage::Intent(p) => (b'I', p.as_os_str().as_bytes()),
        SyncMessage::MountPoint(p) => (b'M', p),
        SyncMessage::Prepared => (b'P', b""),
        SyncMessage::Go(state) => (b'G', state),
        SyncMessage::Ready => (b'R', b""),
        SyncMessage::Error(e) => (b'E', e.as_bytes()),
    };
    let mut frame = vec![kind];
    frame.extend_from_slice(format!("{}:", payload.len()).as_bytes());
    frame.extend_from_slice(payload);
    sync.write_all(&frame)?;
    sync.flush()
}

/// Reads one handshake message: (kind, payload); `None` at end of stream.
pub fn receive(sync: &mut impl std::io::Read) -> std::io::Result<Option<(u8, Vec<u8>)>> {
    let mut kind = [0u8; 1];
    if sync.read(&mut kind)? == 0 {
        return Ok(None);
    }
    let mut len = Vec::new();
    let mut b = [0u8; 1];
    loop {
        sync.read_exact(&mut b)?;
        if b[0] == b':' {
            break;
        }
        len.push(b[0]);
        if len.len() > 10 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "bad handshake length",
            ));
        }
    }
    let n: usize = std::str::from_utf8(&len)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, "bad handshake length")
        })?;
    let mut payload = vec![0u8; n];
    sync.read_exact(&mut payload)?;
    Ok(Some((kind[0], payload)))
}

/// Reports an object of the root filesystem to create: before it exists, as an intent,
/// waiting until create has recorded it (a create that died means end-of-file: the init
/// exits before making anything unrecorded); after, with its identity.
fn report_made(sync: &mut std::fs::File, p: &std::path::Path) {
    match crate::mounts::Created::observe(p) {
        Ok(r) => {
            let record = serde_json::to_vec(&r).unwrap_or_default();
            let _ = send(sync, SyncMessage::MountPoint(&record));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if send(sync, SyncMessage::Intent(p)).is_err() {
                std::process::exit(1);
            }
            match receive(sync) {
                Ok(Some((b'W', _))) => {}
                _ => std::process::exit(1),
            }
        }
        // Not a kind create makes (it is about to fail on it): nothing to record.
        Err(_) => {}
    }
}

/// Replaces the `status` of a state JSON document.
fn with_status(state: &[u8], status: &str) -> Vec<u8> {
    match serde_json::from_slice::<serde_json::Value>(state) {
        Ok(mut v) => {
            v["status"] = serde_json::Value::String(status.to_string());
            serde_json::to_vec(&v).unwrap_or_else(|_| state.to_vec())
        }
        Err(_) => state.to_vec(),
    }
}

/// The init process's life after `spawn_init`: enter, hand over to create's hooks,
/// createContainer hooks, enter the root, terminal, report, wait for start,
/// startContainer hooks, exec. Never returns.
pub fn container_init<P: Platform>(
    plan: &ContainerPlan,
    made: &crate::platform::Resources<P::Made>,
    mut handoff: InitHandoff,
) -> ! {
    handoff.close_inherited();
    let mut sync = std::fs::File::from(handoff.sync);
    let fail = |sync: &mut std::fs::File, e: String| -> ! {
        let _ = send(sync, SyncMessage::Error(&e));
        std::process::exit(1);
    };
    stockade_fault::point("init:before-recorded");
    // Nothing is made before create has recorded this process in the state: a create
    // killed before that leaves an init that sees end-of-file here and exits, having made
    // nothing that delete would not know of.
    match receive(&mut sync) {
        Ok(Some((b'W', _))) => {}
        _ => std::process::exit(1),
    }
    let entered = P::enter(plan, made, &mut |p| report_made(&mut sync, p));
    if let Err(e) = entered {
        fail(&mut sync, e.to_string());
    }
    if send(&mut sync, SyncMessage::Prepared).is_err() {
        std::process::exit(1);
    }
    let state = match receive(&mut sync) {
        Ok(Some((b'G', state))) => state,
        // create gave up (a hook failed) and is about to kill this process.
        _ => std::process::exit(1),
    };
    if let Err(e) = hooks::run(Phase::CreateContainer, &plan.create_container_hooks, &state) {
        fail(&mut sync, e.to_string());
    }
    if let Err(e) = P::enter_root(plan, made) {
        fail(&mut sync, e.to_string());
    }
    if let Some(console) = handoff.console {
        if let Err(e) = attach_terminal::<P>(console, plan.process.console_size) {
            fail(&mut sync, e);
        }
    }
    // Limits the process cannot have fail create, as they do with runc, not start.
    if let Err(e) = apply_rlimits(&plan.process) {
        fail(&mut sync, e);
    }
    let _ = send(&mut sync, SyncMessage::Ready);
    drop(sync);

    // Blocks until `start` opens the fifo for reading.
    let fifo = match openat(
        handoff.state_dir.as_fd(),
        START_FIFO,
        OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => std::fs::File::from(fd),
        Err(_) => std::process::exit(1),
    };
    drop(handoff.state_dir);
    let mut fifo = fifo;
    if fifo.write_all(b"0").is_err() {
        std::process::exit(1);
    }
    if let Err(e) = hooks::run(
        Phase::StartContainer,
        &plan.start_container_hooks,
        &with_status(&state, "created"),
    ) {
        let _ = fifo.write_all(e.to_string().as_bytes());
        std::process::exit(1);
    }
    if let Err(e) = crate::platform::procs::cloexec_from(3 + plan.preserve_fds as i32) {
        let _ = fifo.write_all(e.to_string().as_bytes());
        std::process::exit(1);
    }
    let listener = handoff.seccomp_listener.map(|fd| SeccompListener {
        socket: fd.into(),
        state: with_status(&state, "created"),
    });
    let err = exec_process::<P>(&plan.process, listener.as_ref());
    let _ = fifo.write_all(err.as_bytes());
    std::process::exit(127);
}

/// Gives the process a terminal: a new pty opened inside the container, its master sent
/// over the console socket (runc's protocol: SCM_RIGHTS, the slave's path as the payload),
/// the slave made the controlling terminal of a new session and stdin/stdout/stderr.
pub fn attach_terminal<P: Platform>(
    console: OwnedFd,
    size: Option<(u16, u16)>,
) -> Result<(), String> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let (master, slave_path) = crate::platform::pty::open_pty().map_err(|e| e.to_string())?;
    let slave = nix::fcntl::open(&slave_path, OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| format!("opening terminal {}: {e}", slave_path.display()))?;
    if let Some((rows, cols)) = size {
        crate::platform::pty::set_winsize(slave.as_fd(), rows, cols).map_err(|e| e.to_string())?;
    }
    let name = slave_path.as_os_str().as_bytes();
    let iov = [std::io::IoSlice::new(name)];
    let fds = [std::os::fd::AsRawFd::as_raw_fd(&master)];
    sendmsg::<()>(
        std::os::fd::AsRawFd::as_raw_fd(&console),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| format!("sending the terminal over --console-socket: {e}"))?;
    drop(master);
    drop(console);
    nix::unistd::setsid().map_err(|e| format!("setsid: {e}"))?;
    crate::platform::pty::set_controlling_tty(slave.as_fd()).map_err(|e| e.to_string())?;
    for target in 0..=2 {
        dup_onto(&slave, target).map_err(|e| format!("dup2 terminal onto {target}: {e}"))?;
    }
    Ok(())
}

/// dup2(fd, target) for the standard descriptors.
fn dup_onto(fd: &OwnedFd, target: i32) -> nix::Result<()> {
    match target {
        0 => nix::unistd::dup2_stdin(fd),
        1 => nix::unistd::dup2_stdout(fd),
        _ => nix::unistd::dup2_stderr(fd),
    }
}

/// Applies `process` to the calling process and execs it; returns only the error text.
pub fn exec_process<P: Platform>(
    process: &ProcessSpec,
    listener: Option<&SeccompListener>,
) -> String {
    match apply_and_exec::<P>(process, listener) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

enum Never {}

/// `process.rlimits`, applied to the calling process.
fn apply_rlimits(p: &ProcessSpec) -> Result<(), String> {
    for r in &p.rlimits {
        set_rlimit(r.resource, r.soft, r.hard).map_err(|(name, e)| {
            let hint = if e == nix::errno::Errno::EPERM {
                "; raising a hard limit above the runtime's own needs privilege \
                 (CAP_SYS_RESOURCE on Linux), and no limit may exceed the kernel's maximum"
            } else {
                ""
            };
            format!(
                "process.rlimits {name} (soft {}, hard {}): {e}{hint}",
                r.soft, r.hard
            )
        })?;
    }
    Ok(())
}

/// The list passed to setgroups(2) before setgid(`gid`). With `gid_first` (FreeBSD) the gid
/// leads: up to FreeBSD 14 the effective gid is cr_groups[0] (sys/sys/ucred.h), which
/// setgroups fills from its first entry and setgid then overwrites, so the first
/// additional group would be lost; on 15, where cr_gid is apart, the list is still right.
pub(crate) fn setgroups_list(gid: u32, additional: &[u32], gid_first: bool) -> Vec<u32> {
    gid_first
        .then_some(gid)
        .into_iter()
        .chain(additional.iter().copied())
        .collect()
}

/// The order matters for confinement (see the Linux backend's `before_user` and
/// `before_exec`): privileged steps before the user changes, the filter last.
fn apply_and_exec<P: Platform>(
    p: &ProcessSpec,
    listener: Option<&SeccompListener>,
) -> Result<Never, String> {
    apply_rlimits(p)?;
    P::before_user(p, listener).map_err(|e| e.to_string())?;
    let groups: Vec<Gid> = setgroups_list(
        p.gid,
        &p.additional_gids,
        P::TARGET == crate::target::Target::FreeBsd,
    )
    .into_iter()
    .map(Gid::from_raw)
    .collect();
    match setgroups(&groups) {
        // A rootless user namespace has setgroups "deny": the groups cannot change, and
        // with none asked for there is nothing to change (runc skips it too).
        Err(nix::errno::Errno::EPERM)
            if p.additional_gids.is_empty()
                && std::fs::read_to_string("/proc/self/setgroups")
                    .is_ok_and(|s| s.trim() == "deny") => {}
        r => r.map_err(|e| format!("setting additional groups {:?}: {e}", p.additional_gids))?,
    }
    setgid(Gid::from_raw(p.gid)).map_err(|e| format!("setting gid {}: {e}", p.gid))?;
    setuid(Uid::from_raw(p.uid)).map_err(|e| format!("setting uid {}: {e}", p.uid))?;
    if let Some(m) = p.umask {
        umask(Mode::from_bits_truncate(m as nix::libc::mode_t));
    }
    chdir(&p.cwd).map_err(|e| format!("process.cwd {}: {e}", p.cwd.display()))?;
    let program = cstring(p.program.as_os_str().as_bytes())?;
    let args = p
        .args
        .iter()
        .map(|a| cstring(a.as_bytes()))
        .collect::<Result<Vec<_>, _>>()?;
    let mut env = p
        .env
        .iter()
        .map(|e| cstring(e.as_bytes()))
        .collect::<Result<Vec<_>, _>>()?;
    if let Ok(n) = std::env::var("LISTEN_FDS") {
        env.retain(|e| {
            !e.as_bytes().starts_with(b"LISTEN_FDS=") && !e.as_bytes().starts_with(b"LISTEN_PID=")
        });
        env.push(cstring(format!("LISTEN_FDS={n}").as_bytes())?);
        env.push(cstring(
            format!("LISTEN_PID={}", std::process::id()).as_bytes(),
        )?);
    }
    // The process starts with no signal blocked, whatever its creator held back (a
    // foreground `run` blocks the signals it forwards).
    nix::sys::signal::SigSet::empty()
        .thread_set_mask()
        .map_err(|e| format!("resetting the signal mask: {e}"))?;
    // Last before execve: capabilities, no_new_privs and a seccomp filter, so that as few
    // calls as possible run under them.
    P::before_exec(p, listener).map_err(|e| e.to_string())?;
    let e =
        execve(&program, &args, &env).map_err(|e| format!("exec {}: {e}", p.program.display()))?;
    match e {}
}

fn cstring(b: &[u8]) -> Result<CString, String> {
    CString::new(b).map_err(|_| format!("{} contains a NUL byte", stockade_quote::quote(b)))
}

/// setrlimit(2); an error comes with the resource's name.
#[cfg(target_os = "linux")]
fn set_rlimit(resource: i32, soft: u64, hard: u64) -> Result<(), (String, nix::errno::Errno)> {
    use nix::sys::resource::Resource;
    // The numbers come from process::RLIMITS, which only lists this platform's resources.
    let r: Resource = match resource as u32 {
        x if x == nix::libc::RLIMIT_AS => Resource::RLIMIT_AS,
        x if x == nix::libc::RLIMIT_CORE => Resource::RLIMIT_CORE,
        x if x == nix::libc::RLIMIT_CPU => Resource::RLIMIT_CPU,
        x if x == nix::libc::RLIMIT_DATA => Resource::RLIMIT_DATA,
        x if x == nix::libc::RLIMIT_FSIZE => Resource::RLIMIT_FSIZE,
        x if x == nix::libc::RLIMIT_LOCKS => Resource::RLIMIT_LOCKS,
        x if x == nix::libc::RLIMIT_MEMLOCK => Resource::RLIMIT_MEMLOCK,
        x if x == nix::libc::RLIMIT_MSGQUEUE => Resource::RLIMIT_MSGQUEUE,
        x if x == nix::libc::RLIMIT_NICE => Resource::RLIMIT_NICE,
        x if x == nix::libc::RLIMIT_NOFILE => Resource::RLIMIT_NOFILE,
        x if x == nix::libc::RLIMIT_NPROC => Resource::RLIMIT_NPROC,
        x if x == nix::libc::RLIMIT_RSS => Resource::RLIMIT_RSS,
        x if x == nix::libc::RLIMIT_RTPRIO => Resource::RLIMIT_RTPRIO,
        x if x == nix::libc::RLIMIT_RTTIME => Resource::RLIMIT_RTTIME,
        x if x == nix::libc::RLIMIT_SIGPENDING => Resource::RLIMIT_SIGPENDING,
        x if x == nix::libc::RLIMIT_STACK => Resource::RLIMIT_STACK,
        _ => return Err((format!("resource {resource}"), nix::errno::Errno::EINVAL)),
    };
    setrlimit(r, soft, hard).map_err(|e| (format!("{r:?}"), e))
}

#[cfg(target_os = "freebsd")]
fn set_rlimit(resource: i32, soft: u64, hard: u64) -> Result<(), (String, nix::errno::Errno)> {
    // nix lacks some FreeBSD limits (RLIMIT_UMTXP, RLIMIT_PIPEBUF); the backend's raw
    // setrlimit(2) covers them all.
    crate::platform::set_rlimit(resource, soft, hard)
        .map_err(|e| (format!("resource {resource}"), e))
}
