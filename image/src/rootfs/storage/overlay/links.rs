//! Hard links from a layer to files of the layers below it. A layer unpacked into a
//! directory of its own cannot link to a file that is not there, so the target is first
//! copied up into the layer (found the way overlayfs would find it: topmost layer first,
//! stopping at a whiteout, a non-directory on the path or an opaque directory), then linked.
//! Every step is an `*at` call from a layer's root descriptor, no symlink followed.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, AtFlags, OFlag};
use nix::sys::stat::{fchmod, fchmodat, fstatat, futimens, mkdirat, mknodat, utimensat};
use nix::sys::stat::{FchmodatFlags, FileStat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, linkat, symlinkat, Gid, Uid};

use super::StorageError;
use crate::rootfs::unpack::OPAQUE_XATTR;

fn dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
}

fn lstat(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<Option<FileStat>> {
    match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn kind(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits())
}

fn is_whiteout(st: &FileStat) -> bool {
    kind(st) == SFlag::S_IFCHR && st.st_rdev == 0
}

fn is_opaque(dir: BorrowedFd<'_>) -> bool {
    use xattr::FileExt;
    let Ok(owned) = dir.try_clone_to_owned() else {
        return false;
    };
    File::from(owned)
        .get_xattr(OPAQUE_XATTR)
        .ok()
        .flatten()
        .as_deref()
        == Some(&b"y"[..])
}

/// What one layer says about a path.
enum Look {
    /// The layer has it (a non-directory): its parent directory.
    Here(OwnedFd),
    /// Not in this layer; lower layers may have it.
    Missing,
    /// This layer hides it from every lower one.
    Hidden,
}

fn names(p: &Path) -> Vec<&OsStr> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n),
            _ => None,
        })
        .collect()
}

fn look(root: &Path, target: &Path) -> io::Result<Look> {
    let mut cur = nix::fcntl::open(root, dir_flags(), Mode::empty())?;
    let all = names(target);
    let Some((last, parents)) = all.split_last() else {
        return Ok(Look::Hidden);
    };
    let mut opaque = false;
    let gone = |opaque: bool| if opaque { Look::Hidden } else { Look::Missing };
    for n in parents {
        match lstat(cur.as_fd(), n)? {
            None => return Ok(gone(opaque)),
            Some(st) if kind(&st) != SFlag::S_IFDIR => return Ok(Look::Hidden),
            Some(_) => {
                cur = openat(cur.as_fd(), *n, dir_flags(), Mode::empty())?;
                opaque |= is_opaque(cur.as_fd());
            }
        }
    }
    Ok(match lstat(cur.as_fd(), last)? {
        None => gone(opaque),
        Some(st) if is_whiteout(&st) || kind(&st) == SFlag::S_IFDIR => Look::Hidden,
        Some(_) => Look::Here(cur),
    })
}

/// The directory `rel` as the layers `lowers` (topmost first) show it, if they do: the
/// first layer that has it, unless a layer above hides it (a whiteout, a non-directory on
/// the way, an opaque directory above it).
fn lower_dir(lowers: &[PathBuf], rel: &Path) -> io::Result<Option<FileStat>> {
    let all = names(rel);
    'layers: for root in lowers {
        let mut cur = nix::fcntl::open(root, dir_flags(), Mode::empty())?;
        let mut opaque = false;
        for n in &all {
            match lstat(cur.as_fd(), n)? {
                None if opaque => return Ok(None),
                None => continue 'layers,
                Some(st) if kind(&st) != SFlag::S_IFDIR => return Ok(None),
                Some(_) => {
                    cur = openat(cur.as_fd(), *n, dir_flags(), Mode::empty())?;
                    opaque |= is_opaque(cur.as_fd());
                }
            }
        }
        return Ok(Some(nix::sys::stat::fstat(cur.as_fd())?));
    }
    Ok(None)
}

/// Gives the directories of `layer` that it made only as parents (`rels`) the owner, mode
/// and times the lower layers give them: in the merged view a directory of an upper
/// layer shows its own metadata.
pub(super) fn inherit_dir_meta(
    layer: &Path,
    lowers: &[PathBuf],
    rels: &[PathBuf],
) -> Result<(), StorageError> {
    for rel in rels {
        let shown = layer.join(rel);
        let Some(st) = lower_dir(lowers, rel).map_err(err("looking up", &shown))? else {
            continue;
        };
        let Ok(fd) = open_below(layer, rel, None, &mut BTreeMap::new()) else {
            // Replaced by a non-directory later in the layer: nothing to give.
            continue;
        };
        set_meta_fd(fd.as_fd(), &st).map_err(err("setting the metadata of", &shown))?;
    }
    Ok(())
}

fn err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StorageError {
    StorageError::io(op, path.to_path_buf())
}

/// Makes each `(link, target)` hard link in `layer`, whose lower layers are `lowers`
/// (topmost first), copying the target up from the layer that has it when it is not in
/// `layer` itself.
pub(super) fn make_lower_links(
    layer: &Path,
    lowers: &[PathBuf],
    links: &[(PathBuf, PathBuf)],
) -> Result<(), StorageError> {
    // Linking and copying change the mtimes of the layer's directories, which the unpack
    // already set from the tar: they are put back at the end.
    let mut times = BTreeMap::new();
    for (link, target) in links {
        for p in [link, target] {
            let mut d = p.parent();
            while let Some(rel) = d {
                if !times.contains_key(rel) {
                    if let Ok(fd) = open_below(layer, rel, None, &mut BTreeMap::new()) {
                        let st = nix::sys::stat::fstat(fd.as_fd())
                            .map_err(|e| err("reading", &layer.join(rel))(e.into()))?;
                        times.insert(rel.to_path_buf(), self::times(&st));
                    }
                }
                d = rel.parent();
            }
        }
    }
    for (link, target) in links {
        let shown = layer.join(link);
        let Some(lname) = link.file_name() else {
            continue;
        };
        let lparent = open_below(
            layer,
            link.parent().unwrap_or(Path::new("")),
            None,
            &mut times,
        )
        .map_err(err("opening the parent of", &shown))?;
        if lstat(lparent.as_fd(), lname)
            .map_err(err("reading", &shown))?
            .is_some()
        {
            // A later entry of the layer wrote the path: it wins, as in the tar's order.
            continue;
        }
        let mut found = None;
        for (i, root) in std::iter::once(&layer.to_path_buf())
            .chain(lowers)
            .enumerate()
        {
            match look(root, target).map_err(err("looking up", &root.join(target)))? {
                Look::Here(parent) => {
                    found = Some((i, root.clone(), parent));
                    break;
                }
                Look::Missing => {}
                Look::Hidden => break,
            }
        }
        let Some((i, root, src_parent)) = found else {
            return Err(StorageError::io("linking", &shown)(io::Error::other(
                format!(
                    "hard link target {} is in neither this layer nor a lower one",
                    stockade_quote::quote_os(target)
                ),
            )));
        };
        let tname = target.file_name().unwrap_or_default();
        let tparent = if i == 0 {
            src_parent
        } else {
            let tp = target.parent().unwrap_or(Path::new(""));
            let dst_parent = open_below(layer, tp, Some(&root), &mut times)
                .map_err(err("copying up", &shown))?;
            copy_node(src_parent.as_fd(), dst_parent.as_fd(), tname)
                .map_err(err("copying up", &layer.join(target)))?;
            let st = fstatat(src_parent.as_fd(), tname, AtFlags::AT_SYMLINK_NOFOLLOW)
                .map_err(|e| err("reading", &root.join(target))(e.into()))?;
            if st.st_nlink > 1 {
                // The file's other names in its layer come up too, still one inode with
                // it, as the dir driver (which applies layers in one tree) keeps them.
                // The layers above the one the file came from (which is lowers[i - 1]).
                let all: Vec<PathBuf> = std::iter::once(layer.to_path_buf())
                    .chain(lowers[..i - 1].iter().cloned())
                    .collect();
                link_group(
                    &root,
                    &st,
                    target,
                    &all,
                    dst_parent.as_fd(),
                    tname,
                    &mut times,
                )
                .map_err(err("copying up the links of", &layer.join(target)))?;
            }
            dst_parent
        };
        linkat(
            tparent.as_fd(),
            tname,
            lparent.as_fd(),
            lname,
            AtFlags::empty(),
        )
        .map_err(|e| err("linking", &shown)(e.into()))?;
    }
    for (rel, (a, m)) in &times {
        let fd = open_below(layer, rel, None, &mut BTreeMap::new())
            .map_err(err("opening", &layer.join(rel)))?;
        futimens(fd.as_fd(), a, m).map_err(|e| err("setting times", &layer.join(rel))(e.into()))?;
    }
    Ok(())
}

/// Links into `above[0]` (the linking layer) every other name that the inode `st` of
/// `target` has in the layer `root`, where no layer of `above` hides or replaces it.
/// `dir`/`name` is the copy just made.
fn link_group(
    root: &Path,
    st: &FileStat,
    target: &Path,
    above: &[PathBuf],
    dir: BorrowedFd<'_>,
    name: &OsStr,
    times: &mut Times,
) -> io::Result<()> {
    use std::os::unix::fs::{DirEntryExt, MetadataExt};
    // The layer is storage's own (no container reaches it) and was written by the
    // unpacker: the walk takes entry types from the directory and never follows a link.
    let mut stack = vec![PathBuf::new()];
    let mut names = Vec::new();
    while let Some(rel) = stack.pop() {
        for ent in std::fs::read_dir(root.join(&rel))? {
            let ent = ent?;
            let ft = ent.file_type()?;
            let p = rel.join(ent.file_name());
            if ft.is_dir() {
                stack.push(p);
            } else if ent.ino() == st.st_ino && p != target {
                let md = ent.metadata()?;
                if md.dev() == st.st_dev {
                    names.push(p);
                }
            }
        }
    }
    for p in names {
        let visible = above
            .iter()
            .all(|l| matches!(look(l, &p), Ok(Look::Missing)));
        let Some(pname) = p.file_name() else { continue };
        if !visible {
            continue;
        }
        let pdir = open_below(
            &above[0],
            p.parent().unwrap_or(Path::new("")),
            Some(root),
            times,
        )?;
        linkat(dir, name, pdir.as_fd(), pname, AtFlags::empty())?;
    }
    Ok(())
}

/// The directory `rel` below `root`, reached without following symlinks. With `model`,
/// missing components are created with the owner, mode and times of the same directory in
/// `model` (the layer the copied file comes from), so the merged view keeps them.
/// Directories' times to put back: (atime, mtime) by path in the layer.
type Times = BTreeMap<PathBuf, (TimeSpec, TimeSpec)>;

fn open_below(
    root: &Path,
    rel: &Path,
    model: Option<&Path>,
    times: &mut Times,
) -> io::Result<OwnedFd> {
    let mut cur = nix::fcntl::open(root, dir_flags(), Mode::empty())?;
    let mut src = match model {
        Some(m) => Some(nix::fcntl::open(m, dir_flags(), Mode::empty())?),
        None => None,
    };
    let mut walked = PathBuf::new();
    for n in names(rel) {
        walked.push(n);
        if let Some(s) = &src {
            src = Some(openat(s.as_fd(), n, dir_flags(), Mode::empty())?);
        }
        match openat(cur.as_fd(), n, dir_flags(), Mode::empty()) {
            Ok(fd) => cur = fd,
            Err(Errno::ENOENT) if src.is_some() => {
                mkdirat(cur.as_fd(), n, Mode::from_bits_truncate(0o700))?;
                let fd = openat(cur.as_fd(), n, dir_flags(), Mode::empty())?;
                if let Some(s) = &src {
                    let st = nix::sys::stat::fstat(s.as_fd())?;
                    set_meta_fd(fd.as_fd(), &st)?;
                    // Its times, once what goes into it is there.
                    times.insert(walked.clone(), self::times(&st));
                }
                cur = fd;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(cur)
}

fn times(st: &FileStat) -> (TimeSpec, TimeSpec) {
    (
        TimeSpec::new(st.st_atime, st.st_atime_nsec),
        TimeSpec::new(st.st_mtime, st.st_mtime_nsec),
    )
}

fn set_meta_fd(fd: BorrowedFd<'_>, st: &FileStat) -> io::Result<()> {
    fchown(
        fd,
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
    )?;
    fchmod(fd, Mode::from_bits_truncate(st.st_mode & 0o7777))?;
    let (a, m) = times(st);
    futimens(fd, &a, &m)?;
    Ok(())
}

/// Copies the non-directory `name` from `src` to `dst` with its owner, mode, times and
/// (for regular files) its extended attributes other than overlayfs's own.
fn copy_node(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    let st = fstatat(src, name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
    let perm = Mode::from_bits_truncate(st.st_mode & 0o7777);
    match kind(&st) {
        SFlag::S_IFREG => {
            let from = File::from(openat(
                src,
                name,
                OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?);
            let mut to = File::from(openat(
                dst,
                name,
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o600),
            )?);
            io::copy(&mut &from, &mut to)?;
            copy_xattrs(&from, &to);
            set_meta_fd(to.as_fd(), &st)
        }
        SFlag::S_IFLNK => {
            let t = readlinkat(src, name)?;
            symlinkat(t.as_os_str(), dst, name)?;
            finish_at(dst, name, &st, None)
        }
        k => {
            mknodat(dst, name, k, perm, st.st_rdev)?;
            finish_at(dst, name, &st, Some(perm))
        }
    }
}

fn finish_at(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    st: &FileStat,
    perm: Option<Mode>,
) -> io::Result<()> {
    fchownat(
        dir,
        name,
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )?;
    if let Some(p) = perm {
        // A node this function just made (no symlink): chown cleared setuid/setgid.
        fchmodat(dir, name, p, FchmodatFlags::FollowSymlink)?;
    }
    let (a, m) = times(st);
    utimensat(dir, name, &a, &m, UtimensatFlags::NoFollowSymlink)?;
    Ok(())
}

fn copy_xattrs(from: &File, to: &File) {
    use xattr::FileExt;
    let Ok(list) = from.list_xattr() else {
        return;
    };
    for k in list {
        let b = k.as_encoded_bytes();
        if b.starts_with(b"trusted.overlay.") || b.starts_with(b"user.overlay.") {
            continue;
        }
        if let Ok(Some(v)) = from.get_xattr(&k) {
            // Where the file system refuses one, it is left out, as the unpacker does.
            let _ = to.set_xattr(&k, &v);
        }
    }
}
