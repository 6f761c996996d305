//! Giving a process its terminal (the init's, or an exec'd process's).

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use super::InitError;
use crate::platform::pty;

/// Gives the process a terminal: a new pty opened inside the container, its master sent
/// over the console socket (runc's protocol: SCM_RIGHTS, the slave's path as the payload),
/// the slave made the controlling terminal of a new session and stdin/stdout/stderr.
pub fn attach_terminal(console: OwnedFd, size: Option<(u16, u16)>) -> Result<(), InitError> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let (master, slave_path) = pty::open_pty()?;
    let slave = nix::fcntl::open(&slave_path, OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|errno| InitError::Path {
            what: "opening terminal",
            path: slave_path.clone(),
            errno,
        })?;
    if let Some((rows, cols)) = size {
        pty::set_winsize(slave.as_fd(), rows, cols)?;
    }
    let name = slave_path.as_os_str().as_bytes();
    let iov = [std::io::IoSlice::new(name)];
    let fds = [master.as_raw_fd()];
    sendmsg::<()>(
        console.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| InitError::call("sending the terminal over --console-socket", e))?;
    drop(master);
    drop(console);
    nix::unistd::setsid().map_err(|e| InitError::call("setsid", e))?;
    pty::set_controlling_tty(slave.as_fd())?;
    for target in 0..=2 {
        dup_onto(&slave, target)
            .map_err(|e| InitError::call(format!("dup2 terminal onto {target}"), e))?;
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
