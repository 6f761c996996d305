//! stockade's image layer: OCI image references, registries, layouts, the local content
//! store, import and export.
//!
//! The store ([`store::Store`]) is itself an OCI image layout; everything that adds to it
//! (pull, import) writes blobs through a verifying writer and names images last.

pub mod bundle;
pub mod digest;
pub mod export;
pub mod import;
pub mod layout;
pub mod magic;
pub mod manifest;
pub mod platform;
pub mod progress;
pub mod provision;
pub mod reference;
pub mod registry;
pub mod remove;
pub mod storage;
pub mod store;
#[cfg(target_os = "freebsd")]
mod sys;
pub mod unpack;

pub use digest::Digest;
pub use platform::Platform;
pub use reference::Reference;
pub use store::Store;
