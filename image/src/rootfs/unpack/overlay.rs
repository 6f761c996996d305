//! Whiteouts kept as overlayfs reads them, for a layer unpacked into a directory of its own
//! that becomes one `lowerdir` of an overlay mount (the `overlay` storage driver).
//!
//! `.wh.NAME` becomes a character device 0/0 named `NAME`; `.wh..wh..opq` becomes the
//! extended attribute `trusted.overlay.opaque=y` on its directory. The `trusted.` names
//! (rather than overlayfs's `userxattr` variant, `user.overlay.*`) because only a process
//! with `CAP_SYS_ADMIN` in the host's user namespace can set them: a container, root in its
//! own user namespace or not, cannot forge an opaque marker or a redirect in its upper
//! directory, while anyone who owns a file can set `user.*` on it.
//!
//! A layer must not plant these markers itself, or it could hide or redirect what lower
//! layers provide in ways no tar whiteout expresses: its own overlay extended attributes
//! (`trusted.overlay.*`, `user.overlay.*`) are left out and counted, and a character
//! device 0/0 in the tar — which the `dir` driver would make as a device node but which an
//! overlay mount would read as a whiteout — is refused.

use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::BorrowedFd;

use nix::errno::Errno;
use nix::sys::stat::{mknodat, Mode, SFlag};

use super::error::EntryError;
use super::meta::Meta;

/// How whiteouts of a layer are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Whiteouts {
    /// Carried out: what they name in the target (lower layers) is removed.
    #[default]
    Apply,
    /// Kept as overlayfs whiteouts and opaque markers, for a layer of its own.
    Overlay,
}

/// The extended attribute that makes a directory opaque to the layers below it.
pub const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// Whether an extended attribute name is overlayfs's own (in either namespace).
pub(crate) fn is_overlay_xattr(name: &OsStr) -> bool {
    let b = name.as_encoded_bytes();
    b.starts_with(b"trusted.overlay.") || b.starts_with(b"user.overlay.")
}

/// Drops the overlay attributes a layer carries; returns how many.
pub(crate) fn strip_xattrs(meta: &mut Meta) -> usize {
    let before = meta.xattrs.len();
    meta.xattrs.retain(|(k, _)| !is_overlay_xattr(k));
    before - meta.xattrs.len()
}

/// Refuses a character device 0/0: under overlay it would be a whiteout.
pub(crate) fn check_device(major: u64, minor: u64) -> Result<(), EntryError> {
    if major == 0 && minor == 0 {
        return Err(EntryError::Unsafe(
            "a character device 0/0 is an overlay whiteout; a layer must use .wh. names".into(),
        ));
    }
    Ok(())
}

/// Makes the whiteout node `name` in `dir`; an existing one is kept.
pub(crate) fn make_whiteout(dir: BorrowedFd<'_>, name: &OsStr) -> Result<(), EntryError> {
    match mknodat(dir, name, SFlag::S_IFCHR, Mode::empty(), 0) {
        Ok(()) | Err(Errno::EEXIST) => Ok(()),
        Err(e) => Err(EntryError::fs("making an overlay whiteout")(e)),
    }
}

/// Marks the directory `dir` opaque.
pub(crate) fn mark_opaque(dir: BorrowedFd<'_>) -> Result<(), EntryError> {
    use xattr::FileExt;
    let owned = dir
        .try_clone_to_owned()
        .map_err(|e| EntryError::Fs("dup", e))?;
    File::from(owned)
        .set_xattr(OPAQUE_XATTR, b"y")
        .map_err(|e| EntryError::Fs("marking a directory opaque", e))
}
