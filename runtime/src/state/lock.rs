//! The per-container lock: `flock(2)` on `<root>/<id>/lock`, held for the whole of every
//! mutating command, so commands on one id run one after another while different ids never
//! wait on each other.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use super::{io, StateError, LOCK_FILE};
use crate::id::ContainerId;

/// A held lock; released when dropped.
#[derive(Debug)]
pub struct StateLock {
    _lock: Flock<File>,
    dir: PathBuf,
}

impl StateLock {
    pub(super) fn acquire(dir: &Path, id: &ContainerId) -> Result<StateLock, StateError> {
        let path = dir.join(LOCK_FILE);
        loop {
            let file = match std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
            {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(StateError::NotFound(id.clone()))
                }
                Err(e) => return Err(io("opening lock", &path)(e)),
            };
            let lock = Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| {
                StateError::Io {
                    op: "locking",
                    path: path.clone(),
                    source: errno.into(),
                }
            })?;
            // A delete may have removed the directory while this command waited: the lock
            // is only good if the file locked is still the one at the path.
            let held = lock.metadata().map_err(io("inspecting lock", &path))?;
            match std::fs::metadata(&path) {
                Ok(now) if now.ino() == held.ino() && now.dev() == held.dev() => {
                    return Ok(StateLock {
                        _lock: lock,
                        dir: dir.to_path_buf(),
                    })
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
