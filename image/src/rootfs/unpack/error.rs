//! Why a layer could not be applied. Every variant names the layer or entry involved.

use std::io;
use std::path::PathBuf;

use crate::oci::digest::Digest;

/// An error while applying a layer.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// The target directory or a layer blob could not be opened.
    #[error("opening {path}: {source}")]
    Open { path: PathBuf, source: io::Error },
    /// The layer's media type is not a tar layer we can decode.
    #[error("layer {layer}: media type {} is not a layer type we can unpack; accepted: tar, tar+gzip, tar+zstd (OCI or Docker)", stockade_quote::quote(media_type))]
    MediaType { layer: Digest, media_type: String },
    /// The bytes of the blob do not start as its media type says.
    #[error(
        "layer {layer}: media type {} but the content starts like {found}",
        stockade_quote::quote(media_type)
    )]
    Magic {
        layer: Digest,
        media_type: String,
        found: &'static str,
    },
    /// Decompression or tar framing failed.
    // The tar reader's messages may carry raw header bytes of the (hostile) layer.
    #[error("layer {layer}: reading the tar stream: {}", stockade_quote::quote(&source.to_string()))]
    Read { layer: Digest, source: io::Error },
    /// The uncompressed stream does not hash to the diffID of the image config.
    #[error("layer {layer}: uncompressed content has digest {actual}, but the image config says {expected}; the layer is corrupt")]
    DiffId {
        layer: Digest,
        expected: Digest,
        actual: Digest,
    },
    /// An entry would reach outside the target or is otherwise malformed.
    #[error("layer {layer}: entry {}: {reason}", stockade_quote::quote(entry))]
    Unsafe {
        layer: Digest,
        entry: String,
        reason: String,
    },
    /// A filesystem operation for an entry failed.
    #[error(
        "layer {layer}: entry {}: {op}: {source}",
        stockade_quote::quote(entry)
    )]
    Fs {
        layer: Digest,
        entry: String,
        op: &'static str,
        source: io::Error,
    },
    /// The image exceeds a bound of [`super::UnpackLimits`].
    #[error("layer {layer}: {reason}")]
    Limit { layer: Digest, reason: String },
    /// The image has a different number of layers and diffIDs.
    #[error("the image has {layers} layers but its config lists {diff_ids} diffIDs")]
    LayerCount { layers: usize, diff_ids: usize },
}

/// What went wrong with one entry, before the layer digest is attached.
#[derive(Debug)]
pub(crate) enum EntryError {
    Unsafe(String),
    Fs(&'static str, io::Error),
}

impl EntryError {
    pub(crate) fn fs(op: &'static str) -> impl FnOnce(nix::errno::Errno) -> EntryError {
        move |e| EntryError::Fs(op, io::Error::from(e))
    }

    pub(crate) fn into_unpack(self, layer: &Digest, entry: &str) -> UnpackError {
        match self {
            EntryError::Unsafe(reason) => UnpackError::Unsafe {
                layer: layer.clone(),
                entry: entry.to_string(),
                reason,
            },
            EntryError::Fs(op, source) => UnpackError::Fs {
                layer: layer.clone(),
                entry: entry.to_string(),
                op,
                source,
            },
        }
    }
}
