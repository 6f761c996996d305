//! Applying a [`ProcessSpec`] to the calling process and executing it: shared by the init
//! and by `exec`.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;

use nix::sys::stat::{umask, Mode};
use nix::unistd::{chdir, execve, setgid, setgroups, setuid, Gid, Uid};

use super::InitError;
use crate::platform::{Platform, SeccompListener};
use crate::process::ProcessSpec;

/// Applies `process` to the calling process and execs it; returns only on failure.
pub fn exec_process<P: Platform>(
    process: &ProcessSpec,
    listener: Option<&SeccompListener>,
) -> InitError {
    match apply_and_exec::<P>(process, listener) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

enum Never {}

/// `process.rlimits`, applied to the calling process through the backend's setter.
pub(crate) fn apply_rlimits(p: &ProcessSpec) -> Result<(), InitError> {
    for r in &p.rlimits {
        crate::platform::set_rlimit(r.resource, r.soft, r.hard).map_err(|errno| {
            InitError::Rlimit {
                name: crate::platform::rlimit_name(r.resource),
                soft: r.soft,
                hard: r.hard,
                errno,
            }
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
) -> Result<Never, InitError> {
    apply_rlimits(p)?;
    P::before_user(p, listener)?;
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
        r => r.map_err(|e| {
            InitError::call(
                format!("setting additional groups {:?}", p.additional_gids),
                e,
            )
        })?,
    }
    setgid(Gid::from_raw(p.gid))
        .map_err(|e| InitError::call(format!("setting gid {}", p.gid), e))?;
    setuid(Uid::from_raw(p.uid))
        .map_err(|e| InitError::call(format!("setting uid {}", p.uid), e))?;
    if let Some(m) = p.umask {
        umask(Mode::from_bits_truncate(m as nix::libc::mode_t));
    }
    chdir(&p.cwd).map_err(|errno| InitError::Path {
        what: "process.cwd",
        path: p.cwd.clone(),
        errno,
    })?;
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
        .map_err(|e| InitError::call("resetting the signal mask", e))?;
    // Last before execve: capabilities, no_new_privs and a seccomp filter, so that as few
    // calls as possible run under them.
    P::before_exec(p, listener)?;
    let errno = match execve(&program, &args, &env) {
        Ok(never) => match never {},
        Err(errno) => errno,
    };
    Err(InitError::Path {
        what: "exec",
        path: p.program.clone(),
        errno,
    })
}

fn cstring(b: &[u8]) -> Result<CString, InitError> {
    CString::new(b).map_err(|_| InitError::Nul { value: b.to_vec() })
}
