//! Errors from loading and validating a bundle's `config.json`.

use std::path::PathBuf;

/// Why a configuration was rejected. Every variant names the JSON path (or file) involved,
/// the offending value where there is one, and what would have been accepted.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {file}: {source}")]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}: not valid JSON: {source}")]
    Json {
        file: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path}: {message}")]
    Shape { path: String, message: String },
    #[error("{path}: {value} is not valid here; expected {expected}")]
    InvalidValue {
        path: String,
        value: String,
        expected: String,
    },
    #[error("{path}: required but missing; expected {expected}")]
    Missing { path: String, expected: String },
    #[error("{path} conflicts with {other}: {reason}")]
    Conflict {
        path: String,
        other: String,
        reason: String,
    },
}

impl ConfigError {
    /// An invalid value; `value` is shown in JSON form so strings keep their quotes.
    pub(crate) fn invalid(
        path: impl Into<String>,
        value: impl std::fmt::Debug,
        expected: impl Into<String>,
    ) -> Self {
        ConfigError::InvalidValue {
            path: path.into(),
            value: format!("{value:?}"),
            expected: expected.into(),
        }
    }

    /// An invalid value already shown as the message should show it (quoted with
    /// `stockade_quote`, or compact JSON).
    pub(crate) fn untrusted(
        path: impl Into<String>,
        shown: impl std::fmt::Display,
        expected: impl Into<String>,
    ) -> Self {
        ConfigError::InvalidValue {
            path: path.into(),
            value: shown.to_string(),
            expected: expected.into(),
        }
    }

    /// A conflict between two settings.
    pub(crate) fn conflict(
        path: impl Into<String>,
        other: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        ConfigError::Conflict {
            path: path.into(),
            other: other.into(),
            reason: reason.into(),
        }
    }
}
