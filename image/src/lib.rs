//! stockade's image layer: OCI image references, registries, layouts, the local content
//! store, import and export, root file systems and bundles.
//!
//! The groups, lowest first (a module imports only from groups above it in this list):
//! - [`oci`]: the image format (digest, reference, media types, platform, manifest, layout).
//! - [`store`]: the local content store, itself an OCI image layout; everything that adds
//!   to it (pull, import) writes blobs through a verifying writer and names images last.
//! - [`rootfs`]: unpacking layers and the storage drivers that keep unpacked chains.
//! - [`registry`]: the distribution client, credentials and pull.
//! - [`transfer`]: import and export of archives and layouts.
//! - [`bundle`]: an image config laid over a base `config.json`.
//! - [`provision`]: an image made ready to run (pull if missing, rootfs, bundle, cleanup).

pub mod bundle;
pub mod oci;
pub mod provision;
pub mod registry;
pub mod rootfs;
pub mod store;
#[cfg(target_os = "freebsd")]
mod sys;
#[cfg(test)]
mod test_support;
pub mod transfer;

pub use oci::{Digest, Platform, Reference};
pub use store::Store;
