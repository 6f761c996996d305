//! Opening directories beneath a root without following links, the Linux way: `O_PATH`
//! descriptors to walk from, and `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
//! RESOLVE_NO_MAGICLINKS)` doing the whole walk in one call where the kernel has it.
//! (`container::remove_created` calls these; FreeBSD's module has the same names.)

use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};

/// The open flags of a directory descriptor used only to walk from and to `*at` calls.
pub fn dir_flags() -> OFlag {
    OFlag::O_PATH | OFlag::O_DIRECTORY
}

/// The flag added to each per-component `openat` of a walk (none: a single plain name
/// cannot leave its directory, and `O_NOFOLLOW` is given by the walk).
pub fn walk_flag() -> OFlag {
    OFlag::empty()
}

/// Opens the directory `path` (plain names, relative) beneath `root` in one kernel call;
/// `None` where the kernel lacks `openat2` (before 5.6, or a sandbox refusing it), and the
/// caller walks one component at a time.
pub fn open_dir(root: BorrowedFd<'_>, path: &Path) -> Option<nix::Result<OwnedFd>> {
    let how = OpenHow::new()
        .flags(dir_flags() | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
        .resolve(
            ResolveFlag::RESOLVE_BENEATH
                | ResolveFlag::RESOLVE_NO_SYMLINKS
                | ResolveFlag::RESOLVE_NO_MAGICLINKS,
        );
    match nix::fcntl::openat2(root, path, how) {
        Err(Errno::ENOSYS | Errno::EPERM) => None,
        r => Some(r),
    }
}
