//! The target tree, reached only through directory descriptors. Every path is walked one
//! component at a time from the target's own descriptor with `O_NOFOLLOW`, so no symlink,
//! whoever planted it, is ever followed, and no `..` exists to climb with (names are
//! normalised before they get here). Final operations use the `*at` calls on the parent
//! descriptor with a single name and never follow a symlink either.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fstatat, mkdirat, FileStat, Mode, SFlag};

use super::error::EntryError;

/// Flags for opening a directory on the way down: never through a symlink.
pub(crate) fn dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
}

/// The target directory, with the most recently used parent directory and its ancestors
/// kept open (up to [`KEPT`] of them): entries of a tar come grouped by directory, so most
/// lookups cost no syscall at all, and a sibling of the last directory costs one `openat`.
pub(crate) struct Tree {
    root: OwnedFd,
    /// The last directory walked to and its ancestors, shallowest first; consecutive
    /// (each entry's path is its predecessor's plus one component), though the shallowest
    /// may have been dropped.
    kept: Vec<(PathBuf, OwnedFd)>,
    /// Directories made because an entry needed them as parents (not from an entry).
    pub(crate) made: Vec<PathBuf>,
}

/// How many directories of the last path a [`Tree`] keeps open: the descriptors it may
/// hold, whatever the depth of the layer.
const KEPT: usize = 16;

impl Tree {
    /// Opens the target directory.
    pub(crate) fn open(target: &Path) -> std::io::Result<Tree> {
        let root = nix::fcntl::open(target, dir_flags(), Mode::empty())?;
        Ok(Tree {
            root,
            kept: Vec::new(),
            made: Vec::new(),
        })
    }

    /// The target's own descriptor.
    pub(crate) fn root(&self) -> BorrowedFd<'_> {
        self.root.as_fd()
    }

    /// Forgets the kept directories. Called after anything was removed or replaced, since
    /// a kept descriptor could then name a directory no longer in the tree.
    pub(crate) fn invalidate(&mut self) {
        self.kept.clear();
    }

    /// The directory `rel` (normalised, `""` is the target), creating missing components
    /// with mode 0755 when `create` is set (as tar does for entries whose parents the
    /// layer does not list). A component that is a symlink or not a directory is an error.
    pub(crate) fn dir(&mut self, rel: &Path, create: bool) -> Result<BorrowedFd<'_>, EntryError> {
        if rel.as_os_str().is_empty() {
            return Ok(self.root.as_fd());
        }
        // The deepest kept directory on the way to `rel`; the rest of the way is walked.
        let keep = self
            .kept
            .iter()
            .rposition(|(p, _)| rel.starts_with(p))
            .map_or(0, |i| i + 1);
        self.kept.truncate(keep);
        let mut walked = self
            .kept
            .last()
            .map_or_else(PathBuf::new, |(p, _)| p.clone());
        let rest = rel.strip_prefix(&walked).unwrap_or(rel).to_path_buf();
        for comp in rest.components() {
            let name = comp.as_os_str();
            walked.push(name);
            let parent = self
                .kept
                .last()
                .map_or(self.root.as_fd(), |(_, f)| f.as_fd());
            let (fd, made) = open_dir_component(parent, name, create, &walked)?;
            if made {
                self.made.push(walked.clone());
            }
            if self.kept.len() == KEPT {
                self.kept.remove(0);
            }
            self.kept.push((walked.clone(), fd));
        }
        Ok(self
            .kept
            .last()
            .map_or(self.root.as_fd(), |(_, f)| f.as_fd()))
    }
}

/// Opens one component; with `create`, makes it when missing. Returns whether it was made.
fn open_dir_component(
    parent: BorrowedFd<'_>,
    name: &OsStr,
    create: bool,
    walked: &Path,
) -> Result<(OwnedFd, bool), EntryError> {
    match openat(parent, name, dir_flags(), Mode::empty()) {
        Ok(fd) => Ok((fd, false)),
        Err(Errno::ENOENT) if create => {
            let made = match mkdirat(parent, name, Mode::from_bits_truncate(0o755)) {
                Ok(()) => true,
                Err(Errno::EEXIST) => false,
                Err(e) => return Err(EntryError::fs("creating a parent directory")(e)),
            };
            openat(parent, name, dir_flags(), Mode::empty())
                .map(|fd| (fd, made))
                .map_err(|e| not_a_dir(e, parent, name, walked))
        }
        Err(e) => Err(not_a_dir(e, parent, name, walked)),
    }
}

fn not_a_dir(e: Errno, parent: BorrowedFd<'_>, name: &OsStr, walked: &Path) -> EntryError {
    match e {
        // A symlink opened with O_NOFOLLOW|O_DIRECTORY: Linux says ELOOP or ENOTDIR,
        // FreeBSD EMLINK. lstat tells which it was, for the message.
        Errno::ELOOP | Errno::EMLINK | Errno::ENOTDIR => {
            let link =
                matches!(lstat_at(parent, name), Ok(Some(st)) if kind(&st) == SFlag::S_IFLNK);
            if link {
                EntryError::Unsafe(format!(
                    "{} is a symlink; a layer may not write through a symlink",
                    stockade_quote::quote_os(walked)
                ))
            } else {
                EntryError::Unsafe(format!(
                    "{} is not a directory",
                    stockade_quote::quote_os(walked)
                ))
            }
        }
        e => EntryError::fs("opening a parent directory")(e),
    }
}

impl Tree {
    /// The directory `rel`, walked from the target without the cache and without
    /// creating anything: for hard-link targets, which need a second directory open.
    pub(crate) fn dir_uncached(&self, rel: &Path) -> Result<OwnedFd, EntryError> {
        let mut cur = self
            .root
            .try_clone()
            .map_err(|e| EntryError::Fs("dup", e))?;
        let mut walked = PathBuf::new();
        for comp in rel.components() {
            walked.push(comp);
            cur = open_dir_component(cur.as_fd(), comp.as_os_str(), false, &walked)?.0;
        }
        Ok(cur)
    }
}

/// Whether an error is "no such file or directory".
pub(crate) fn is_enoent(e: &EntryError) -> bool {
    matches!(e, EntryError::Fs(_, io) if io.raw_os_error() == Some(Errno::ENOENT as i32))
}

/// The file type bits of a stat result.
pub(crate) fn kind(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode as _) & SFlag::S_IFMT
}

/// `lstat` of `name` in `dir`; `None` when it does not exist.
pub(crate) fn lstat_at(dir: BorrowedFd<'_>, name: &OsStr) -> Result<Option<FileStat>, EntryError> {
    match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(EntryError::fs("lstat")(e)),
    }
}

/// Removes `name` from `dir`, recursively if it is a directory, without following any
/// symlink and at any depth ([`crate::rootfs::remove`]). Missing is not an error. Returns whether
/// a directory was removed.
pub(crate) fn remove_all_at(dir: BorrowedFd<'_>, name: &OsStr) -> Result<bool, EntryError> {
    let was_dir = matches!(lstat_at(dir, name)?, Some(st) if kind(&st) == SFlag::S_IFDIR);
    crate::rootfs::remove::remove_tree_at(dir, name).map_err(|e| EntryError::Fs("removing", e))?;
    Ok(was_dir)
}

/// Removes every entry of the directory `dir` for which `remove(name)` holds.
pub(crate) fn clear_dir(
    dir: BorrowedFd<'_>,
    mut remove: impl FnMut(&OsStr) -> bool,
) -> Result<(), EntryError> {
    let dup = dir
        .try_clone_to_owned()
        .map_err(|e| EntryError::Fs("dup", e))?;
    let mut d = nix::dir::Dir::from_fd(dup).map_err(EntryError::fs("reading a directory"))?;
    let mut names = Vec::new();
    for ent in d.iter() {
        let ent = ent.map_err(EntryError::fs("reading a directory"))?;
        let n = ent.file_name().to_bytes();
        if n == b"." || n == b".." {
            continue;
        }
        let n = <OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(n).to_os_string();
        if remove(&n) {
            names.push(n);
        }
    }
    drop(d);
    for n in names {
        remove_all_at(dir, &n)?;
    }
    Ok(())
}

/// Whether `written` holds `rel` or anything below it.
pub(super) fn written_under(written: &BTreeSet<PathBuf>, rel: &Path) -> bool {
    written
        .range(rel.to_path_buf()..)
        .next()
        .is_some_and(|p| p.starts_with(rel))
}

/// Removes from the directory `dir` (at `rel`) everything that `written` does not hold,
/// keeping the directories on the way to what it does.
pub(super) fn remove_lower(
    dir: BorrowedFd<'_>,
    rel: &Path,
    written: &BTreeSet<PathBuf>,
) -> Result<(), EntryError> {
    let mut keep_dirs = Vec::new();
    clear_dir(dir, |n| {
        let p = rel.join(n);
        if written.contains(&p) {
            return false;
        }
        let below = written_under(written, &p);
        if below {
            keep_dirs.push(n.to_os_string());
        }
        !below
    })?;
    for n in keep_dirs {
        if let Ok(fd) = openat(dir, n.as_os_str(), dir_flags(), Mode::empty()) {
            remove_lower(fd.as_fd(), &rel.join(&n), written)?;
        }
    }
    Ok(())
}

/// Runs `make(dir, name)`; if the name exists, removes whatever is there (recursively,
/// never following symlinks) and runs it once more. Returns whether something was
/// replaced, with `make`'s result.
pub(super) fn create_exclusive<T>(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    make: impl Fn(BorrowedFd<'_>, &OsStr) -> nix::Result<T>,
) -> Result<(bool, T), EntryError> {
    match make(dir, name) {
        Ok(t) => Ok((false, t)),
        Err(Errno::EEXIST) => {
            remove_all_at(dir, name)?;
            make(dir, name)
                .map(|t| (true, t))
                .map_err(EntryError::fs("creating"))
        }
        Err(e) => Err(EntryError::fs("creating")(e)),
    }
}
