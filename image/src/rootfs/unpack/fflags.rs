//! BSD file flags (`chflags(2)`) recorded by libarchive in a pax extended header as
//! `SCHILY.fflags` (for example `schg,uarch`): FreeBSD base tarballs mark the C library,
//! the runtime linker and a few set-uid programs immutable. Parsing is pure and the same
//! on every host; only FreeBSD can apply the result ([`crate::sys`]).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::error::EntryError;

/// The pax key libarchive (FreeBSD's tar) writes file flags under.
pub(crate) const PAX_KEY: &str = "SCHILY.fflags";

/// A set of FreeBSD file flags, with the values of sys/sys/stat.h.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileFlags(pub u32);

impl FileFlags {
    pub const UF_NODUMP: u32 = 0x0000_0001;
    pub const UF_IMMUTABLE: u32 = 0x0000_0002;
    pub const UF_APPEND: u32 = 0x0000_0004;
    pub const UF_OPAQUE: u32 = 0x0000_0008;
    pub const UF_NOUNLINK: u32 = 0x0000_0010;
    pub const UF_SYSTEM: u32 = 0x0000_0080;
    pub const UF_SPARSE: u32 = 0x0000_0100;
    pub const UF_OFFLINE: u32 = 0x0000_0200;
    pub const UF_REPARSE: u32 = 0x0000_0400;
    pub const UF_ARCHIVE: u32 = 0x0000_0800;
    pub const UF_READONLY: u32 = 0x0000_1000;
    pub const UF_HIDDEN: u32 = 0x0000_8000;
    pub const SF_ARCHIVED: u32 = 0x0001_0000;
    pub const SF_IMMUTABLE: u32 = 0x0002_0000;
    pub const SF_APPEND: u32 = 0x0004_0000;
    pub const SF_NOUNLINK: u32 = 0x0010_0000;

    /// Whether no flag is set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// The names `strtofflags(3)` and libarchive accept, each naming the flag it sets; the
/// same name with a `no` prefix clears it (except `nodump`, which sets UF_NODUMP and
/// whose opposite is `dump`). `snapshot` is missing on purpose: only the kernel sets it.
const NAMES: &[(&str, u32)] = &[
    ("sappnd", FileFlags::SF_APPEND),
    ("sappend", FileFlags::SF_APPEND),
    ("arch", FileFlags::SF_ARCHIVED),
    ("archived", FileFlags::SF_ARCHIVED),
    ("schg", FileFlags::SF_IMMUTABLE),
    ("schange", FileFlags::SF_IMMUTABLE),
    ("simmutable", FileFlags::SF_IMMUTABLE),
    ("sunlnk", FileFlags::SF_NOUNLINK),
    ("sunlink", FileFlags::SF_NOUNLINK),
    ("uappnd", FileFlags::UF_APPEND),
    ("uappend", FileFlags::UF_APPEND),
    ("uarch", FileFlags::UF_ARCHIVE),
    ("uarchive", FileFlags::UF_ARCHIVE),
    ("hidden", FileFlags::UF_HIDDEN),
    ("uhidden", FileFlags::UF_HIDDEN),
    ("uchg", FileFlags::UF_IMMUTABLE),
    ("uchange", FileFlags::UF_IMMUTABLE),
    ("uimmutable", FileFlags::UF_IMMUTABLE),
    ("uunlnk", FileFlags::UF_NOUNLINK),
    ("uunlink", FileFlags::UF_NOUNLINK),
    ("offline", FileFlags::UF_OFFLINE),
    ("uoffline", FileFlags::UF_OFFLINE),
    ("opaque", FileFlags::UF_OPAQUE),
    ("rdonly", FileFlags::UF_READONLY),
    ("urdonly", FileFlags::UF_READONLY),
    ("readonly", FileFlags::UF_READONLY),
    ("reparse", FileFlags::UF_REPARSE),
    ("ureparse", FileFlags::UF_REPARSE),
    ("sparse", FileFlags::UF_SPARSE),
    ("usparse", FileFlags::UF_SPARSE),
    ("system", FileFlags::UF_SYSTEM),
    ("usystem", FileFlags::UF_SYSTEM),
];

/// A flags text named a flag this host does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown file flag {} in its {PAX_KEY} header", stockade_quote::quote(.0))]
pub struct UnknownFlag(pub String);

/// Parses a flags text (names separated by commas, spaces or tabs, as `strtofflags(3)`
/// splits them). A name that clears a flag changes nothing on a newly made file and is
/// accepted; an unknown name is an error naming it.
pub fn parse(text: &str) -> Result<FileFlags, UnknownFlag> {
    let mut set = 0u32;
    for word in text.split([',', ' ', '\t']).filter(|w| !w.is_empty()) {
        if word == "nodump" {
            set |= FileFlags::UF_NODUMP;
            continue;
        }
        if word == "dump" {
            continue;
        }
        if let Some(&(_, bit)) = NAMES.iter().find(|(n, _)| *n == word) {
            set |= bit;
            continue;
        }
        let clears = word
            .strip_prefix("no")
            .is_some_and(|w| NAMES.iter().any(|(n, _)| *n == w));
        if !clears {
            return Err(UnknownFlag(word.to_owned()));
        }
    }
    Ok(FileFlags(set))
}

/// The flags an entry's pax header records; `None` without a `SCHILY.fflags` record.
pub(crate) fn of_entry<R: Read>(
    entry: &mut tar::Entry<'_, R>,
) -> Result<Option<FileFlags>, EntryError> {
    let exts = match entry.pax_extensions() {
        Ok(Some(e)) => e,
        Ok(None) => return Ok(None),
        Err(e) => return Err(EntryError::Fs("reading the pax header", e)),
    };
    for ext in exts {
        let ext = ext.map_err(|e| EntryError::Fs("reading the pax header", e))?;
        if ext.key_bytes() != PAX_KEY.as_bytes() {
            continue;
        }
        let value = std::str::from_utf8(ext.value_bytes()).map_err(|_| {
            EntryError::Unsafe(format!(
                "its {PAX_KEY} header is not UTF-8: {}",
                stockade_quote::quote(ext.value_bytes())
            ))
        })?;
        return parse(value)
            .map(Some)
            .map_err(|e| EntryError::Unsafe(e.to_string()));
    }
    Ok(None)
}

/// Flags to set once everything else of the unpack is written: an immutable file refuses
/// a later chmod, chown or utimes, and an immutable directory refuses new entries, so they
/// go last, children before their parents. Keyed by the normalised path; whatever an
/// upper layer removes or replaces is forgotten with it.
#[derive(Debug, Default)]
pub(crate) struct PendingFlags(pub(crate) BTreeMap<PathBuf, FileFlags>);

impl PendingFlags {
    /// Records what the newest entry at `rel` says (no flags: none).
    pub(crate) fn record(&mut self, rel: &Path, flags: Option<FileFlags>) {
        match flags.filter(|f| !f.is_empty()) {
            Some(f) => {
                self.0.insert(rel.to_path_buf(), f);
            }
            None => {
                self.0.remove(rel);
            }
        }
    }

    /// Forgets `rel` and everything below it, except what `keep` holds.
    pub(crate) fn forget_under(&mut self, rel: &Path, keep: impl Fn(&Path) -> bool) {
        let doomed: Vec<PathBuf> = self
            .0
            .range(rel.to_path_buf()..)
            .take_while(|(k, _)| k.starts_with(rel))
            .filter(|(k, _)| !keep(k))
            .map(|(k, _)| k.clone())
            .collect();
        for k in doomed {
            self.0.remove(&k);
        }
    }

    /// The entries in the order to apply them: deepest paths first.
    #[cfg_attr(not(target_os = "freebsd"), allow(dead_code))]
    pub(crate) fn in_order(&self) -> Vec<(&Path, FileFlags)> {
        let mut v: Vec<(&Path, FileFlags)> =
            self.0.iter().map(|(k, f)| (k.as_path(), *f)).collect();
        v.sort_by_key(|(k, _)| std::cmp::Reverse(k.components().count()));
        v
    }
}

/// What an unpack does with device nodes a layer carries. FreeBSD reaches devices only
/// through devfs: a node on UFS or ZFS opens nothing, so it is left out; Linux makes it
/// (the container's device cgroup rules keep it from opening what is not allowed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceNodes {
    /// Make character and block nodes (where privileges permit).
    Make,
    /// Leave them out, counted.
    Skip,
}

impl DeviceNodes {
    /// The choice for an operating system (`std::env::consts::OS` naming).
    pub fn for_os(os: &str) -> DeviceNodes {
        if os == "freebsd" {
            DeviceNodes::Skip
        } else {
            DeviceNodes::Make
        }
    }
}

/// What an unpack does with file flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagsPolicy {
    /// Set them (FreeBSD).
    Apply,
    /// Count and leave them out: the host has no such flags (Linux's `chattr` flags
    /// differ in meaning and are not what the image asked for).
    Skip,
}

impl FlagsPolicy {
    /// The choice for an operating system (`std::env::consts::OS` naming).
    pub fn for_os(os: &str) -> FlagsPolicy {
        if os == "freebsd" {
            FlagsPolicy::Apply
        } else {
            FlagsPolicy::Skip
        }
    }
}
