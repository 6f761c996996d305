//! A terminal without `--console-socket`, as runc gives one: stockade listens on a console
//! socket of its own (in a private directory below the state root, which the next relay
//! cleans should this process be killed before the container connected), receives the pty master the container's
//! init sends there, and relays it to its own stdin and stdout: the caller's terminal in
//! raw mode (restored on every way out), its window size followed, the process's exit
//! status returned.

use std::io::{IoSliceMut, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use std::fs::File;
use std::os::unix::fs::DirBuilderExt;

use anyhow::Context;
use nix::fcntl::{Flock, FlockArg};
use nix::sys::termios::{self, SetArg, Termios};
use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};

/// Where the relays' console sockets are, below the state root: one directory each,
/// `<root>/.tty/XXXXXX/`, holding the socket `s` and the file `owner`, which its process
/// holds an exclusive flock on. A SIGKILL before the container connected leaves the
/// directory, with its flock released by the kernel: the next relay (of any container on
/// this state root) removes it.
const RELAY_DIR: &str = ".tty";
const OWNER: &str = "owner";
const SOCKET: &str = "s";

/// A console socket of our own, removed with its directory when dropped.
pub struct ConsoleListener {
    dir: PathBuf,
    path: PathBuf,
    listener: UnixListener,
    _owner: Flock<File>,
}

impl ConsoleListener {
    /// Listens in a fresh directory below the state root `state_root` (only root, or the
    /// caller, can enter it), after removing what killed relays left there.
    pub fn new(state_root: &Path) -> anyhow::Result<ConsoleListener> {
        check_relay_root(state_root)?;
        let base = state_root.join(RELAY_DIR);
        sweep(&base);
        let make = || -> anyhow::Result<PathBuf> {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&base)
                .with_context(|| format!("making {}", base.display()))?;
            nix::unistd::mkdtemp(&base.join("XXXXXX")).with_context(|| {
                format!(
                    "making a directory for the console socket in {}",
                    base.display()
                )
            })
        };
        // Another relay's drop may remove the (empty) base between the two steps.
        let dir = make().or_else(|_| make())?;
        let made = (|| -> anyhow::Result<(Flock<File>, PathBuf, UnixListener)> {
            let owner = dir.join(OWNER);
            let file =
                File::create(&owner).with_context(|| format!("creating {}", owner.display()))?;
            let lock = Flock::lock(file, FlockArg::LockExclusiveNonblock)
                .map_err(|(_, e)| e)
                .with_context(|| format!("locking {}", owner.display()))?;
            let path = dir.join(SOCKET);
            let listener = UnixListener::bind(&path)
                .with_context(|| format!("listening on {}", path.display()))?;
            Ok((lock, path, listener))
        })();
        match made {
            Ok((owner, path, listener)) => Ok(ConsoleListener {
                dir,
                path,
                listener,
                _owner: owner,
            }),
            Err(e) => {
                remove_relay_dir(&dir);
                Err(e)
            }
        }
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
        remove_relay_dir(&self.dir);
    }
}

impl Drop for ConsoleListener {
    fn drop(&mut self) {
        self.remove_path();
    }
}

/// The longest path a unix socket can be bound on here: `sun_path` less its NUL.
fn max_socket_path() -> usize {
    std::mem::size_of::<libc::sockaddr_un>() - std::mem::offset_of!(libc::sockaddr_un, sun_path) - 1
}

/// Refuses a state root too long for a relay's console socket (see [`ConsoleListener`]).
pub fn check_relay_root(state_root: &Path) -> anyhow::Result<()> {
    check_socket_length(&state_root.join(RELAY_DIR))
}

/// Refuses, before anything is made, a relay base whose socket path
/// (`<base>/XXXXXX/s`) would not fit a unix socket address, naming the limit and the
/// state root's part (the runtime connects by this path, so it cannot be shortened by a
/// directory descriptor here).
fn check_socket_length(base: &Path) -> anyhow::Result<()> {
    let len = base.as_os_str().len() + "/XXXXXX/".len() + SOCKET.len();
    let max = max_socket_path();
    if len > max {
        anyhow::bail!(
            "the terminal relay's console socket {}/XXXXXX/{SOCKET} would be {len} bytes; a unix socket path is at most {max} bytes here: use a state root (--root) of at most {} bytes, or pass --console-socket",
            base.display(),
            max - (len - base.parent().map_or(0, |p| p.as_os_str().len()))
        );
    }
    Ok(())
}

/// Removes a relay directory: its two files, then it, then the base when it is empty (so
/// a state root is left as it was). Never recursive: nothing else is ours to remove.
fn remove_relay_dir(dir: &Path) {
    let _ = std::fs::remove_file(dir.join(SOCKET));
    let _ = std::fs::remove_file(dir.join(OWNER));
    let _ = std::fs::remove_dir(dir);
    if let Some(base) = dir.parent() {
        let _ = std::fs::remove_dir(base);
    }
}

/// Removes the relay directories below `base` whose owner is gone: its flock on `owner`
/// can be taken. A directory without `owner` is one whose relay was killed between making
/// the directory and the file, unless that is happening now: it goes once a minute old.
fn sweep(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for ent in entries.flatten() {
        let dir = ent.path();
        let dead = match File::open(dir.join(OWNER)) {
            Ok(f) => Flock::lock(f, FlockArg::LockExclusiveNonblock).is_ok(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => ent
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > std::time::Duration::from_secs(60)),
            Err(_) => false,
        };
        if dead {
            let _ = std::fs::remove_file(dir.join(SOCKET));
            let _ = std::fs::remove_file(dir.join(OWNER));
            let _ = std::fs::remove_dir(&dir);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails with the socket directory in $TMPDIR: nothing removes a killed relay's.
    #[test]
    fn a_killed_relays_directory_is_removed_by_the_next_and_a_live_one_kept() {
        let root = tempfile::tempdir().unwrap();
        let base = root.path().join(RELAY_DIR);
        // A relay killed before the container connected: its files, no flock held.
        let dead = base.join("dead01");
        std::fs::create_dir_all(&dead).unwrap();
        std::fs::write(dead.join(OWNER), b"").unwrap();
        let _sock = UnixListener::bind(dead.join(SOCKET)).unwrap();
        // A live one: its owner holds the flock.
        let live = ConsoleListener::new(root.path()).unwrap();
        assert!(!dead.exists(), "the killed relay's directory is left");
        assert!(live.path().starts_with(&base));
        let other = ConsoleListener::new(root.path()).unwrap();
        assert!(live.path().exists(), "a live relay's socket was removed");
        drop(live);
        drop(other);
        // The last one leaves the state root as it was.
        assert!(!base.exists());
        assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 0);
    }

    /// A state root too long for a socket address is refused by name and limit, with
    /// nothing made; one of exactly the named length works.
    #[test]
    fn a_state_root_too_long_for_the_socket_is_refused_naming_the_limit() {
        let tmp = tempfile::tempdir().unwrap();
        let max = max_socket_path();
        let fits = max - "/.tty/XXXXXX/s".len();
        let pad = |n: usize| {
            let have = tmp.path().as_os_str().len() + 1;
            tmp.path().join("r".repeat(n - have))
        };
        let long = pad(fits + 1);
        std::fs::create_dir(&long).unwrap();
        let err = format!("{:#}", ConsoleListener::new(&long).err().expect("refused"));
        assert!(err.contains(&format!("at most {max} bytes")), "{err}");
        assert!(
            err.contains(&format!("--root) of at most {fits} bytes")),
            "{err}"
        );
        assert!(!long.join(RELAY_DIR).exists());
        let ok = pad(fits);
        std::fs::create_dir(&ok).unwrap();
        let live = ConsoleListener::new(&ok).unwrap();
        assert_eq!(live.path().as_os_str().len(), max);
    }
}
