//! Which storage driver makes root filesystems, and where: the typed form of the CLI's
//! `--storage-root`, `--storage-driver`, `--zfs-dataset` and unpack bounds.

use std::path::PathBuf;

use super::{record, ProvisionError};
use crate::rootfs::storage::dir::DirDriver;
use crate::rootfs::storage::zfs::{SystemZfs, ZfsDriver};
use crate::rootfs::storage::{self, check_id, StorageDriver};
use crate::rootfs::unpack::UnpackLimits;

/// Default root of the dir driver's storage (and of the bundles `run --image` writes).
pub const DEFAULT_STORAGE_ROOT: &str = "/var/db/stockade/storage";

/// A storage driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriverKind {
    /// Plain directories (any file system).
    Dir,
    /// ZFS datasets, snapshots and clones under a parent dataset.
    Zfs,
    /// Overlay mounts of layers unpacked once (Linux).
    Overlay,
}

impl DriverKind {
    /// The driver of this name (as [`StorageDriver::name`] gives it).
    pub fn from_name(name: &str) -> Option<DriverKind> {
        match name {
            "dir" => Some(DriverKind::Dir),
            "zfs" => Some(DriverKind::Zfs),
            "overlay" => Some(DriverKind::Overlay),
            _ => None,
        }
    }
}

/// Where root filesystems are made and by which driver.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// The storage root: the dir driver's chains and root filesystems, the mount points of
    /// the zfs driver's clones, and the bundles and records of `run --image`.
    pub root: PathBuf,
    /// The driver asked for; `None`: zfs when a dataset is given, else overlay where it
    /// works (Linux, root, a kernel that mounts it on the storage root), else dir.
    pub driver: Option<DriverKind>,
    /// The zfs driver's parent dataset (e.g. `pool/stockade`).
    pub zfs_dataset: Option<String>,
    /// Bounds on what an image may unpack to.
    pub limits: UnpackLimits,
}

impl StorageConfig {
    /// The driver this configuration means.
    pub fn kind(&self) -> DriverKind {
        self.driver.unwrap_or(if self.zfs_dataset.is_some() {
            DriverKind::Zfs
        } else if storage::overlay_by_default(&self.root) {
            DriverKind::Overlay
        } else {
            DriverKind::Dir
        })
    }

    /// This configuration with the driver container `id` of `run --image` was made with,
    /// so that `delete` and `rm` need no `--storage-driver` (a container made with `dir`
    /// before overlay became the default one): the driver its record names; for a record
    /// without one (older versions), the driver whose root filesystem for `id` exists;
    /// otherwise this configuration unchanged.
    pub fn for_container(&self, id: &str) -> StorageConfig {
        let kind = record::recorded_driver(&self.root, id)
            .and_then(|n| DriverKind::from_name(&n))
            .or_else(|| self.detect(id));
        StorageConfig {
            driver: kind.or(self.driver),
            ..self.clone()
        }
    }

    /// The driver whose root filesystem of `id` is there, by the drivers' layouts under
    /// the storage root (looked at, not opened: opening makes directories).
    fn detect(&self, id: &str) -> Option<DriverKind> {
        if check_id(id).is_err() {
            return None;
        }
        [
            (
                DriverKind::Overlay,
                self.root.join("overlay/containers").join(id),
            ),
            (DriverKind::Dir, self.root.join("containers").join(id)),
            (DriverKind::Zfs, self.root.join("zfs").join(id)),
        ]
        .into_iter()
        .find(|(_, p)| std::fs::symlink_metadata(p).is_ok())
        .map(|(k, _)| k)
    }

    /// Opens the driver (the dir driver creates its root when missing).
    pub fn open(&self) -> Result<Box<dyn StorageDriver>, ProvisionError> {
        Ok(match self.kind() {
            DriverKind::Dir => Box::new(DirDriver::new(&self.root)?.with_limits(self.limits)),
            DriverKind::Overlay => storage::open_overlay(&self.root, self.limits)?,
            DriverKind::Zfs => {
                let ds = self
                    .zfs_dataset
                    .as_deref()
                    .ok_or(ProvisionError::NoZfsDataset)?;
                // Container clones are mounted under the storage root, so their path is
                // known without asking zfs.
                Box::new(
                    ZfsDriver::new(ds, Some(self.root.join("zfs")), SystemZfs)
                        .with_limits(self.limits),
                )
            }
        })
    }
}
