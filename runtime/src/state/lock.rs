//! The per-container lock: `flock(2)` on `<root>/<id>/lock`, held for the whole of every
//! mutating command, so commands on one id run one after another while different ids never
//! wait on each other.
//!
//! A lock dies with its holder: the descriptor is close-on-exec, and the init process,
//! which inherits a copy across clone/fork, closes that copy before anything else (see
//! `InitHandoff::inherited`). A waiter gives up after [`LOCK_WAIT`] and names the holder's
//! pid, which each holder writes into the lock file, so no command blocks forever behind a
//! stuck one.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use super::{io, StateError, LOCK_FILE};
use crate::id::ContainerId;

/// How long a command waits for another command on the same container.
pub const LOCK_WAIT: Duration = Duration::from_secs(30);

/// A held lock; released when dropped.
#[derive(Debug)]
pub struct StateLock {
    lock: Flock<File>,
    dir: PathBuf,
}

impl StateLock {
    pub(super) fn acquire(dir: &Path, id: &ContainerId) -> Result<StateLock, StateError> {
        Self::acquire_within(dir, id, LOCK_WAIT)
    }

    pub(super) fn acquire_within(
        dir: &Path,
        id: &ContainerId,
        wait: Duration,
    ) -> Result<StateLock, StateError> {
        let path = dir.join(LOCK_FILE);
        let deadline = Instant::now() + wait;
        let mut pause = Duration::from_micros(200);
        loop {
            let file = match std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true)
                .open(&path)
            {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(StateError::NotFound(id.clone()))
                }
                Err(e) => return Err(io("opening lock", &path)(e)),
            };
            // The same open file is retried (not reopened), so a waiter never recreates
            // the lock file of a directory a delete is removing.
            let mut file = file;
            let mut lock = loop {
                match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                    Ok(l) => break l,
                    Err((mut f, Errno::EWOULDBLOCK)) => {
                        if Instant::now() >= deadline {
                            return Err(StateError::Busy {
                                id: id.clone(),
                                holder: holder_of(&mut f),
                                seconds: wait.as_secs(),
                            });
                        }
                        std::thread::sleep(pause);
                        pause = (pause * 2).min(Duration::from_millis(50));
                        file = f;
                    }
                    Err((_, errno)) => {
                        return Err(StateError::Io {
                            op: "locking",
                            path: path.clone(),
                            source: errno.into(),
                        })
                    }
                }
            };
            // A delete may have removed the directory while this command waited: the lock
            // is only good if the file locked is still the one at the path.
            let held = lock.metadata().map_err(io("inspecting lock", &path))?;
            match std::fs::metadata(&path) {
                Ok(now) if now.ino() == held.ino() && now.dev() == held.dev() => {
                    // Who holds it, for the message of a command that gives up waiting.
                    let _ = lock.set_len(0);
                    let _ = lock.write_all_at_start(std::process::id());
                    return Ok(StateLock {
                        lock,
                        dir: dir.to_path_buf(),
                    });
                }
                Ok(_) => continue,
                Err(_) => return Err(StateError::NotFound(id.clone())),
            }
        }
    }

    /// The locked container's state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl AsRawFd for StateLock {
    /// The lock's descriptor, which a child process must close (see the module comment).
    fn as_raw_fd(&self) -> RawFd {
        self.lock.as_raw_fd()
    }
}

trait WritePid {
    fn write_all_at_start(&mut self, pid: u32) -> std::io::Result<()>;
}

impl WritePid for File {
    fn write_all_at_start(&mut self, pid: u32) -> std::io::Result<()> {
        self.rewind()?;
        self.write_all(pid.to_string().as_bytes())
    }
}

/// The pid the current holder wrote into the lock file, if it is readable.
fn holder_of(file: &mut File) -> Option<u32> {
    let mut s = String::new();
    file.rewind().ok()?;
    file.take(16).read_to_string(&mut s).ok()?;
    s.trim().parse().ok()
}
