//! The OCI image format itself, with no I/O beyond reading a layout directory: content
//! digests, image references, media types, platforms, manifests and indexes, the image
//! layout on disk, and sniffing a blob's compression from its first bytes.
//!
//! Layering inside: `digest` < `reference`; `media`, `platform` < `manifest` < `select`, `layout`;
//! `magic` stands alone. Nothing here imports from the rest of the crate.

pub mod digest;
pub mod layout;
pub mod magic;
pub mod manifest;
pub mod media;
pub mod platform;
pub mod reference;
pub mod select;

pub use digest::Digest;
pub use platform::Platform;
pub use reference::Reference;
