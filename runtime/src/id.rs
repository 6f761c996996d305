//! Container ids.

use std::fmt;

/// Longest accepted container id, in bytes.
pub const MAX_ID_BYTES: usize = 255;

/// A container id: 1 to 255 bytes of ASCII letters, digits and `_ . + -`, and neither `.`
/// nor `..`, so it is always safe as a single path component under the state root.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContainerId(String);

/// Why a string is not a container id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid container id {}: {reason}; ids are 1 to 255 letters, digits, '_', '.', '+' or '-', and not \".\" or \"..\"", stockade_quote::quote(.id))]
pub struct InvalidId {
    pub id: String,
    pub reason: &'static str,
}

impl ContainerId {
    /// Checks `id` and wraps it.
    pub fn parse(id: &str) -> Result<Self, InvalidId> {
        let err = |reason| {
            Err(InvalidId {
                id: id.to_string(),
                reason,
            })
        };
        if id.is_empty() {
            return err("it is empty");
        }
        if id.len() > MAX_ID_BYTES {
            return err("it is longer than 255 bytes");
        }
        if id == "." || id == ".." {
            return err("it is a relative path component");
        }
        if !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'+' | b'-'))
        {
            return err("it contains a character that is not allowed");
        }
        Ok(ContainerId(id.to_string()))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_runc_style_ids() {
        for id in [
            "a",
            "web-1",
            "f00d.cafe",
            "x+y",
            "A_B",
            &"a".repeat(255),
            "123",
            "...",
        ] {
            assert!(ContainerId::parse(id).is_ok(), "{id}");
        }
    }

    #[test]
    fn rejects_empty_long_dot_and_odd_characters() {
        for id in [
            "",
            ".",
            "..",
            "a/b",
            "a b",
            "é",
            "a\0",
            &"a".repeat(256),
            "a:b",
        ] {
            let err = ContainerId::parse(id).unwrap_err();
            assert!(err.to_string().starts_with("invalid container id"), "{err}");
        }
    }
}
