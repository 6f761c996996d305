//! Entry metadata: reading owners, modes, times and xattrs from a tar header, and setting
//! them on what was created, through a descriptor or by name, never following a symlink.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::AtFlags;
use nix::sys::stat::{
    fchmod, fchmodat, futimens, utimensat, FchmodatFlags, Mode, SFlag, UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, Gid, Uid};

use super::error::EntryError;
use super::fsops::{is_enoent, kind, lstat_at, Tree};
use super::UnpackStats;

/// Ownership, mode, time and extended attributes of an entry.
#[derive(Debug, Clone)]
pub(crate) struct Meta {
    pub(crate) mode: u32,
    uid: u32,
    gid: u32,
    mtime: TimeSpec,
    pub(crate) xattrs: Vec<(OsString, Vec<u8>)>,
}

/// Process facts that decide which syscalls an entry needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    /// Apply the recorded owners (root, or asked for).
    pub same_owner: bool,
    pub euid: u32,
    pub egid: u32,
    /// The process umask: created modes lose these bits, so they are set again after.
    pub umask: u32,
}

/// Directory metadata, applied once after the whole chain so that writing a directory's
/// contents (in this or a later layer) does not undo its mtime, and so that a directory
/// without write permission can still be filled.
#[derive(Default)]
pub(crate) struct DirMetas(pub(crate) BTreeMap<PathBuf, Meta>);

impl DirMetas {
    pub(crate) fn forget_under(&mut self, p: &Path, keep: impl Fn(&Path) -> bool) {
        let doomed: Vec<PathBuf> = self
            .0
            .range(p.to_path_buf()..)
            .take_while(|(k, _)| k.starts_with(p))
            .filter(|(k, _)| !keep(k))
            .map(|(k, _)| k.clone())
            .collect();
        for k in doomed {
            self.0.remove(&k);
        }
    }

    /// Applies every recorded directory's metadata; directories removed since are skipped.
    pub(crate) fn apply(
        self,
        tree: &mut Tree,
        s: &Settings,
        stats: &mut UnpackStats,
    ) -> Result<(), (String, EntryError)> {
        for (rel, meta) in self.0.into_iter().rev() {
            let fd = if rel.as_os_str().is_empty() {
                tree.root()
                    .try_clone_to_owned()
                    .map_err(|e| (String::new(), EntryError::Fs("dup", e)))
            } else {
                tree.dir_uncached(&rel)
                    .map_err(|e| (rel.display().to_string(), e))
            };
            let fd = match fd {
                Ok(fd) => fd,
                Err((_, e)) if is_enoent(&e) => continue,
                Err(e) => return Err(e),
            };
            finish_fd(fd.as_fd(), &meta, s, true, stats)
                .map_err(|e| (rel.display().to_string(), e))?;
        }
        Ok(())
    }
}

pub(crate) fn meta_of<R: Read>(entry: &mut tar::Entry<'_, R>) -> io::Result<Meta> {
    let h = entry.header();
    let mut meta = Meta {
        mode: h.mode()?,
        // Empty numeric fields occur in the wild (some writers leave them blank); they
        // mean 0, as GNU tar and umoci read them.
        uid: u32::try_from(h.uid().unwrap_or(0)).unwrap_or(u32::MAX),
        gid: u32::try_from(h.gid().unwrap_or(0)).unwrap_or(u32::MAX),
        mtime: TimeSpec::new(i64::try_from(h.mtime().unwrap_or(0)).unwrap_or(0) as _, 0),
        xattrs: Vec::new(),
    };
    if let Some(exts) = entry.pax_extensions()? {
        for ext in exts {
            let ext = ext?;
            let Ok(key) = ext.key() else { continue };
            let val = ext.value_bytes();
            let num = || {
                std::str::from_utf8(val)
                    .ok()
                    .and_then(|v| v.split('.').next()?.parse::<u64>().ok())
            };
            match key {
                "uid" => {
                    meta.uid = num()
                        .and_then(|v| u32::try_from(v).ok())
                        .unwrap_or(meta.uid)
                }
                "gid" => {
                    meta.gid = num()
                        .and_then(|v| u32::try_from(v).ok())
                        .unwrap_or(meta.gid)
                }
                "mtime" => {
                    if let Some(v) = num() {
                        meta.mtime = TimeSpec::new(i64::try_from(v).unwrap_or(0) as _, 0);
                    }
                }
                k => {
                    if let Some(name) = k.strip_prefix("SCHILY.xattr.") {
                        meta.xattrs.push((OsString::from(name), val.to_vec()));
                    }
                }
            }
        }
    }
    Ok(meta)
}

/// Owner, mode, xattrs and times through an open descriptor. `created_mode` is false
/// when the mode given at creation may differ from the wanted one for a reason other
/// than the umask (directories are created owner-writable).
pub(crate) fn finish_fd(
    fd: BorrowedFd<'_>,
    m: &Meta,
    s: &Settings,
    dir: bool,
    stats: &mut UnpackStats,
) -> Result<(), EntryError> {
    let chowned = s.same_owner && (m.uid != s.euid || m.gid != s.egid);
    if chowned {
        fchown(fd, Some(Uid::from_raw(m.uid)), Some(Gid::from_raw(m.gid)))
            .map_err(EntryError::fs("chown"))?;
    }
    let perm = m.mode & 0o7777;
    // chown clears setuid/setgid, and the umask may have taken bits away.
    if chowned || perm & 0o7000 != 0 || perm & s.umask != 0 || (dir && perm & 0o700 != 0o700) {
        fchmod(fd, Mode::from_bits_truncate(perm as _)).map_err(EntryError::fs("chmod"))?;
    }
    if !m.xattrs.is_empty() {
        set_xattrs(fd, m, stats);
    }
    futimens(fd, &m.mtime, &m.mtime).map_err(EntryError::fs("setting times"))
}

/// Owner, mode (unless a symlink) and times by name, never following a symlink: for
/// symlinks and device nodes, which cannot be opened for this.
pub(crate) fn finish_at(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    m: &Meta,
    s: &Settings,
    chmod: bool,
) -> Result<(), EntryError> {
    let chowned = s.same_owner && (m.uid != s.euid || m.gid != s.egid);
    if chowned {
        fchownat(
            dir,
            name,
            Some(Uid::from_raw(m.uid)),
            Some(Gid::from_raw(m.gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(EntryError::fs("chown"))?;
    }
    let perm = m.mode & 0o7777;
    if chmod && (chowned || perm & 0o7000 != 0 || perm & s.umask != 0) {
        // The node was just made by this process in a directory reached without symlinks,
        // and lstat says it is no symlink, so following is harmless here.
        if matches!(lstat_at(dir, name)?, Some(st) if kind(&st) != SFlag::S_IFLNK) {
            fchmodat(
                dir,
                name,
                Mode::from_bits_truncate(perm as _),
                FchmodatFlags::FollowSymlink,
            )
            .map_err(EntryError::fs("chmod"))?;
        }
    }
    utimensat(
        dir,
        name,
        &m.mtime,
        &m.mtime,
        UtimensatFlags::NoFollowSymlink,
    )
    .map_err(EntryError::fs("setting times"))
}

fn set_xattrs(fd: BorrowedFd<'_>, m: &Meta, stats: &mut UnpackStats) {
    use xattr::FileExt;
    let Ok(owned) = fd.try_clone_to_owned() else {
        stats.xattrs_skipped += m.xattrs.len();
        return;
    };
    let f = File::from(owned);
    for (k, v) in &m.xattrs {
        // Filesystems without xattrs, or namespaces we may not write, are not an error:
        // "where supported".
        if f.set_xattr(k, v).is_err() {
            stats.xattrs_skipped += 1;
        }
    }
}
