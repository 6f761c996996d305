//! A terminal without `--console-socket`, as runc gives one: stockade listens on a console
//! socket of its own (in a private directory), receives the pty master the container's
//! init sends there, and relays it to its own stdin and stdout: the caller's terminal in
//! raw mode (restored on every way out), its window size followed, the process's exit
//! status returned.

use std::io::{IoSliceMut, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use anyhow::Context;
use nix::sys::termios::{self, SetArg, Termios};
use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};

/// A console socket of our own, removed with its directory when dropped.
pub struct ConsoleListener {
    dir: PathBuf,
    path: PathBuf,
    listener: UnixListener,
}

impl ConsoleListener {
    /// Listens in a fresh directory only root (or the caller) can enter.
    pub fn new() -> anyhow::Result<ConsoleListener> {
        let base = std::env::temp_dir().join("stockade-console.XXXXXX");
        let dir = nix::unistd::mkdtemp(&base).with_context(|| {
            format!(
                "making a directory for the console socket in {}",
                base.display()
            )
        })?;
        let path = dir.join("console.sock");
        let listener = match UnixListener::bind(&path) {
            Ok(l) => l,
            Err(e) => {
                let _ = std::fs::remove_dir(&dir);
                return Err(e).with_context(|| format!("listening on {}", path.display()));
            }
        };
        Ok(ConsoleListener {
            dir,
            path,
            listener,
        })
    }

    /// The path to hand the runtime as its console socket.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The pty master the container sent (it sends during create, so this does not block
    /// once create has returned).
    pub fn receive(&self) -> anyhow::Result<OwnedFd> {
        let (stream, _) = self
            .listener
            .accept()
            .context("accepting the container's console connection")?;
        // Connected: the path is needed no more, and a crash from here on leaves nothing.
        self.remove_path();
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        // The payload is the slave's path (runc's protocol); only the descriptor matters.
        let mut name = [0u8; 4096];
        rustix::net::recvmsg(
            &stream,
            &mut [IoSliceMut::new(&mut name)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        )
        .context("receiving the pty master")?;
        for msg in control.drain() {
            if let RecvAncillaryMessage::ScmRights(mut fds) = msg {
                if let Some(fd) = fds.next() {
                    return Ok(fd);
                }
            }
        }
        anyhow::bail!("the container's console connection carried no pty master")
    }
}

impl ConsoleListener {
    fn remove_path(&self) {
        let _ = std::fs::remove_file(&self.path);
        let _ = std::fs::remove_dir(&self.dir);
    }
}

impl Drop for ConsoleListener {
    fn drop(&mut self) {
        self.remove_path();
    }
}

/// The caller's terminal in raw mode until dropped.
struct RawMode {
    saved: Option<Termios>,
}

impl RawMode {
    /// Raw mode on stdin when it is a terminal; nothing otherwise.
    fn enter() -> anyhow::Result<RawMode> {
        let stdin = std::io::stdin();
        let Ok(saved) = termios::tcgetattr(stdin.as_fd()) else {
            return Ok(RawMode { saved: None });
        };
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw)
            .context("putting the terminal in raw mode")?;
        Ok(RawMode { saved: Some(saved) })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSADRAIN, t);
        }
    }
}

/// The caller's window size (of stdin, else stdout), when it has one.
fn caller_winsize() -> Option<rustix::termios::Winsize> {
    rustix::termios::tcgetwinsize(std::io::stdin())
        .or_else(|_| rustix::termios::tcgetwinsize(std::io::stdout()))
        .ok()
}

/// The caller's window size as (rows, columns), for `process.consoleSize`.
pub fn caller_size() -> Option<(u16, u16)> {
    caller_winsize().map(|w| (w.ws_row, w.ws_col))
}

/// Gives the pty the caller's window size, before the process starts.
pub fn copy_size(master: &OwnedFd) {
    if let Some(ws) = caller_winsize() {
        let _ = rustix::termios::tcsetwinsize(master, ws);
    }
}

/// How often the relay looks at the caller's window size and the process. The relay does
/// not catch SIGWINCH: it runs in one thread (after `exec` joined a pid namespace for its
/// children, this process cannot start threads), and comparing sizes needs no handler.
const TICK_MS: u16 = 100;

/// Relays the caller's stdin to `master` and `master` to the caller's stdout, with the
/// caller's terminal in raw mode and its window size followed, until process `pid` (a child
/// of this process) exits; then relays what it left. Returns its exit status (128+signal).
pub fn relay(master: OwnedFd, pid: i32) -> anyhow::Result<u8> {
    use nix::poll::{poll, PollFd, PollFlags};
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};

    let mut size = caller_winsize();
    if let Some(ws) = size {
        let _ = rustix::termios::tcsetwinsize(&master, ws);
    }
    let _raw = RawMode::enter()?;
    let mut from = std::fs::File::from(master.try_clone().context("duplicating the pty master")?);
    let mut to = std::fs::File::from(master);
    let stdin = std::io::stdin();
    let mut out = std::io::stdout().lock();
    let mut stdin_open = true;
    let mut buf = [0u8; 8192];
    let mut code = None;
    loop {
        let (stdin_ready, master_ready) = {
            let mut fds = vec![PollFd::new(from.as_fd(), PollFlags::POLLIN)];
            if stdin_open {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, TICK_MS) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e).context("waiting for the terminal"),
            }
            let ready = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
            (fds.get(1).is_some_and(ready), ready(&fds[0]))
        };
        if master_ready {
            match from.read(&mut buf) {
                Ok(n) if n > 0 => {
                    out.write_all(&buf[..n])
                        .context("writing the terminal's output")?;
                    out.flush().context("writing the terminal's output")?;
                    continue;
                }
                // EIO or end: no slave is open any more.
                _ => {
                    if code.is_some() {
                        break;
                    }
                }
            }
        } else if code.is_some() {
            // Exited, and a tick passed with nothing more to relay.
            break;
        }
        if stdin_ready {
            match stdin.lock().read(&mut buf) {
                Ok(n) if n > 0 => to.write_all(&buf[..n]).context("writing to the terminal")?,
                _ => stdin_open = false,
            }
        }
        let now = caller_winsize();
        if now.is_some() && now.map(|w| (w.ws_row, w.ws_col)) != size.map(|w| (w.ws_row, w.ws_col))
        {
            size = now;
            if let Some(ws) = now {
                let _ = rustix::termios::tcsetwinsize(&to, ws);
            }
        }
        if code.is_none() {
            let status = waitpid(nix::unistd::Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG))
                .with_context(|| format!("waiting for process {pid}"))?;
            code = match status {
                WaitStatus::Exited(_, c) => Some(u8::try_from(c).unwrap_or(255)),
                WaitStatus::Signaled(_, sig, _) => Some(128u8.saturating_add(sig as u8)),
                _ => None,
            };
        }
    }
    Ok(code.unwrap_or(255))
}
