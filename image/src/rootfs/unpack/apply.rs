//! Applying the entries of one layer to the target tree.

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{mkdirat, mknodat, Mode, SFlag};
use nix::unistd::{linkat, mkfifoat, symlinkat};
use tar::EntryType;

use crate::oci::digest::Digest;

use super::error::{EntryError, UnpackError};
use super::fflags::{self, DeviceNodes, FileFlags, FlagsPolicy, PendingFlags};
use super::fsops::{
    create_exclusive, dir_flags, is_enoent, kind, lstat_at, remove_all_at, remove_lower,
    written_under, Tree,
};
use super::meta::{finish_at, finish_fd, meta_of, DirMetas, Meta, Settings};
use super::overlay::{self, Whiteouts};
use super::path::{normalize, whiteout, Whiteout};
use super::pool::{may_overlap, Pool, STREAM_COPY_MAX};
use super::scan::Shadow;
use super::sparse::write_sparse;
use super::Budget;
use super::UnpackStats;

/// Applies one layer's entries.
pub(crate) struct LayerRun<'a, 's> {
    pub tree: &'a mut Tree,
    pub settings: &'a Settings,
    pub shadow: &'a Shadow<'s>,
    pub dirs: &'a mut DirMetas,
    pub stats: &'a mut UnpackStats,
    pub layer: &'a Digest,
    /// The image's bounds.
    pub budget: &'a Budget,
    /// Whether this pass counts entries (a chain's scan counted them already).
    pub count_entries: bool,
    /// Paths written by this layer: whiteouts and opaque markers apply to lower layers
    /// only, so they must not remove these. Ordered, so a subtree is one range.
    pub written: BTreeSet<PathBuf>,
    pub buf: Vec<u8>,
    /// File flags to set at the end of the unpack.
    pub flags: &'a mut PendingFlags,
    /// What this host does with file flags and with device nodes.
    pub flag_policy: FlagsPolicy,
    pub device_nodes: DeviceNodes,
    /// Whether whiteouts are carried out or kept as overlayfs markers.
    pub whiteouts: Whiteouts,
}

/// Where an entry goes: its parent directory and name, and the whole relative path.
struct At {
    parent: PathBuf,
    name: OsString,
    rel: PathBuf,
}

/// What applying an entry made: a file (its flags are kept and lower layers' whiteouts
/// must spare it), or nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Made {
    File,
    Nothing,
}

impl LayerRun<'_, '_> {
    /// Applies every entry. `data` is the whole uncompressed tar when it is in memory,
    /// so file contents are written straight from it. With a `pool`, regular files are
    /// created by its workers (see [`super::pool`]); all of them are done on return.
    pub(crate) fn run<'r, 'd, R: Read + 'r>(
        &mut self,
        entries: impl Iterator<Item = io::Result<tar::Entry<'r, R>>>,
        data: Option<&'d [u8]>,
        mut pool: Option<&mut Pool<'d>>,
    ) -> Result<(), UnpackError> {
        for entry in entries {
            let mut entry = entry.map_err(|source| UnpackError::Read {
                layer: self.layer.clone(),
                source,
            })?;
            let raw = entry.path_bytes().into_owned();
            let shown = String::from_utf8_lossy(&raw).into_owned();
            let counted = if self.count_entries {
                self.budget.count_entry(self.layer)
            } else {
                Ok(())
            };
            counted
                .and_then(|()| self.budget.check_entry(&entry))
                .and_then(|()| self.budget.check_pax(&mut entry))
                .map_err(|e| e.into_unpack(self.layer, &shown))?;
            self.entry(&mut entry, data, pool.as_deref_mut(), &shown)?;
        }
        if let Some(p) = pool {
            self.finish_pool(p)?;
        }
        Ok(())
    }

    /// One entry: skips what carries no file, applies whiteouts and the shadow of later
    /// layers, then hands the entry to the function for its kind.
    fn entry<'d, R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        data: Option<&'d [u8]>,
        mut pool: Option<&mut Pool<'d>>,
        shown: &str,
    ) -> Result<(), UnpackError> {
        let raw = PathBuf::from(OsStr::from_bytes(&entry.path_bytes()));
        let rel = normalize(&raw).map_err(|e| e.into_unpack(self.layer, shown))?;
        if let Some(p) = pool.as_deref_mut() {
            let plain = rel
                .file_name()
                .is_some_and(|n| matches!(whiteout(n), Ok(Whiteout::None)));
            let et = entry.header().entry_type();
            // A file of a streamed layer too large to hand over is written here, and may
            // replace a directory with files in flight below it.
            let inline = data.is_none() && entry.size() > STREAM_COPY_MAX;
            self.before_entry(p, &rel, et, plain && !inline && may_overlap(et))?;
        }
        self.apply(entry, data, pool, shown, rel)
            .map_err(|e| e.into_unpack(self.layer, shown))
    }

    /// [`Self::entry`] once the files in flight allow it.
    fn apply<'d, R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        data: Option<&'d [u8]>,
        pool: Option<&mut Pool<'d>>,
        shown: &str,
        rel: PathBuf,
    ) -> Result<(), EntryError> {
        let et = entry.header().entry_type();
        if matches!(
            et,
            EntryType::XGlobalHeader
                | EntryType::XHeader
                | EntryType::GNULongName
                | EntryType::GNULongLink
        ) {
            return Ok(());
        }
        let Some(name) = rel.file_name().map(OsStr::to_os_string) else {
            // The target itself ("./"): only its metadata matters.
            if et.is_dir() {
                let meta = meta_of(entry).map_err(|e| EntryError::Fs("reading the header", e))?;
                self.dirs.0.insert(PathBuf::new(), meta);
            }
            return Ok(());
        };
        let parent = rel.parent().unwrap_or(Path::new("")).to_path_buf();
        match (whiteout(&name)?, self.whiteouts) {
            (Whiteout::Opaque, Whiteouts::Apply) => return self.opaque(&parent),
            (Whiteout::Remove(x), Whiteouts::Apply) => return self.remove(&parent, x),
            (Whiteout::Opaque, Whiteouts::Overlay) => return self.overlay_opaque(&parent),
            (Whiteout::Remove(x), Whiteouts::Overlay) => return self.overlay_whiteout(&parent, x),
            (Whiteout::None, _) => {}
        }
        if self.shadow.hides(&rel, et.is_dir()) {
            self.stats.skipped += 1;
            return Ok(());
        }
        let mut meta = meta_of(entry).map_err(|e| EntryError::Fs("reading the header", e))?;
        if self.whiteouts == Whiteouts::Overlay {
            self.stats.xattrs_skipped += overlay::strip_xattrs(&mut meta);
            if et == EntryType::Char {
                let h = entry.header();
                overlay::check_device(
                    h.device_major().ok().flatten().unwrap_or(0).into(),
                    h.device_minor().ok().flatten().unwrap_or(0).into(),
                )?;
            }
        }
        let flags = fflags::of_entry(entry)?;
        let at = At { parent, name, rel };
        let handed = match (pool, et) {
            (Some(p), EntryType::Regular | EntryType::Continuous) => {
                self.hand_over(p, entry, data, &at.parent, &at.name, &at.rel, shown, &meta)?
            }
            _ => false,
        };
        let made = match et {
            _ if handed => Made::File,
            EntryType::Directory => {
                self.directory(&at.parent, &at.name, &at.rel, meta)?;
                Made::File
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.regular(entry, data, &at, &meta)?
            }
            EntryType::Symlink => self.symlink(entry, &at, &meta)?,
            EntryType::Link => self.hard_link(entry, &at)?,
            EntryType::Char | EntryType::Block if self.device_nodes == DeviceNodes::Skip => {
                self.skip_device(&at)?
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                self.special(entry, &at, &meta)?
            }
            // Anything else (volume labels, unknown types) carries no file.
            _ => Made::Nothing,
        };
        if made == Made::File {
            self.record_flags(&at.rel, flags);
            self.written.insert(at.rel);
        }
        Ok(())
    }

    /// A regular file (or a contiguous or GNU sparse one), created exclusively and
    /// written from the in-memory layer when there is one, else from the tar stream.
    fn regular<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        data: Option<&[u8]>,
        at: &At,
        meta: &Meta,
    ) -> Result<Made, EntryError> {
        let et = entry.header().entry_type();
        if et == EntryType::GNUSparse {
            // Before the file exists: a refused file is not left behind.
            self.budget.count_sparse(self.layer, entry.size())?;
        }
        let (replaced, fd) = {
            let dir = self.tree.dir(&at.parent, true)?;
            create_exclusive(dir, &at.name, |d, n| {
                openat(
                    d,
                    n,
                    OFlag::O_WRONLY
                        | OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate((meta.mode & 0o777) as _),
                )
            })?
        };
        if replaced {
            self.replaced(&at.rel);
        }
        let mut f = File::from(fd);
        let size = entry.size();
        match (data, et) {
            (Some(all), EntryType::Regular | EntryType::Continuous) => {
                let start = usize::try_from(entry.raw_file_position()).unwrap_or(usize::MAX);
                let end = start.saturating_add(usize::try_from(size).unwrap_or(usize::MAX));
                let body = all.get(start..end).ok_or_else(|| {
                    EntryError::Fs(
                        "reading the content",
                        io::Error::from(io::ErrorKind::UnexpectedEof),
                    )
                })?;
                f.write_all(body)
                    .map_err(|e| EntryError::Fs("writing", e))?;
            }
            (_, EntryType::GNUSparse) => {
                write_sparse(entry, &mut f, &mut self.buf, size)?;
            }
            _ => loop {
                let n = entry
                    .read(&mut self.buf)
                    .map_err(|e| EntryError::Fs("reading the content", e))?;
                if n == 0 {
                    break;
                }
                f.write_all(&self.buf[..n])
                    .map_err(|e| EntryError::Fs("writing", e))?;
            },
        }
        finish_fd(f.as_fd(), meta, self.settings, false, self.stats)?;
        self.stats.files += 1;
        self.stats.bytes += size;
        Ok(Made::File)
    }

    /// A symbolic link, its target taken as it is: it is only ever read by the container,
    /// never followed here.
    fn symlink<R: Read>(
        &mut self,
        entry: &tar::Entry<'_, R>,
        at: &At,
        meta: &Meta,
    ) -> Result<Made, EntryError> {
        let target = entry
            .link_name_bytes()
            .ok_or_else(|| EntryError::Unsafe("symlink without a target".into()))?
            .into_owned();
        let target = OsStr::from_bytes(&target);
        let replaced = {
            let dir = self.tree.dir(&at.parent, true)?;
            let (r, ()) = create_exclusive(dir, &at.name, |d, n| symlinkat(target, d, n))?;
            finish_at(dir, &at.name, meta, self.settings, false)?;
            r
        };
        if replaced {
            self.replaced(&at.rel);
        }
        self.stats.symlinks += 1;
        Ok(Made::File)
    }

    /// A hard link to a non-directory already in the tree, its target resolved inside
    /// the tree like any entry path. A link to itself changes nothing.
    fn hard_link<R: Read>(
        &mut self,
        entry: &tar::Entry<'_, R>,
        at: &At,
    ) -> Result<Made, EntryError> {
        let target = entry
            .link_name_bytes()
            .ok_or_else(|| EntryError::Unsafe("hard link without a target".into()))?
            .into_owned();
        let target = normalize(Path::new(OsStr::from_bytes(&target))).map_err(|e| match e {
            EntryError::Unsafe(r) => EntryError::Unsafe(format!("hard link target: {r}")),
            e => e,
        })?;
        let tname = target
            .file_name()
            .ok_or_else(|| EntryError::Unsafe("hard link to the root directory".into()))?
            .to_os_string();
        let missing = || {
            EntryError::Unsafe(format!(
                "hard link target {} does not exist",
                stockade_quote::quote_os(&target)
            ))
        };
        let tdir = match self
            .tree
            .dir_uncached(target.parent().unwrap_or(Path::new("")))
        {
            Ok(d) => Some(d),
            Err(e) if is_enoent(&e) => None,
            Err(e) => return Err(e),
        };
        let st = match &tdir {
            Some(d) => lstat_at(d.as_fd(), &tname)?,
            None => None,
        };
        let tdir = match (tdir, st) {
            (Some(d), Some(st)) if kind(&st) != SFlag::S_IFDIR => d,
            (_, Some(_)) => {
                return Err(EntryError::Unsafe(format!(
                    "hard link target {} is a directory",
                    stockade_quote::quote_os(&target)
                )))
            }
            // In a layer of its own, the target may be in a lower layer: the caller, who
            // has those, makes the link.
            (_, None) if self.whiteouts == Whiteouts::Overlay => {
                return self.defer_link(at, target)
            }
            (_, None) => return Err(missing()),
        };
        if target == at.rel {
            return Ok(Made::Nothing);
        }
        let replaced = {
            let dir = self.tree.dir(&at.parent, true)?;
            create_exclusive(dir, &at.name, |d, n| {
                linkat(tdir.as_fd(), tname.as_os_str(), d, n, AtFlags::empty())
            })?
            .0
        };
        if replaced {
            self.replaced(&at.rel);
        }
        self.stats.hardlinks += 1;
        Ok(Made::File)
    }

    /// A device node on a host whose policy leaves them out. The entry still replaces
    /// what lower layers put at its path.
    fn skip_device(&mut self, at: &At) -> Result<Made, EntryError> {
        let dir = self.tree.dir(&at.parent, true)?;
        if lstat_at(dir, &at.name)?.is_some() {
            remove_all_at(dir, &at.name)?;
            self.replaced(&at.rel);
        }
        self.stats.devices_skipped += 1;
        Ok(Made::Nothing)
    }

    /// A character or block device node, or a FIFO.
    fn special<R: Read>(
        &mut self,
        entry: &tar::Entry<'_, R>,
        at: &At,
        meta: &Meta,
    ) -> Result<Made, EntryError> {
        let et = entry.header().entry_type();
        let major = entry.header().device_major().ok().flatten().unwrap_or(0);
        let minor = entry.header().device_minor().ok().flatten().unwrap_or(0);
        let perm = Mode::from_bits_truncate((meta.mode & 0o777) as _);
        let dir = self.tree.dir(&at.parent, true)?;
        let made = create_exclusive(dir, &at.name, |d, n| match et {
            EntryType::Fifo => mkfifoat(d, n, perm),
            EntryType::Char => mknodat(d, n, SFlag::S_IFCHR, perm, libc::makedev(major, minor)),
            _ => mknodat(d, n, SFlag::S_IFBLK, perm, libc::makedev(major, minor)),
        });
        match made {
            // Without the privilege to make device nodes they are left out, as
            // "where permitted" allows; the count tells the caller.
            Err(EntryError::Fs(_, e)) if e.raw_os_error() == Some(Errno::EPERM as i32) => {
                self.stats.devices_skipped += 1;
                return Ok(Made::Nothing);
            }
            Err(e) => return Err(e),
            Ok((replaced, ())) => {
                let dir = self.tree.dir(&at.parent, true)?;
                finish_at(dir, &at.name, meta, self.settings, true)?;
                if replaced {
                    self.replaced(&at.rel);
                }
            }
        }
        self.stats.devices += 1;
        Ok(Made::File)
    }

    /// Keeps the entry's file flags for the end of the unpack, or counts them where the
    /// host cannot represent them.
    fn record_flags(&mut self, rel: &Path, flags: Option<FileFlags>) {
        match self.flag_policy {
            FlagsPolicy::Apply => self.flags.record(rel, flags),
            FlagsPolicy::Skip => {
                if flags.is_some_and(|f| !f.is_empty()) {
                    self.stats.flags_skipped += 1;
                }
            }
        }
    }

    fn directory(
        &mut self,
        parent: &Path,
        name: &OsStr,
        rel: &Path,
        meta: Meta,
    ) -> Result<(), EntryError> {
        let dir = self.tree.dir(parent, true)?;
        let mode = Mode::from_bits_truncate(((meta.mode & 0o777) | 0o700) as _);
        let mut replaced = false;
        match mkdirat(dir, name, mode) {
            Ok(()) => {}
            Err(Errno::EEXIST) => {
                let st = lstat_at(dir, name)?;
                #[cfg(target_os = "freebsd")]
                if st.as_ref().is_some_and(|st| st.st_flags != 0) {
                    // Flagged by an earlier unpack (the zfs driver applies one layer at
                    // a time): cleared so that this layer can fill it and set its
                    // metadata; this entry's own flags are set again at the end.
                    crate::sys::chflagsat(dir, name, 0)
                        .map_err(|e| EntryError::Fs("clearing file flags", e))?;
                }
                if !matches!(st, Some(st) if kind(&st) == SFlag::S_IFDIR) {
                    remove_all_at(dir, name)?;
                    replaced = true;
                    mkdirat(dir, name, mode).map_err(EntryError::fs("mkdir"))?;
                }
            }
            Err(e) => return Err(EntryError::fs("mkdir")(e)),
        }
        if replaced && self.whiteouts == Whiteouts::Overlay {
            // What was there (a whiteout or a file of this layer) hid the lower layers'
            // directory: the new one must go on hiding its contents.
            let fd = openat(dir, name, dir_flags(), Mode::empty())
                .map_err(EntryError::fs("opening a directory"))?;
            overlay::mark_opaque(fd.as_fd())?;
        }
        if replaced {
            self.replaced(rel);
        }
        self.dirs.0.insert(rel.to_path_buf(), meta);
        self.written.insert(rel.to_path_buf());
        self.stats.dirs += 1;
        Ok(())
    }

    /// `.wh..wh..opq` in `parent`: everything there that this layer did not write goes.
    fn opaque(&mut self, parent: &Path) -> Result<(), EntryError> {
        let written = &self.written;
        let dir = match self.tree.dir(parent, false) {
            Ok(d) => d,
            Err(e) if is_enoent(&e) => return Ok(()),
            Err(e) => return Err(e),
        };
        remove_lower(dir, parent, written)?;
        let written = &self.written;
        let keep = |k: &Path| k == parent || written.contains(k);
        self.dirs.forget_under(parent, keep);
        self.flags.forget_under(parent, keep);
        self.stats.whiteouts += 1;
        Ok(())
    }

    /// `.wh.NAME` in `parent`: `NAME` goes, with everything below it.
    fn remove(&mut self, parent: &Path, name: &OsStr) -> Result<(), EntryError> {
        let dir = match self.tree.dir(parent, false) {
            Ok(d) => d,
            Err(e) if is_enoent(&e) => return Ok(()),
            Err(e) => return Err(e),
        };
        let rel = parent.join(name);
        if written_under(&self.written, &rel) {
            // The whiteout and entries of its own layer name the same path: only what the
            // lower layers put there goes (OCI image spec, "Whiteouts").
            let written = &self.written;
            let fd = match openat(dir, name, dir_flags(), Mode::empty()) {
                Ok(fd) => fd,
                // Not a directory: a same-layer file, which stays.
                Err(_) => return Ok(()),
            };
            remove_lower(fd.as_fd(), &rel, written)?;
            let written = &self.written;
            self.dirs.forget_under(&rel, |k| written.contains(k));
            self.flags.forget_under(&rel, |k| written.contains(k));
        } else {
            remove_all_at(dir, name)?;
            self.replaced(&rel);
        }
        self.stats.whiteouts += 1;
        Ok(())
    }

    /// A hard link whose target is not in this layer (overlay): whatever this layer put
    /// at the link's path goes, and the link is left to the caller.
    fn defer_link(&mut self, at: &At, target: PathBuf) -> Result<Made, EntryError> {
        let dir = self.tree.dir(&at.parent, true)?;
        if lstat_at(dir, &at.name)?.is_some() {
            remove_all_at(dir, &at.name)?;
            self.replaced(&at.rel);
        }
        self.stats.lower_links.push((at.rel.clone(), target));
        Ok(Made::File)
    }

    /// `.wh..wh..opq` in `parent`, for overlay: the directory is marked opaque.
    fn overlay_opaque(&mut self, parent: &Path) -> Result<(), EntryError> {
        let dir = self.tree.dir(parent, true)?;
        overlay::mark_opaque(dir)?;
        self.stats.whiteouts += 1;
        Ok(())
    }

    /// `.wh.NAME` in `parent`, for overlay: a whiteout node `NAME`, unless this layer
    /// wrote `NAME` itself (a whiteout removes only what lower layers wrote). A directory
    /// of this layer there is marked opaque instead: its lower contents go, its own stay.
    fn overlay_whiteout(&mut self, parent: &Path, name: &OsStr) -> Result<(), EntryError> {
        let rel = parent.join(name);
        let dir = self.tree.dir(parent, true)?;
        if written_under(&self.written, &rel) {
            if let Ok(fd) = openat(dir, name, dir_flags(), Mode::empty()) {
                overlay::mark_opaque(fd.as_fd())?;
            }
        } else {
            overlay::make_whiteout(dir, name)?;
        }
        self.stats.whiteouts += 1;
        Ok(())
    }

    /// Something at `rel` was removed: forget directory metadata recorded below it.
    pub(super) fn replaced(&mut self, rel: &Path) {
        self.tree.invalidate();
        self.dirs.forget_under(rel, |_| false);
        self.flags.forget_under(rel, |_| false);
    }
}
