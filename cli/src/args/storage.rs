//! Where images and root filesystems are kept, and the bounds on unpacking: the flags of
//! `bundle`, `run --image`, `image prune` and `delete`, and the provisioning library's
//! [`StorageConfig`] they make.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use stockade_image::provision::{self, StorageConfig, DEFAULT_STORAGE_ROOT};
use stockade_image::rootfs::unpack::{SizeLimit, UnpackLimits};
use stockade_image::store::DEFAULT_IMAGE_ROOT;

/// Which storage driver makes root filesystems.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DriverKind {
    /// Plain directories (any filesystem).
    Dir,
    /// ZFS datasets, snapshots and clones (needs --zfs-dataset).
    Zfs,
    /// Overlay mounts of layers unpacked once (Linux).
    Overlay,
}

impl From<DriverKind> for provision::DriverKind {
    fn from(k: DriverKind) -> Self {
        match k {
            DriverKind::Dir => provision::DriverKind::Dir,
            DriverKind::Zfs => provision::DriverKind::Zfs,
            DriverKind::Overlay => provision::DriverKind::Overlay,
        }
    }
}

/// Where images and root filesystems are kept.
#[derive(Debug, Clone, Args)]
pub struct StorageArgs {
    /// The image store (an OCI image layout).
    #[arg(long = "image-root", default_value = DEFAULT_IMAGE_ROOT, env = "STOCKADE_IMAGE_ROOT")]
    pub image_root: PathBuf,
    #[command(flatten)]
    pub location: StorageLocation,
    #[command(flatten)]
    pub unpack: UnpackArgs,
}

impl StorageArgs {
    /// The storage these flags name.
    pub fn config(&self) -> StorageConfig {
        self.location.config(self.unpack.limits())
    }
}

/// Where a storage root is and which driver it has: for the commands that remove from it
/// and unpack nothing (`image prune`, `delete`).
#[derive(Debug, Clone, Args)]
pub struct StorageLocation {
    /// Root of the dir driver's layer chains and container root filesystems, and of the
    /// bundles `run --image` writes.
    #[arg(long = "storage-root", default_value = DEFAULT_STORAGE_ROOT, env = "STOCKADE_STORAGE_ROOT")]
    pub storage_root: PathBuf,
    /// Storage driver; default: zfs when --zfs-dataset is given, else overlay where the
    /// kernel mounts it on the storage root (Linux, as root), else dir.
    #[arg(long = "storage-driver", value_enum, env = "STOCKADE_STORAGE_DRIVER")]
    pub storage_driver: Option<DriverKind>,
    /// Parent dataset of the zfs driver (e.g. pool/stockade).
    #[arg(long = "zfs-dataset", env = "STOCKADE_ZFS_DATASET")]
    pub zfs_dataset: Option<String>,
}

impl StorageLocation {
    /// The storage these flags name, with `limits` on unpacking.
    pub fn config(&self, limits: UnpackLimits) -> StorageConfig {
        StorageConfig {
            root: self.storage_root.clone(),
            driver: self.storage_driver.map(Into::into),
            zfs_dataset: self.zfs_dataset.clone(),
            limits,
        }
    }
}

/// Bounds on what an image may unpack to (docs/storage.md, "Bounds on images").
#[derive(Debug, Clone, Args)]
pub struct UnpackArgs {
    /// Most bytes an image's layers may expand to together: `auto` (8x their compressed
    /// size, at least 1 GiB) or a size (suffixes k, m, g, t).
    #[arg(
        long = "max-unpacked-size",
        default_value = "auto",
        env = "STOCKADE_MAX_UNPACKED_SIZE"
    )]
    pub max_unpacked_size: SizeLimit,
    /// Most bytes the sparse files of an image may declare together (their apparent
    /// size): `auto` (as for --max-unpacked-size) or a size.
    #[arg(
        long = "max-sparse-size",
        default_value = "auto",
        env = "STOCKADE_MAX_SPARSE_SIZE"
    )]
    pub max_sparse_size: SizeLimit,
    /// Most entries (files, directories, links…) of an image's layers together.
    #[arg(long = "max-entries", default_value_t = UnpackLimits::default().max_entries, env = "STOCKADE_MAX_ENTRIES")]
    pub max_entries: u64,
    /// Most components of a path in a layer.
    #[arg(long = "max-path-depth", default_value_t = UnpackLimits::default().max_depth, env = "STOCKADE_MAX_PATH_DEPTH")]
    pub max_path_depth: usize,
    /// Most bytes of one entry's long name, long link target or pax header (suffixes k, m).
    #[arg(long = "max-header-size", default_value = "1m", value_parser = parse_bytes, env = "STOCKADE_MAX_HEADER_SIZE")]
    pub max_header_size: u64,
}

impl UnpackArgs {
    /// The bounds these flags give.
    pub fn limits(&self) -> UnpackLimits {
        UnpackLimits {
            max_bytes: self.max_unpacked_size,
            max_sparse_bytes: self.max_sparse_size,
            max_entries: self.max_entries,
            max_depth: self.max_path_depth,
            max_header_bytes: self.max_header_size,
        }
    }
}

/// A byte count (no `auto`).
fn parse_bytes(s: &str) -> Result<u64, String> {
    match s.parse::<SizeLimit>() {
        Ok(SizeLimit::Bytes(b)) => Ok(b),
        Ok(SizeLimit::Auto) => Err("a number of bytes is needed here, not auto".into()),
        Err(e) => Err(e.to_string()),
    }
}
