//! Removing a tree stockade made (a layer chain, a root filesystem, a half-made unpack) at
//! any depth, with a bounded number of descriptors and without following any symlink.
//!
//! Instead of descending (one open directory per level, which a 30,000-deep tree turns
//! into "Too many open files"), the tree is flattened: the subdirectories of each child of
//! the top directory are renamed into the top directory itself, after which the child is
//! empty of directories and can go. Every round lifts the whole tree one level, so at
//! most three descriptors are open at any time. All calls are `*at` calls on descriptors
//! opened with `O_NOFOLLOW`, so a symlink anywhere is removed, never followed.
//!
//! On FreeBSD a file or directory may carry flags (`schg`, `sunlnk`, from a base tarball)
//! that make unlink fail with EPERM; then its flags are cleared and the unlink tried once
//! more, as `chflags -R noschg` would before `rm -rf` (`Flags`).

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{openat, renameat, AtFlags, OFlag};
use nix::sys::stat::{fchmod, fstatat, Mode};
use nix::unistd::{unlinkat, UnlinkatFlags};

fn dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
}

/// Removes `path` and everything below it; missing is not an error. The last component
/// may be a symlink (it is removed, not followed); the parent path is the caller's.
pub fn remove_tree(path: &Path) -> io::Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let Some(name) = path.file_name() else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "refusing to remove a path without a final name",
        ));
    };
    let pfd = match nix::fcntl::open(parent, dir_flags(), Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    remove_tree_at(pfd.as_fd(), name)
}

/// Removes `name` in the directory `parent`, recursively; missing is not an error.
pub fn remove_tree_at(parent: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    remove_tree_with(parent, name, &HostFlags)
}

/// File flags as removal sees them: the host's (FreeBSD) or none.
pub(crate) trait Flags {
    /// The flags of `name` in `dir`, not following a symlink; 0 where there are none.
    fn at(&self, dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<u32>;
    /// Clears every flag of `name` in `dir`, not following a symlink.
    fn clear_at(&self, dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()>;
}

/// The host's file flags: FreeBSD's `st_flags` and `chflagsat(2)`; none elsewhere.
pub(crate) struct HostFlags;

impl Flags for HostFlags {
    #[cfg(target_os = "freebsd")]
    fn at(&self, dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<u32> {
        Ok(fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)?.st_flags)
    }
    #[cfg(not(target_os = "freebsd"))]
    fn at(&self, _dir: BorrowedFd<'_>, _name: &OsStr) -> io::Result<u32> {
        Ok(0)
    }
    #[cfg(target_os = "freebsd")]
    fn clear_at(&self, dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
        crate::sys::chflagsat(dir, name, 0)
    }
    #[cfg(not(target_os = "freebsd"))]
    fn clear_at(&self, _dir: BorrowedFd<'_>, _name: &OsStr) -> io::Result<()> {
        Ok(())
    }
}

/// Whether an unlink that failed with `err` on something with `flags` may succeed once
/// the flags are cleared: only EPERM, and only when a flag is set (EPERM without flags
/// is a directory, or a refusal clearing cannot help).
pub(crate) fn clear_flags_first(err: Errno, flags: u32) -> bool {
    err == Errno::EPERM && flags != 0
}

/// [`remove_tree_at`] with the given view of file flags.
pub(crate) fn remove_tree_with(
    parent: BorrowedFd<'_>,
    name: &OsStr,
    fl: &dyn Flags,
) -> io::Result<()> {
    if !unlink_file(parent, name, fl)? {
        return Ok(());
    }
    let top = match openat(parent, name, dir_flags(), Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let mut fresh = 0u64;
    loop {
        let names = list(top.as_fd())?;
        if names.is_empty() {
            break;
        }
        for n in names {
            if !unlink_file(top.as_fd(), &n, fl)? {
                continue;
            }
            let child = match openat(top.as_fd(), n.as_os_str(), dir_flags(), Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) => continue,
                Err(e) => return Err(e.into()),
            };
            lift_children(&top, &child, &mut fresh, fl)?;
            drop(child);
            match unlinkat(top.as_fd(), n.as_os_str(), UnlinkatFlags::RemoveDir) {
                // Not empty: something appeared meanwhile; the next round takes it.
                Ok(()) | Err(Errno::ENOENT) | Err(Errno::ENOTEMPTY) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    match unlinkat(parent, name, UnlinkatFlags::RemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Unlinks `name` unless it is a directory; returns whether it is one (and still there).
/// Something flagged against removal has its flags cleared first (a directory too, so
/// that its entries can go and it can be removed after them).
fn unlink_file(dir: BorrowedFd<'_>, name: &OsStr, fl: &dyn Flags) -> io::Result<bool> {
    let unlink = || match unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => Ok(false),
        // EISDIR on Linux, EPERM on FreeBSD (and POSIX) for a directory.
        Err(Errno::EISDIR) | Err(Errno::EPERM) => Ok(true),
        Err(e) => Err(e),
    };
    match unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => Ok(false),
        Err(Errno::EISDIR) => Ok(true),
        Err(Errno::EPERM) => {
            let flags = match fl.at(dir, name) {
                Ok(f) => f,
                Err(e) if e.raw_os_error() == Some(Errno::ENOENT as i32) => return Ok(false),
                Err(e) => return Err(e),
            };
            if clear_flags_first(Errno::EPERM, flags) {
                fl.clear_at(dir, name)?;
                Ok(unlink()?)
            } else {
                Ok(true)
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Removes the files of `child` and moves its directories up into `top` under fresh names.
fn lift_children(
    top: &OwnedFd,
    child: &OwnedFd,
    fresh: &mut u64,
    fl: &dyn Flags,
) -> io::Result<()> {
    let mut made_writable = false;
    for g in list(child.as_fd())? {
        let is_dir = match unlink_file(child.as_fd(), &g, fl) {
            Ok(d) => d,
            // A directory without write permission (an image may ship one): as its
            // owner we may make it writable, as the unpacker itself does while filling it.
            Err(e) if e.raw_os_error() == Some(Errno::EACCES as i32) && !made_writable => {
                fchmod(child.as_fd(), Mode::from_bits_truncate(0o700))?;
                made_writable = true;
                unlink_file(child.as_fd(), &g, fl)?
            }
            Err(e) => return Err(e),
        };
        if !is_dir {
            continue;
        }
        let target = fresh_name(top.as_fd(), fresh)?;
        match renameat(
            child.as_fd(),
            g.as_os_str(),
            top.as_fd(),
            target.as_os_str(),
        ) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(Errno::EACCES) if !made_writable => {
                fchmod(child.as_fd(), Mode::from_bits_truncate(0o700))?;
                made_writable = true;
                renameat(
                    child.as_fd(),
                    g.as_os_str(),
                    top.as_fd(),
                    target.as_os_str(),
                )?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// A name not yet used in `dir`, for a lifted directory.
fn fresh_name(dir: BorrowedFd<'_>, counter: &mut u64) -> io::Result<OsString> {
    loop {
        *counter += 1;
        let n = OsString::from(format!(".stockade-rm-{counter}"));
        match fstatat(dir, n.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Err(Errno::ENOENT) => return Ok(n),
            Ok(_) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// The names in a directory, without `.` and `..`.
pub(crate) fn list(dir: BorrowedFd<'_>) -> io::Result<Vec<OsString>> {
    let dup = dir.try_clone_to_owned()?;
    let mut d = nix::dir::Dir::from_fd(dup)?;
    let mut out = Vec::new();
    for ent in d.iter() {
        let ent = ent?;
        let n = ent.file_name().to_bytes();
        if n != b"." && n != b".." {
            out.push(OsStr::from_bytes(n).to_os_string());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn a_tree_deeper_than_the_descriptor_limit_is_removed() {
        let t = tempfile::tempdir().unwrap();
        let top = t.path().join("deep");
        fs::create_dir(&top).unwrap();
        // Built with *at calls one level at a time: the path would exceed PATH_MAX.
        let mut cur = nix::fcntl::open(&top, dir_flags(), Mode::empty()).unwrap();
        for i in 0..3000 {
            nix::sys::stat::mkdirat(cur.as_fd(), "d", Mode::from_bits_truncate(0o755)).unwrap();
            if i % 100 == 0 {
                let f = openat(
                    cur.as_fd(),
                    "f",
                    OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o644),
                )
                .unwrap();
                drop(f);
            }
            cur = openat(cur.as_fd(), "d", dir_flags(), Mode::empty()).unwrap();
        }
        drop(cur);
        // In a child limited to 32 descriptors, fewer than the tree has levels: a
        // descending remover runs out there. The child is this test binary, running
        // only the helper below.
        assert!(crate::test_support::run_helper_with_fd_limit(
            module_path!(),
            "remove_path_from_env",
            32,
            REMOVE_ENV,
            top.as_os_str(),
        ));
        assert!(!top.exists());
    }

    const REMOVE_ENV: &str = "STOCKADE_TEST_REMOVE_TREE";

    /// Run by the test above in a child with few descriptors.
    #[test]
    #[ignore = "a helper: runs only in the child of a_tree_deeper_than_the_descriptor_limit_is_removed"]
    fn remove_path_from_env() {
        if let Some(p) = std::env::var_os(REMOVE_ENV) {
            remove_tree(Path::new(&p)).unwrap();
        }
    }

    #[test]
    fn symlinks_are_removed_not_followed() {
        let t = tempfile::tempdir().unwrap();
        let outside = t.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("keep"), b"x").unwrap();
        let top = t.path().join("tree");
        fs::create_dir_all(top.join("a/b")).unwrap();
        std::os::unix::fs::symlink(&outside, top.join("a/b/link")).unwrap();
        std::os::unix::fs::symlink(&outside, top.join("link")).unwrap();
        remove_tree(&top).unwrap();
        assert!(!top.exists());
        assert_eq!(fs::read(outside.join("keep")).unwrap(), b"x");
        // The path itself a symlink: the link goes, its target stays.
        let l = t.path().join("l");
        std::os::unix::fs::symlink(&outside, &l).unwrap();
        remove_tree(&l).unwrap();
        assert!(fs::symlink_metadata(&l).is_err());
        assert!(outside.join("keep").exists());
        remove_tree(&t.path().join("missing")).unwrap();
    }

    #[test]
    fn flags_are_cleared_only_after_eperm_on_something_flagged() {
        assert!(clear_flags_first(Errno::EPERM, 0x0002_0000));
        assert!(!clear_flags_first(Errno::EPERM, 0));
        assert!(!clear_flags_first(Errno::EACCES, 0x0002_0000));
        assert!(!clear_flags_first(Errno::EISDIR, 0x0010_0000));
    }

    /// Linux's immutable attribute (`chattr +i`) stands in for FreeBSD's `schg`: unlink
    /// fails with EPERM until it is cleared, which is the path FreeBSD takes.
    struct Chattr(std::cell::Cell<usize>);

    impl Flags for Chattr {
        fn at(&self, _dir: BorrowedFd<'_>, _name: &OsStr) -> io::Result<u32> {
            Ok(0x0002_0000)
        }
        fn clear_at(&self, dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
            use std::os::fd::AsRawFd;
            self.0.set(self.0.get() + 1);
            // Our descriptor, seen from the chattr child (ours are close-on-exec).
            let p = Path::new("/proc")
                .join(std::process::id().to_string())
                .join("fd")
                .join(dir.as_raw_fd().to_string())
                .join(name);
            let st = std::process::Command::new("chattr")
                .arg("-i")
                .arg(p)
                .status()?;
            assert!(st.success());
            Ok(())
        }
    }

    #[test]
    fn a_file_flagged_against_removal_is_cleared_and_removed() {
        let t = tempfile::tempdir().unwrap();
        let top = t.path().join("tree");
        fs::create_dir_all(top.join("lib")).unwrap();
        fs::write(top.join("lib/libc.so.7"), b"x").unwrap();
        fs::write(top.join("plain"), b"y").unwrap();
        let flagged = std::process::Command::new("chattr")
            .arg("+i")
            .arg(top.join("lib/libc.so.7"))
            .status()
            .is_ok_and(|s| s.success());
        if !flagged {
            eprintln!("skipped: chattr +i is not available here (not root, or no support)");
            return;
        }
        let pfd = nix::fcntl::open(t.path(), dir_flags(), Mode::empty()).unwrap();
        // Without clearing (this host's view on Linux: no flags), the removal fails.
        let e = remove_tree_with(pfd.as_fd(), OsStr::new("tree"), &HostFlags).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(Errno::EPERM as i32));
        let fl = Chattr(std::cell::Cell::new(0));
        remove_tree_with(pfd.as_fd(), OsStr::new("tree"), &fl).unwrap();
        assert!(!top.exists());
        assert_eq!(fl.0.get(), 1, "only the flagged file was cleared");
    }
}
