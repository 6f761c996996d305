//! Telling a live temporary from one a crash left behind.
//!
//! A directory being unpacked is locked (`flock`) by its writer for as long as it works
//! on it; the kernel drops the lock when the writer dies, however it dies. So prune
//! removes a temporary directory exactly when it can take that lock itself: no age guess,
//! and a live unpack is never touched. Small temporary files (atomic writes of a few
//! bytes, which hold no lock) go when older than [`STALE_AGE`].

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

/// Age after which an unlocked temporary file is stale.
pub const STALE_AGE: Duration = Duration::from_secs(3600);

fn open_dir(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Locks the directory `path` for its writer; held until dropped (or the writer dies).
pub fn lock_dir(path: &Path) -> std::io::Result<Flock<File>> {
    Flock::lock(open_dir(path)?, FlockArg::LockExclusive).map_err(|(_, e)| e.into())
}

/// Whether the directory `path` is abandoned: nobody holds its lock. A path that is not
/// a directory (or vanished) is not ours to judge and counts as live.
pub fn abandoned(path: &Path) -> bool {
    let Ok(f) = open_dir(path) else {
        return false;
    };
    match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
        Ok(_held) => true,
        Err((_, Errno::EWOULDBLOCK)) => false,
        Err(_) => false,
    }
}

/// Whether the file or directory at `path` was last changed more than [`STALE_AGE`] ago.
pub fn old(path: &Path) -> bool {
    std::fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|age| age > STALE_AGE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_locked_directory_is_live_and_an_unlocked_one_abandoned() {
        let t = tempfile::tempdir().unwrap();
        let held = lock_dir(t.path()).unwrap();
        assert!(!abandoned(t.path()));
        drop(held);
        assert!(abandoned(t.path()));
        assert!(!abandoned(&t.path().join("missing")));
        assert!(!old(t.path()));
    }
}
