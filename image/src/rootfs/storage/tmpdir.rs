//! What the `dir` and `overlay` drivers share about their unpacked trees: an unpack goes
//! into a locked temporary directory next to its final place and is renamed there only
//! when complete; prune renames a tree out of the way before removing it, and removes the
//! temporaries whose writer is gone.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use nix::fcntl::Flock;

use crate::oci::digest::Digest;
use crate::rootfs::remove::remove_tree;
use crate::rootfs::unpack::UnpackError;

use super::stale::{abandoned, lock_dir};
use super::StorageError;

/// `<parent>/.tmp-<chain hex>-<pid>`, made fresh and locked by its writer for as long as
/// this value lives: prune removes a temporary only when it can take that lock, i.e. when
/// its writer is gone.
pub(crate) struct TmpTree {
    pub path: PathBuf,
    _lock: Flock<File>,
}

impl TmpTree {
    /// Makes the temporary directory for `chain` under `parent` (a leftover of this pid is
    /// removed first) and locks it; `fault` is the fault point once it exists.
    pub fn create(parent: &Path, chain: &Digest, fault: &str) -> Result<TmpTree, StorageError> {
        let path = parent.join(format!(".tmp-{}-{}", chain.hex(), std::process::id()));
        if fs::symlink_metadata(&path).is_ok() {
            remove_tree(&path).map_err(StorageError::io("removing", &path))?;
        }
        fs::create_dir(&path).map_err(StorageError::io("creating", &path))?;
        let lock = lock_dir(&path).map_err(StorageError::io("locking", &path))?;
        stockade_fault::point(fault);
        Ok(TmpTree { path, _lock: lock })
    }

    /// Runs `unpack` on the directory; on failure the half-written tree goes, so it is
    /// never left where a chain or layer is looked for.
    pub fn unpack<T>(
        self,
        chain: &Digest,
        unpack: impl FnOnce(&Path) -> Result<T, UnpackError>,
    ) -> Result<(TmpTree, T), StorageError> {
        match unpack(&self.path) {
            Ok(t) => Ok((self, t)),
            Err(source) => {
                let _ = remove_tree(&self.path);
                Err(StorageError::Unpack {
                    chain: chain.clone(),
                    source: Box::new(source),
                })
            }
        }
    }

    /// Renames the complete tree to `dest`. Another process that finished the same tree
    /// first wins: theirs is as good, and ours goes.
    pub fn place(&self, dest: &Path) -> Result<(), StorageError> {
        match fs::rename(&self.path, dest) {
            Ok(()) => Ok(()),
            Err(_) if dest.is_dir() => {
                let _ = remove_tree(&self.path);
                Ok(())
            }
            Err(e) => Err(StorageError::io("renaming into place", dest)(e)),
        }
    }

    /// Removes the tree (an unpack that will not be placed: one of several layers of the
    /// overlay driver, Linux-only, when another failed).
    #[cfg(target_os = "linux")]
    pub fn discard(&self) {
        let _ = remove_tree(&self.path);
    }
}

/// For prune: removes the temporary `path` (named `.tmp-…`) when its writer is gone
/// (a live unpack holds the lock). Returns whether `path` was such a temporary.
pub(crate) fn remove_if_abandoned(path: &Path, name: &str) -> Result<bool, StorageError> {
    if !name.starts_with(".tmp-") {
        return Ok(false);
    }
    if abandoned(path) {
        remove_tree(path).map_err(StorageError::io("removing", path))?;
    }
    Ok(true)
}

/// For prune: removes the stored tree `path` (named `name`), renamed out of the way
/// first: a crash halfway through the removal must not leave a partial tree under a name
/// where it would pass for whole. Under the temporary name, the next prune finishes it.
/// `fault` is the fault point after the rename.
pub(crate) fn remove_renamed(path: &Path, name: &str, fault: &str) -> Result<(), StorageError> {
    let parent = path.parent().unwrap_or(Path::new("."));
    let doomed = parent.join(format!(".tmp-{name}-rm{}", std::process::id()));
    fs::rename(path, &doomed).map_err(StorageError::io("renaming", path))?;
    stockade_fault::point(fault);
    remove_tree(&doomed).map_err(StorageError::io("removing", &doomed))
}
