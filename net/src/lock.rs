//! The lock of one storage root's networks: `<storage root>/networks/.lock`, held with
//! flock(2) exclusively while a network is created or removed (the subnet is picked and the
//! list written as one step) and while the containers' `/etc/hosts` files are rewritten.
//! flock is released by the kernel when its holder dies, so a SIGKILL never leaves it held.

use std::fs::{self, File, OpenOptions};
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};

use crate::{io, NetError};

/// The lock file's name in the networks directory (a dot file: no network is named so).
pub const LOCK_FILE: &str = ".lock";

/// An exclusive hold on a networks directory, released when dropped.
pub struct NetworksLock {
    _lock: Flock<File>,
}

impl NetworksLock {
    /// Waits for and takes the lock of the networks directory `dir` (made when missing).
    pub fn exclusive(dir: &Path) -> Result<NetworksLock, NetError> {
        fs::create_dir_all(dir).map_err(io("creating", dir))?;
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io("opening", &path))?;
        let lock = Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, errno)| io("locking", &path)(std::io::Error::from(errno)))?;
        Ok(NetworksLock { _lock: lock })
    }
}
