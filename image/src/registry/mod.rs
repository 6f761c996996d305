//! Pulling from and pushing to registries that speak the OCI distribution API (v2).
//!
//! Layering, lowest first: `credentials` < `cred_helper` < `auth_file` < `login`;
//! `challenge`, `credentials` < `token` < `client` (transport) < `resume` (blob downloads)
//! < `pull`, and `client` < `upload` (blob and manifest writes) < `push`; `mirrors` (the
//! config file's per-host settings) is used by `pull`; `progress`
//! (terminal bars) is used by `pull` and `push`.

pub mod auth_file;
pub mod challenge;
pub mod client;
pub mod cred_helper;
pub mod credentials;
pub mod login;
pub mod mirrors;
#[cfg(test)]
mod mirrors_tests;
pub mod progress;
pub mod pull;
pub mod push;
pub mod resume;
#[cfg(test)]
mod test_server;
pub mod token;
pub mod upload;

pub use client::{Client, ClientOptions};
pub use credentials::Credentials;
pub use mirrors::{HostSettings, RegistryHosts};
pub use pull::{pull, Mirror, PullOptions, PullReport};
pub use push::{push, PushOptions, PushReport};

use crate::oci::digest::Digest;
use crate::oci::manifest::ManifestError;
use crate::store::StoreError;

/// Errors of talking to a registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The request never got an answer (connection refused, reset, timed out).
    #[error("{method} {url}: {source}")]
    Http {
        method: String,
        url: String,
        source: ureq::Error,
    },
    #[error("{method} {url}: HTTP {status}{}", if detail.is_empty() { String::new() } else { format!(": {detail}") })]
    Status {
        method: String,
        url: String,
        status: u16,
        detail: String,
    },
    #[error(
        "{registry}/{repository}: access denied ({url}); {}",
        if *identity_token {
            "the identity token was refused, or the registry asked for Basic credentials, which an identity token cannot answer (use --creds user:password)"
        } else if *had_credentials {
            "the credentials were refused"
        } else {
            "the registry requires credentials: use --creds user:password, or an auth file entry (auths, credHelpers or credsStore)"
        }
    )]
    Unauthorized {
        registry: String,
        repository: String,
        url: String,
        had_credentials: bool,
        /// The credentials were an identity token (an OAuth2 refresh token).
        identity_token: bool,
    },
    #[error("getting a token for {registry}: {detail}")]
    Token { registry: String, detail: String },
    #[error("manifest {reference} not found{}", if detail.is_empty() { String::new() } else { format!(" ({detail})") })]
    ManifestNotFound { reference: String, detail: String },
    #[error("manifest {reference}: content has digest {actual}, expected {expected}; refusing it")]
    ManifestDigest {
        reference: String,
        expected: Digest,
        actual: Digest,
    },
    #[error(
        "manifest {reference}: the index entry says {expected} bytes, the registry sent {actual}"
    )]
    ManifestSize {
        reference: String,
        expected: u64,
        actual: u64,
    },
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("{reference}: no image for platform {wanted}; the index offers: {}", if offered.is_empty() { "nothing with a platform".to_string() } else { offered.join(", ") })]
    Platform {
        reference: String,
        wanted: String,
        offered: Vec<String>,
    },
    #[error(
        "{reference}: an index entry points to another index; nested indexes are not supported"
    )]
    NestedIndex { reference: String },
    #[error("{reference}: the image is for {actual}, not the requested {wanted} (it is not a multi-platform image)")]
    PlatformMismatch {
        reference: String,
        wanted: String,
        actual: String,
    },
    #[error("blob {digest} not found in the registry")]
    BlobNotFound { digest: Digest },
    #[error("blob {digest}: giving up after {attempts} attempts; last error: {last}")]
    BlobFailed {
        digest: Digest,
        attempts: u32,
        last: String,
    },
    #[error("blob {digest} in the store: expected {expected} bytes, read {actual}; the store is damaged and the upload was abandoned")]
    StoredBlobSize {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("blob {digest} in the store: content has digest {actual}; the store is damaged and the upload was abandoned")]
    StoredBlobDigest { digest: Digest, actual: Digest },
    #[error("{url}: {detail}")]
    Location { url: String, detail: String },
    #[error(
        "{url}: the registry stored {} for content whose digest is {expected}",
        stockade_quote::quote(answered)
    )]
    PushedDigest {
        url: String,
        expected: Digest,
        answered: String,
    },
    #[error("cannot push {source_name} as {destination}: the destination pins digest {pinned}, the image is {actual}")]
    PinnedDigest {
        source_name: String,
        destination: String,
        pinned: Digest,
        actual: Digest,
    },
    #[error("download aborted because another blob failed")]
    Aborted,
    #[error(transparent)]
    Store(#[from] StoreError),
}
