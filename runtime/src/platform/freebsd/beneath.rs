//! Opening directories beneath a root without following links, the FreeBSD way: plain
//! read-only directory descriptors, and `O_RESOLVE_BENEATH` on each per-component
//! `openat` (FreeBSD has no one-call walk like Linux's `openat2`).
//! (`container::remove_created` calls these; Linux's module has the same names.)

use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::Path;

use nix::fcntl::OFlag;

/// The open flags of a directory descriptor used only to walk from and to `*at` calls.
pub fn dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY
}

/// The flag added to each per-component `openat` of a walk.
pub fn walk_flag() -> OFlag {
    OFlag::from_bits_retain(libc::O_RESOLVE_BENEATH)
}

/// No one-call walk on FreeBSD: the caller walks one component at a time.
pub fn open_dir(_root: BorrowedFd<'_>, _path: &Path) -> Option<nix::Result<OwnedFd>> {
    None
}
