//! Entry names: turning a tar path into components that stay inside the target, and
//! recognising whiteouts.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use super::error::EntryError;

/// The prefix of a whiteout file: `.wh.NAME` removes `NAME` of the lower layers.
pub(crate) const WHITEOUT_PREFIX: &str = ".wh.";
/// The name that makes its directory opaque: nothing of the lower layers shows through.
pub(crate) const OPAQUE: &str = ".wh..wh..opq";

/// A tar path made relative to the target: no root, no `.`, no `..`. Empty means the
/// target itself.
pub(crate) fn normalize(raw: &Path) -> Result<PathBuf, EntryError> {
    let mut out = PathBuf::new();
    for c in raw.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            // Rejected rather than clamped: an honest layer never contains these, and
            // reinterpreting one would hide a hostile image behind a silently changed path.
            Component::RootDir | Component::Prefix(_) => {
                return Err(EntryError::Unsafe(
                    "absolute paths are not allowed in a layer".into(),
                ))
            }
            Component::ParentDir => {
                return Err(EntryError::Unsafe(
                    "'..' is not allowed in a layer path".into(),
                ))
            }
        }
    }
    Ok(out)
}

/// What an entry name means for the lower layers.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Whiteout<'a> {
    /// Not a whiteout: an ordinary entry.
    None,
    /// `.wh..wh..opq`: the parent directory becomes opaque.
    Opaque,
    /// `.wh.NAME`: `NAME` in the same directory is removed.
    Remove(&'a OsStr),
}

/// Classifies the last component of a normalised path.
pub(crate) fn whiteout(name: &OsStr) -> Result<Whiteout<'_>, EntryError> {
    let bytes = name.as_bytes();
    if bytes == OPAQUE.as_bytes() {
        return Ok(Whiteout::Opaque);
    }
    match bytes.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
        None => Ok(Whiteout::None),
        Some(rest) => {
            if rest.is_empty() || rest == b"." || rest == b".." || rest.contains(&b'/') {
                return Err(EntryError::Unsafe(format!(
                    "whiteout names {}, which is not a file name",
                    stockade_quote::quote(rest)
                )));
            }
            Ok(Whiteout::Remove(OsStr::from_bytes(rest)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_strips_dot_and_keeps_names() {
        assert_eq!(normalize(Path::new("./a/./b/")).unwrap(), Path::new("a/b"));
        assert_eq!(normalize(Path::new("./")).unwrap(), Path::new(""));
    }

    #[test]
    fn normalize_rejects_absolute_and_parent() {
        assert!(normalize(Path::new("/etc/passwd")).is_err());
        assert!(normalize(Path::new("a/../../b")).is_err());
        assert!(normalize(Path::new("..")).is_err());
    }

    #[test]
    fn whiteout_kinds() {
        assert_eq!(whiteout(OsStr::new("x")).unwrap(), Whiteout::None);
        assert_eq!(
            whiteout(OsStr::new(".wh..wh..opq")).unwrap(),
            Whiteout::Opaque
        );
        assert_eq!(
            whiteout(OsStr::new(".wh.x")).unwrap(),
            Whiteout::Remove(OsStr::new("x"))
        );
        assert!(whiteout(OsStr::new(".wh...")).is_err());
        assert!(whiteout(OsStr::new(".wh.")).is_err());
    }
}
