//! Removing what create made, without being redirected by what the container did since.
//!
//! The container may have renamed a mount point and put a symlink to a host path in its
//! place, or replaced a parent directory by a symlink. So every path is walked from a
//! descriptor of the root, one component at a time, never following a symlink (Linux:
//! `openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS` where the
//! kernel has it; otherwise, and on FreeBSD with `O_RESOLVE_BENEATH`, `openat(O_NOFOLLOW)`
//! per component); the last component is inspected with `fstatat(AT_SYMLINK_NOFOLLOW)` and
//! removed with `unlinkat` (which never follows it) only when it is still the very object
//! create made: same device and inode, same kind, and for a directory still empty, for a
//! file still zero bytes long. Anything else is left in place, with a warning saying why.

use std::ffi::OsStr;
use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{fstatat, Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};

use crate::mounts::{Created, CreatedKind};
use crate::platform::beneath::{self, dir_flags};
use stockade_quote::quote_os;

/// Why one recorded object was not removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub path: PathBuf,
    pub reason: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "left {} in place: {}", quote_os(&self.path), self.reason)
    }
}

fn warn(path: &Path, reason: impl Into<String>) -> Warning {
    Warning {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Opens the container's root directory for [`remove_created`]: `O_DIRECTORY|O_NOFOLLOW`,
/// so a root that is now a symlink is refused. The root path itself comes from the caller's
/// bundle, not from the container.
pub fn open_root(root: &Path) -> nix::Result<OwnedFd> {
    nix::fcntl::open(
        root,
        dir_flags() | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// Removes what `records` name (paths under `root_path`, whose descriptor is `root`),
/// innermost first. Objects already gone are fine; everything not removed is returned.
pub fn remove_created(root: BorrowedFd<'_>, root_path: &Path, records: &[Created]) -> Vec<Warning> {
    records
        .iter()
        .rev()
        .filter_map(|r| remove_one(root, root_path, r).err())
        .collect()
}

/// [`remove_created`] from the root's path; a root that cannot be opened leaves everything.
pub fn remove_created_under(root_path: &Path, records: &[Created]) -> Vec<Warning> {
    if records.is_empty() {
        return Vec::new();
    }
    match open_root(root_path) {
        Ok(fd) => remove_created(fd.as_fd(), root_path, records),
        Err(Errno::ENOENT) => Vec::new(),
        Err(e) => records
            .iter()
            .map(|r| {
                warn(
                    &r.path,
                    format!("opening the root {}: {e}", quote_os(root_path)),
                )
            })
            .collect(),
    }
}

fn remove_one(root: BorrowedFd<'_>, root_path: &Path, r: &Created) -> Result<(), Warning> {
    let Ok(rel) = r.path.strip_prefix(root_path) else {
        return Err(warn(&r.path, "not under the container's root"));
    };
    let mut names = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(n) => names.push(n),
            _ => {
                return Err(warn(
                    &r.path,
                    "the recorded path is not a plain path below the root",
                ))
            }
        }
    }
    let Some((last, parents)) = names.split_last() else {
        return Err(warn(&r.path, "the recorded path is the root itself"));
    };
    let parent = match open_beneath(root, parents) {
        Ok(p) => p,
        Err(Errno::ENOENT) => return Ok(()),
        Err(Errno::ELOOP | Errno::ENOTDIR | Errno::EXDEV) => {
            return Err(warn(
                &r.path,
                "a parent directory was replaced (by a symlink or something else)",
            ))
        }
        Err(e) => return Err(warn(&r.path, format!("opening its parent: {e}"))),
    };
    let st = match fstatat(parent.as_fd(), *last, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(warn(&r.path, format!("inspecting it: {e}"))),
    };
    let fmt = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    let found = match fmt {
        SFlag::S_IFDIR => Some(CreatedKind::Dir),
        SFlag::S_IFREG => Some(CreatedKind::File),
        SFlag::S_IFCHR | SFlag::S_IFBLK => Some(CreatedKind::Device),
        SFlag::S_IFLNK => Some(CreatedKind::Symlink),
        _ => None,
    };
    #[allow(clippy::unnecessary_cast)] // the stat field types differ between targets
    let (dev, ino, rdev, size) = (
        st.st_dev as u64,
        st.st_ino as u64,
        st.st_rdev as u64,
        st.st_size as i64,
    );
    let kind = match r.identity {
        Some(id) => {
            if found != Some(id.kind) {
                return Err(warn(
                    &r.path,
                    format!("it is no longer the {} create made", kind_name(id.kind)),
                ));
            }
            if (dev, ino) != (id.dev, id.ino) {
                return Err(warn(
                    &r.path,
                    "it is no longer the object create made (another inode)",
                ));
            }
            if id.kind == CreatedKind::Device && rdev != id.rdev {
                return Err(warn(&r.path, "the device node now names another device"));
            }
            id.kind
        }
        // Recorded just before create made it and died: no container process has run
        // since, so what is there is create's (still only if empty, never followed).
        None if r.intended => match found {
            Some(k) => k,
            None => return Err(warn(&r.path, "not a kind of object create makes")),
        },
        // A record from before identities were kept: only an empty directory is safe.
        None if found == Some(CreatedKind::Dir) => CreatedKind::Dir,
        None => {
            return Err(warn(
                &r.path,
                "recorded without its identity (older state) and not a directory",
            ))
        }
    };
    let result = match kind {
        CreatedKind::Dir => unlinkat(parent.as_fd(), *last, UnlinkatFlags::RemoveDir),
        CreatedKind::File if size != 0 => {
            return Err(warn(&r.path, format!("the file now holds {size} bytes")))
        }
        _ => unlinkat(parent.as_fd(), *last, UnlinkatFlags::NoRemoveDir),
    };
    match result {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(Errno::ENOTEMPTY | Errno::EEXIST) => Err(warn(&r.path, "the directory is not empty")),
        Err(Errno::EBUSY) => Err(warn(&r.path, "something is mounted on it")),
        Err(e) => Err(warn(&r.path, format!("removing it: {e}"))),
    }
}

fn kind_name(k: CreatedKind) -> &'static str {
    match k {
        CreatedKind::Dir => "directory",
        CreatedKind::File => "empty file",
        CreatedKind::Device => "device node",
        CreatedKind::Symlink => "symlink",
    }
}

/// Opens the directory `names` below `root` without following any symlink and without
/// leaving the root: in one call where the backend's kernel can, else one component at a
/// time.
fn open_beneath(root: BorrowedFd<'_>, names: &[&OsStr]) -> nix::Result<OwnedFd> {
    let path: PathBuf = if names.is_empty() {
        PathBuf::from(".")
    } else {
        names.iter().collect()
    };
    match beneath::open_dir(root, &path) {
        Some(r) => r,
        None => walk(root, names),
    }
}

/// The portable walk: one `openat(O_NOFOLLOW|O_DIRECTORY)` per component, with the
/// backend's beneath flag (FreeBSD's `O_RESOLVE_BENEATH`).
fn walk(root: BorrowedFd<'_>, names: &[&OsStr]) -> nix::Result<OwnedFd> {
    let flags = dir_flags() | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | beneath::walk_flag();
    let mut cur = nix::fcntl::openat(root, ".", flags, Mode::empty())?;
    for n in names {
        cur = nix::fcntl::openat(cur.as_fd(), *n, flags, Mode::empty())?;
    }
    Ok(cur)
}

#[cfg(test)]
mod tests;
