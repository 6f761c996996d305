//! Provisioning: from an image reference to a runnable bundle and back. The CLI's
//! `bundle`, `run --image`, `image prune` and `delete` are thin wrappers over this module;
//! it decides, the CLI parses flags and prints.
//!
//! - [`pull`]: find an image in the store, pulling it first when it is missing, with the
//!   credentials and platform of [`PullSettings`].
//! - [`storage`]: which storage driver a [`StorageConfig`] means, opened.
//! - [`provisioner`]: layer chains, root filesystems and bundles in a storage root
//!   ([`Provisioner`]), and the prune of chains no store needs.
//! - [`record`]: the crash-safe record of a `run --image` container and its removal.
//! - [`volumes`]: named volumes under the storage root and a run's anonymous volumes.
//! - [`find`]: a stored image by short id or short name, as `image ls` shows them.
//! - [`names`]: the names provisioning invents (a bundle's rootfs name, a run's id).
//!
//! Crash safety of `run --image`: before anything of a container exists on disk, a record
//! `<storage>/provisions/<id>.json` is written atomically. Everything made after it (the
//! root filesystem, `<storage>/bundles/<id>/`) is therefore known to belong to `id`, and
//! [`remove_container`] removes it all, the record last, whatever instant a crash hit.
//! Without the record nothing of the container existed yet.

pub mod find;
pub mod names;
pub mod provisioner;
pub mod pull;
pub mod record;
pub mod storage;
pub mod volumes;

use std::path::PathBuf;

use crate::bundle::BundleError;
use crate::oci::platform::PlatformParseError;
use crate::oci::reference::ReferenceError;
use crate::registry::auth_file::CredentialsError;
use crate::registry::RegistryError;
use crate::rootfs::storage::StorageError;
use crate::store::StoreError;

pub use find::find_image;
pub use names::{bundle_name, generated_id};
pub use provisioner::{BundleRequest, MadeBundle, Provisioner};
pub use pull::{ensure_image, Ensured, PullSettings};
pub use record::{is_provisioned, remove_container, BUNDLES_DIR, PROVISIONS_DIR};
pub use storage::{DriverKind, StorageConfig, DEFAULT_STORAGE_ROOT};

/// Why provisioning failed. Variants that wrap a cause do not repeat it in their text:
/// an error-chain printer shows it once.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error(transparent)]
    Platform(#[from] PlatformParseError),
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// The container's network could not be torn down.
    #[error(transparent)]
    Network(#[from] stockade_net::NetError),
    #[error(transparent)]
    CredsFlag(#[from] crate::registry::credentials::BadCredsFlag),
    #[error(transparent)]
    Mirror(#[from] crate::registry::mirrors::MirrorError),
    /// `--authfile` names a file that is not there (the default files may be missing).
    #[error("auth file {} does not exist", path.display())]
    AuthFileMissing { path: PathBuf },
    /// A short id or name that fits several stored images.
    #[error(
        "{} names several images: {candidates}; give the full name or more of the digest",
        stockade_quote::quote(query)
    )]
    Ambiguous { query: String, candidates: String },
    /// `--platform` asks for another platform than the stored image is for.
    #[error("image {image} in the store is for {have}, not {want}; remove it or pull the other platform under another name")]
    PlatformMismatch {
        image: String,
        want: String,
        have: String,
    },
    /// The zfs driver was asked for without its parent dataset.
    #[error("--storage-driver zfs needs --zfs-dataset POOL/NAME")]
    NoZfsDataset,
    /// The name is taken by an earlier `run --image` (running, stopped or crashed).
    #[error("container {id} already has a bundle from `run --image` ({}); remove it with `stockade delete --force {id}` or choose another --name", path.display())]
    Exists { id: String, path: PathBuf },
    /// A file operation on a provisioning path failed.
    #[error("{op} {}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The record of a `run --image` container could not be written.
    #[error("writing the record {}", path.display())]
    Record {
        path: PathBuf,
        #[source]
        source: crate::oci::layout::LayoutError,
    },
    /// The record was made with another storage driver than the one given now.
    #[error("container {id} was made with the {recorded} storage driver, not {given}; pass --storage-driver {recorded} (and its options)")]
    Driver {
        id: String,
        recorded: String,
        given: &'static str,
    },
}

/// A mapper from an I/O error on `path` to [`ProvisionError::Io`].
fn io(op: &'static str, path: &std::path::Path) -> impl FnOnce(std::io::Error) -> ProvisionError {
    let path = path.to_path_buf();
    move |source| ProvisionError::Io { op, path, source }
}

#[cfg(test)]
mod registry_hosts_tests;
#[cfg(test)]
mod settings_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod volume_tests;
