//! `--pidfd-socket`: runc 1.2's way of handing the caller a process handle that can never
//! refer to a reused pid. stockade connects to the AF_UNIX socket and sends the handle with
//! SCM_RIGHTS and, as runc does, the kind of process as the payload (`standard` for a
//! container's init, `setns` for an exec'd process).

use std::os::fd::AsRawFd;
use std::path::Path;

use super::ContainerError;
use crate::platform::{Host, Platform};

/// The payload naming a container's init process.
pub const INIT: &str = "standard";
/// The payload naming a process started by `exec`.
pub const EXEC: &str = "setns";

/// Refuses `--pidfd-socket` up front where the kernel cannot open a descriptor for an
/// existing process, so nothing is made first.
pub fn check(socket: Option<&Path>) -> Result<(), ContainerError> {
    match socket {
        Some(s) if !crate::platform::procs::PROCESS_HANDLES => {
            Err(crate::platform::PlatformError::Unsupported {
                what: format!("--pidfd-socket {}", s.display()),
                os: Host::TARGET.name(),
                hint: "it has no pidfd_open(2); omit --pidfd-socket".into(),
            }
            .into())
        }
        _ => Ok(()),
    }
}

/// Opens a handle on `pid` and sends it over the socket at `socket`.
pub fn send(socket: &Path, pid: i32, kind: &str) -> Result<(), ContainerError> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let handle = crate::platform::procs::process_handle(pid)?;
    let stream = std::os::unix::net::UnixStream::connect(socket)
        .map_err(ContainerError::io("connecting to --pidfd-socket", socket))?;
    let iov = [std::io::IoSlice::new(kind.as_bytes())];
    let fds = [handle.as_raw_fd()];
    sendmsg::<()>(
        stream.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| ContainerError::Io {
        op: "sending the pidfd over --pidfd-socket",
        path: socket.to_path_buf(),
        source: e.into(),
    })?;
    Ok(())
}
