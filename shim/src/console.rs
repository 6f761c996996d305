//! Terminals: the runtime hands the pty master to a console socket (as with runc's
//! `--console-socket`); the shim listens on one for each process with a terminal, takes the
//! master after create/exec, and copies between it and containerd's FIFOs. ResizePty sets
//! the master's window size.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("console socket {path}: {source}")]
    Socket {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("receiving the pty master: {0}")]
    Receive(String),
    #[error("terminal I/O setup: {0}")]
    Io(std::io::Error),
}

/// A listening console socket in a private directory, removed on drop.
pub struct ConsoleSocket {
    dir: tempfile::TempDir,
    listener: UnixListener,
}

impl ConsoleSocket {
    pub fn new() -> Result<ConsoleSocket, ConsoleError> {
        let dir = tempfile::Builder::new()
            .prefix("stockade-shim-pty.")
            .tempdir()
            .map_err(|source| ConsoleError::Socket {
                path: std::env::temp_dir(),
                source,
            })?;
        let path = dir.path().join("c.sock");
        let listener = UnixListener::bind(&path).map_err(|source| ConsoleError::Socket {
            path: path.clone(),
            source,
        })?;
        Ok(ConsoleSocket { dir, listener })
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("c.sock")
    }

    /// The master the runtime sent (it connected and sent it during create/exec, so this
    /// does not wait on anything that has not happened).
    pub fn receive(&self) -> Result<OwnedFd, ConsoleError> {
        self.listener
            .set_nonblocking(true)
            .map_err(|source| ConsoleError::Socket {
                path: self.path(),
                source,
            })?;
        let (conn, _) = self
            .listener
            .accept()
            .map_err(|source| ConsoleError::Socket {
                path: self.path(),
                source,
            })?;
        conn.set_nonblocking(false).map_err(ConsoleError::Io)?;
        let mut buf = [0u8; 4096];
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let msg = recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .map_err(|e| ConsoleError::Receive(e.to_string()))?;
        let cmsgs = msg
            .cmsgs()
            .map_err(|e| ConsoleError::Receive(e.to_string()))?;
        for c in cmsgs {
            if let ControlMessageOwned::ScmRights(fds) = c {
                if let Some(&fd) = fds.first() {
                    return owned(fd);
                }
            }
        }
        Err(ConsoleError::Receive("no descriptor in the message".into()))
    }
}

fn owned(fd: std::os::fd::RawFd) -> Result<OwnedFd, ConsoleError> {
    Ok(crate::sys::own_received_fd(fd))
}

/// Copies the pty master to the output FIFO and the input FIFO to the master, until the
/// terminal closes.
pub fn copy(
    master: OwnedFd,
    stdin_fifo: Option<&Path>,
    stdout: OwnedFd,
) -> Result<std::sync::Arc<OwnedFd>, ConsoleError> {
    set_nonblocking(&master)?;
    let master = std::sync::Arc::new(master);
    let input = match stdin_fifo {
        Some(p) => {
            let fd = nix::fcntl::open(
                p,
                nix::fcntl::OFlag::O_RDWR
                    | nix::fcntl::OFlag::O_NONBLOCK
                    | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .map_err(|e| ConsoleError::Io(e.into()))?;
            Some(tokio::net::unix::pipe::Receiver::from_owned_fd(fd).map_err(ConsoleError::Io)?)
        }
        None => None,
    };
    let mut out =
        tokio::net::unix::pipe::Sender::from_owned_fd(stdout).map_err(ConsoleError::Io)?;
    // The master is not a FIFO, but tokio's pipe types only need a pollable descriptor
    // (the "unchecked" constructors skip the FIFO check).
    let dup = |m: &OwnedFd| nix::unistd::dup(m.as_fd()).map_err(|e| ConsoleError::Io(e.into()));
    let mut reader = tokio::net::unix::pipe::Receiver::from_owned_fd_unchecked(dup(&master)?)
        .map_err(ConsoleError::Io)?;
    tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match reader.read(&mut buf).await {
                // EIO: the last holder of the terminal closed it.
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if out.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    if let Some(mut input) = input {
        let mut writer = tokio::net::unix::pipe::Sender::from_owned_fd_unchecked(dup(&master)?)
            .map_err(ConsoleError::Io)?;
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let n = match input.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                if writer.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        });
    }
    Ok(master)
}

fn set_nonblocking(fd: &OwnedFd) -> Result<(), ConsoleError> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let fl = OFlag::from_bits_truncate(
        fcntl(fd.as_fd(), FcntlArg::F_GETFL).map_err(|e| ConsoleError::Io(e.into()))?,
    );
    fcntl(fd.as_fd(), FcntlArg::F_SETFL(fl | OFlag::O_NONBLOCK))
        .map_err(|e| ConsoleError::Io(e.into()))?;
    Ok(())
}
