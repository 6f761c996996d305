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
    #[error("{}: {}", clip(.path), clip(.message))]
    Shape { path: String, message: String },
    #[error("{}: {value} is not valid here; expected {expected}", clip(.path))]
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
            value: clip(&format!("{value:?}")),
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

/// A path or message that may carry a value from the configuration (a map key, serde's
/// echo of a wrong value, a value's debug form): escaped and bounded, without quotes added.
fn clip(s: &str) -> String {
    stockade_quote::clip(s).to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn invalid_values_are_bounded_and_escaped() {
        let long = "x".repeat(10 << 20);
        let e = super::ConfigError::invalid("process.cwd", &long, "an absolute path").to_string();
        assert!(e.len() < 400 && e.contains("bytes in all"), "{}", e.len());
        let e = super::ConfigError::invalid("hostname", "a\u{202e}b\u{0}", "x").to_string();
        assert!(!e.contains('\u{202e}') && !e.contains('\0'), "{e}");
        assert!(e.contains("\\u{202e}"), "{e}");
    }
}
