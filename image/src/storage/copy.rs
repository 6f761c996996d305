//! Copying a stored chain into a container root filesystem, for the dir driver.
//!
//! Both trees are private to stockade while this runs (a chain directory is never a
//! container's root, and the destination is new), so no untrusted process can swap a
//! component under us; symlinks in the source are still never followed (`lstat`, and
//! symlinks are recreated, not copied through). Regular file contents go through
//! `std::fs::copy`, which uses `copy_file_range(2)` where the kernel has it, and so shares
//! extents (a reflink) on filesystems that can (XFS, Btrfs, ZFS with block cloning).
//! Hard links within the chain stay hard links within the copy.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::{lchown, symlink, MetadataExt, PermissionsExt};
use std::path::Path;

use nix::sys::stat::{utimensat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;

use super::StorageError;

/// Copies the tree `src` into the new directory `dst` (which must not exist).
pub(crate) fn copy_tree(src: &Path, dst: &Path) -> Result<(), StorageError> {
    let mut links = HashMap::new();
    copy_dir(src, dst, &mut links)
}

fn times(md: &fs::Metadata) -> TimeSpec {
    TimeSpec::new(md.mtime() as _, md.mtime_nsec() as _)
}

fn copy_dir(
    src: &Path,
    dst: &Path,
    links: &mut HashMap<(u64, u64), std::path::PathBuf>,
) -> Result<(), StorageError> {
    let md = fs::symlink_metadata(src).map_err(StorageError::io("lstat", src))?;
    fs::create_dir(dst).map_err(StorageError::io("mkdir", dst))?;
    // Owner-writable while filling; the real mode is set after the contents.
    fs::set_permissions(dst, fs::Permissions::from_mode(0o700))
        .map_err(StorageError::io("chmod", dst))?;
    for ent in fs::read_dir(src).map_err(StorageError::io("reading", src))? {
        let ent = ent.map_err(StorageError::io("reading", src))?;
        let s = ent.path();
        let d = dst.join(ent.file_name());
        let emd = fs::symlink_metadata(&s).map_err(StorageError::io("lstat", &s))?;
        let ft = emd.file_type();
        if ft.is_dir() {
            copy_dir(&s, &d, links)?;
            continue;
        }
        if emd.nlink() > 1 && !ft.is_dir() {
            if let Some(first) = links.get(&(emd.dev(), emd.ino())) {
                fs::hard_link(first, &d).map_err(StorageError::io("linking", &d))?;
                continue;
            }
            links.insert((emd.dev(), emd.ino()), d.clone());
        }
        if ft.is_symlink() {
            let t = fs::read_link(&s).map_err(StorageError::io("readlink", &s))?;
            symlink(&t, &d).map_err(StorageError::io("symlink", &d))?;
        } else if ft.is_file() {
            fs::copy(&s, &d).map_err(StorageError::io("copying", &d))?;
        } else {
            // Devices, fifos, sockets: a new node of the same kind.
            let kind = SFlag::from_bits_truncate(emd.mode() as _) & SFlag::S_IFMT;
            nix::sys::stat::mknod(
                &d,
                kind,
                Mode::from_bits_truncate((emd.mode() & 0o777) as _),
                emd.rdev() as _,
            )
            .map_err(|e| StorageError::io("mknod", &d)(e.into()))?;
        }
        finish(&s, &d, &emd, !ft.is_symlink())?;
    }
    finish(src, dst, &md, true)
}

/// Copies the extended attributes of `src` to `dst` (neither followed if a symlink). A
/// destination filesystem without xattr support is not an error: the unpacker applies
/// them "where the filesystem has them" too.
fn copy_xattrs(src: &Path, dst: &Path) -> Result<(), StorageError> {
    let names = match xattr::list(src) {
        Ok(n) => n,
        Err(e) if unsupported(&e) => return Ok(()),
        Err(e) => return Err(StorageError::io("listing xattrs of", src)(e)),
    };
    for name in names {
        let Some(value) =
            xattr::get(src, &name).map_err(StorageError::io("reading xattrs of", src))?
        else {
            continue;
        };
        match xattr::set(dst, &name, &value) {
            Ok(()) => {}
            Err(e) if unsupported(&e) => return Ok(()),
            Err(e) => return Err(StorageError::io("setting xattrs on", dst)(e)),
        }
    }
    Ok(())
}

fn unsupported(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(libc::EOPNOTSUPP) || e.kind() == std::io::ErrorKind::Unsupported
}

fn finish(src: &Path, p: &Path, md: &fs::Metadata, chmod: bool) -> Result<(), StorageError> {
    if nix::unistd::geteuid().is_root() {
        lchown(p, Some(md.uid()), Some(md.gid())).map_err(StorageError::io("chown", p))?;
    }
    // After chown, which clears security.capability.
    copy_xattrs(src, p)?;
    if chmod {
        fs::set_permissions(p, fs::Permissions::from_mode(md.mode() & 0o7777))
            .map_err(StorageError::io("chmod", p))?;
    }
    let t = times(md);
    utimensat(
        nix::fcntl::AT_FDCWD,
        p,
        &t,
        &t,
        UtimensatFlags::NoFollowSymlink,
    )
    .map_err(|e| StorageError::io("setting times", p)(e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_keeps_contents_modes_links_and_xattrs() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src");
        fs::create_dir_all(src.join("dir")).unwrap();
        fs::write(src.join("dir/file"), b"data").unwrap();
        fs::set_permissions(src.join("dir/file"), fs::Permissions::from_mode(0o4750)).unwrap();
        fs::hard_link(src.join("dir/file"), src.join("hard")).unwrap();
        symlink("dir/file", src.join("link")).unwrap();
        let xattrs = xattr::set(src.join("dir/file"), "user.stockade", b"v1").is_ok();
        let dst = d.path().join("dst");
        copy_tree(&src, &dst).unwrap();
        assert_eq!(fs::read(dst.join("dir/file")).unwrap(), b"data");
        assert_eq!(
            fs::metadata(dst.join("dir/file")).unwrap().mode() & 0o7777,
            0o4750
        );
        assert_eq!(
            fs::metadata(dst.join("hard")).unwrap().ino(),
            fs::metadata(dst.join("dir/file")).unwrap().ino()
        );
        assert_eq!(
            fs::read_link(dst.join("link")).unwrap(),
            Path::new("dir/file")
        );
        if xattrs {
            assert_eq!(
                xattr::get(dst.join("dir/file"), "user.stockade")
                    .unwrap()
                    .as_deref(),
                Some(&b"v1"[..])
            );
        } else {
            eprintln!(
                "skipped the xattr check: the test directory's filesystem has no user xattrs"
            );
        }
    }
}
