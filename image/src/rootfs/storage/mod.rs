//! Root filesystem storage: layer chains unpacked once, container root filesystems made
//! from them. Three drivers behind [`StorageDriver`]: [`dir::DirDriver`] (plain
//! directories, any filesystem), [`zfs::ZfsDriver`] (a dataset per chain, a clone per
//! container) and, on Linux, `overlay::OverlayDriver` (a directory per layer, an overlay
//! mount per container).
//! The on-disk layout and what is shared are described in `docs/storage.md`.

mod copy;
pub mod dir;
#[cfg(target_os = "linux")]
pub mod overlay;
pub mod stale;
mod tmpdir;
pub mod users;
pub mod zfs;

use std::io;
use std::path::{Path, PathBuf};

use crate::oci::digest::Digest;
use crate::rootfs::unpack::{LayerHook, LayerSource, UnpackError, UnpackLimits};

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A file operation on a storage path failed.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// A layer could not be applied.
    #[error("unpacking chain {chain}: {source}")]
    Unpack {
        chain: Digest,
        source: Box<UnpackError>,
    },
    /// The `zfs` command failed.
    #[error("zfs {args}: {message}")]
    Zfs { args: String, message: String },
    /// The container id is not usable as a name.
    #[error("container id {} is not valid here; expected letters, digits, '_', '-', '.' (not starting with '.')", stockade_quote::quote(id))]
    BadId { id: String },
    /// A container rootfs already exists.
    #[error("a root filesystem for container {id} already exists at {path}")]
    Exists { id: String, path: PathBuf },
    /// The chain has not been prepared.
    #[error("layer chain {chain} is not in storage")]
    NoChain { chain: Digest },
    /// The driver cannot work on this host.
    #[error("the {driver} storage driver cannot be used here: {reason}")]
    Unsupported {
        driver: &'static str,
        reason: String,
    },
}

impl StorageError {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> StorageError {
        let path = path.into();
        move |source| StorageError::Io { op, path, source }
    }
}

/// The chainIDs of a list of diffIDs, lowest first: `ChainID(L0) = DiffID(L0)`,
/// `ChainID(L0..Ln) = sha256(ChainID(L0..Ln-1) + " " + DiffID(Ln))` (OCI image spec).
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => Digest::sha256_of(format!("{prev} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

/// A prepared image: the chain its root filesystems are made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// The top chainID.
    pub chain: Digest,
    /// Layers actually unpacked now (0 when the chain was already there).
    pub unpacked_layers: usize,
}

/// A rootfs storage driver.
pub trait StorageDriver {
    /// `dir` or `zfs`.
    fn name(&self) -> &'static str;
    /// Makes sure the chain of `layers` (lowest first) is unpacked, once.
    fn prepare(&self, layers: &[LayerSource]) -> Result<Prepared, StorageError>;
    /// Makes container `id`'s root filesystem from the chain and returns its path.
    fn create_rootfs(&self, chain: &Digest, id: &str) -> Result<PathBuf, StorageError>;
    /// The path container `id`'s root filesystem has (or would have).
    fn rootfs_path(&self, id: &str) -> Result<PathBuf, StorageError>;
    /// Removes container `id`'s root filesystem; missing is not an error.
    fn remove_rootfs(&self, id: &str) -> Result<(), StorageError>;
    /// Removes every stored chain not in `keep` (and not needed by one in `keep` or by a
    /// container); returns what was removed.
    fn prune(&self, keep: &[Digest]) -> Result<Vec<Digest>, StorageError>;
    /// Has `hook` told of each layer this driver unpacks from now on (a progress display).
    fn set_layer_hook(&mut self, hook: LayerHook);
}

/// Whether `overlay` is the default driver for `storage_root`: on Linux, as root, when the
/// kernel mounts an overlay with whiteouts and opaque directories on the storage file
/// system (probed once per kernel, the answer kept in the storage root).
pub fn overlay_by_default(storage_root: &Path) -> bool {
    #[cfg(target_os = "linux")]
    {
        // Mounting and the trusted.* markers need root in the host's user namespace; a
        // rootless run keeps the dir driver without asking.
        if !nix::unistd::geteuid().is_root() {
            return false;
        }
        match overlay::supported(storage_root) {
            Ok(()) => true,
            Err(why) => {
                tracing::debug!("overlay storage not available, using dir: {why}");
                false
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = storage_root;
        false
    }
}

/// The `overlay` driver under `storage_root`, when this host can have it.
pub fn open_overlay(
    storage_root: &Path,
    limits: UnpackLimits,
) -> Result<Box<dyn StorageDriver>, StorageError> {
    #[cfg(target_os = "linux")]
    {
        if !nix::unistd::geteuid().is_root() {
            return Err(StorageError::Unsupported {
                driver: "overlay",
                reason: "it mounts and sets trusted.* attributes, which needs root".into(),
            });
        }
        overlay::supported(storage_root).map_err(|reason| StorageError::Unsupported {
            driver: "overlay",
            reason,
        })?;
        Ok(Box::new(
            overlay::OverlayDriver::new(storage_root)?.with_limits(limits),
        ))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (storage_root, limits);
        Err(StorageError::Unsupported {
            driver: "overlay",
            reason: "overlayfs is Linux-only; use dir or zfs".into(),
        })
    }
}

/// Checks a container id before it becomes a file or dataset name.
pub fn check_id(id: &str) -> Result<(), StorageError> {
    let ok = !id.is_empty()
        && id.len() <= 200
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(StorageError::BadId { id: id.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_oci_rule() {
        let a = Digest::sha256_of(b"a");
        let b = Digest::sha256_of(b"b");
        let ids = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(ids[0], a);
        assert_eq!(ids[1], Digest::sha256_of(format!("{a} {b}").as_bytes()));
    }

    #[test]
    fn ids_that_are_not_names_are_refused() {
        assert!(check_id("web-1.a_b").is_ok());
        for bad in ["", "..", ".x", "a/b", "a b"] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
    }
}
