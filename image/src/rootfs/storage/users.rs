//! Which image roots use a storage root, and the storage root's lock.
//!
//! Several image stores may share one storage root (a private `--image-root` next to the
//! default one, say). A layer chain may be pruned only when no image in any of them needs
//! it, so every store that prepares or prunes here records its root in
//! `<storage>/image-roots.json`: written whole through a temporary file and a rename,
//! under the exclusive storage lock, so a crash leaves the old list or the new one. A
//! recorded root that no longer holds a store drops out at the next prune.
//!
//! `<storage>/storage.lock` is held shared by whatever makes chains or root filesystems
//! from images (so their image is already named in its store), and exclusively by prune,
//! which therefore sees every image whose chain it could otherwise remove mid-use.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use crate::oci::layout::{self, INDEX_FILE};

use super::StorageError;

/// The list of image roots in a storage root.
pub const USERS_FILE: &str = "image-roots.json";
/// The storage root's lock.
pub const LOCK_FILE: &str = "storage.lock";

/// A held storage lock; released on drop.
#[derive(Debug)]
pub struct StorageLock {
    _lock: Flock<File>,
}

/// Takes the storage lock of `storage_root`, shared or exclusive; waits for it.
pub fn lock(storage_root: &Path, exclusive: bool) -> Result<StorageLock, StorageError> {
    let arg = if exclusive {
        FlockArg::LockExclusive
    } else {
        FlockArg::LockShared
    };
    let lock = flock(&storage_root.join(LOCK_FILE), arg)?;
    Ok(StorageLock { _lock: lock })
}

/// The recorded image roots (none when nothing was recorded yet).
pub fn read(storage_root: &Path) -> Result<Vec<PathBuf>, StorageError> {
    let path = storage_root.join(USERS_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StorageError::Io {
            op: "parsing",
            path,
            source: e.into(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(StorageError::io("reading", &path)(e)),
    }
}

fn write(storage_root: &Path, roots: &[PathBuf]) -> Result<(), StorageError> {
    let path = storage_root.join(USERS_FILE);
    layout::write_json(&path, &roots).map_err(|e| StorageError::Io {
        op: "writing",
        path,
        source: std::io::Error::other(e.to_string()),
    })
}

/// The absolute form of an image root, as recorded.
fn canonical(image_root: &Path) -> PathBuf {
    std::fs::canonicalize(image_root)
        .or_else(|_| std::path::absolute(image_root))
        .unwrap_or_else(|_| image_root.to_path_buf())
}

/// Records `image_root` as a user of `storage_root` (once). The caller holds the storage
/// lock, shared or exclusive; the list itself is changed under an exclusive lock of its own
/// file, so two recorders never lose each other's entry.
pub fn record(storage_root: &Path, image_root: &Path) -> Result<(), StorageError> {
    let me = canonical(image_root);
    if read(storage_root)?.contains(&me) {
        return Ok(());
    }
    let _g = list_lock(storage_root)?;
    let mut roots = read(storage_root)?;
    if !roots.contains(&me) {
        roots.push(me);
        write(storage_root, &roots)?;
    }
    Ok(())
}

/// The recorded roots that still hold a store, plus `current`; the list is rewritten
/// without the others. Called by prune, under the exclusive storage lock.
pub fn live(storage_root: &Path, current: &Path) -> Result<Vec<PathBuf>, StorageError> {
    let _g = list_lock(storage_root)?;
    let me = canonical(current);
    let recorded = read(storage_root)?;
    let mut live: Vec<PathBuf> = recorded
        .iter()
        .filter(|r| r.join(INDEX_FILE).is_file())
        .cloned()
        .collect();
    if !live.contains(&me) {
        live.push(me);
    }
    if live != recorded {
        write(storage_root, &live)?;
    }
    Ok(live)
}

/// The lock that serialises changes of the list itself.
fn list_lock(storage_root: &Path) -> Result<Flock<File>, StorageError> {
    flock(
        &storage_root.join(format!("{USERS_FILE}.lock")),
        FlockArg::LockExclusive,
    )
}

/// Opens (creating) the lock file `path` and takes `arg` on it; waits for it.
fn flock(path: &Path, arg: FlockArg) -> Result<Flock<File>, StorageError> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(StorageError::io("opening", path))?;
    Flock::lock(file, arg)
        .map_err(|(_, e)| StorageError::io("locking", path)(std::io::Error::from(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_are_recorded_once_and_vanished_ones_drop_out() {
        let t = tempfile::tempdir().unwrap();
        let storage = t.path().join("s");
        std::fs::create_dir(&storage).unwrap();
        let a = t.path().join("a");
        let b = t.path().join("b");
        for r in [&a, &b] {
            std::fs::create_dir(r).unwrap();
            std::fs::write(r.join(INDEX_FILE), b"{}").unwrap();
        }
        record(&storage, &a).unwrap();
        record(&storage, &b).unwrap();
        record(&storage, &a).unwrap();
        assert_eq!(read(&storage).unwrap().len(), 2);
        std::fs::remove_dir_all(&b).unwrap();
        let l = live(&storage, &a).unwrap();
        assert_eq!(l, vec![canonical(&a)]);
        assert_eq!(read(&storage).unwrap(), l);
    }
}
