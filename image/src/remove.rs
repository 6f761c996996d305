//! Removing a tree stockade made (a layer chain, a root filesystem, a half-made unpack) at
//! any depth, with a bounded number of descriptors and without following any symlink.
//!
//! Instead of descending (one open directory per level, which a 30,000-deep tree turns
//! into "Too many open files"), the tree is flattened: the subdirectories of each child of
//! the top directory are renamed into the top directory itself, after which the child is
//! empty of directories and can go. Every round lifts the whole tree one level, so at
//! most three descriptors are open at any time. All calls are `*at` calls on descriptors
//! opened with `O_NOFOLLOW`, so a symlink anywhere is removed, never followed.

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
    if !unlink_file(parent, name)? {
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
            if !unlink_file(top.as_fd(), &n)? {
                continue;
            }
            let child = match openat(top.as_fd(), n.as_os_str(), dir_flags(), Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) => continue,
                Err(e) => return Err(e.into()),
            };
            lift_children(&top, &child, &mut fresh)?;
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
fn unlink_file(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<bool> {
    match unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => Ok(false),
        // EISDIR on Linux, EPERM on FreeBSD (and POSIX) for a directory.
        Err(Errno::EISDIR) | Err(Errno::EPERM) => Ok(true),
        Err(e) => Err(e.into()),
    }
}

/// Removes the files of `child` and moves its directories up into `top` under fresh names.
fn lift_children(top: &OwnedFd, child: &OwnedFd, fresh: &mut u64) -> io::Result<()> {
    let mut made_writable = false;
    for g in list(child.as_fd())? {
        let is_dir = match unlink_file(child.as_fd(), &g) {
            Ok(d) => d,
            // A directory without write permission (an image may ship one): as its
            // owner we may make it writable, as the unpacker itself does while filling it.
            Err(e) if e.raw_os_error() == Some(Errno::EACCES as i32) && !made_writable => {
                fchmod(child.as_fd(), Mode::from_bits_truncate(0o700))?;
                made_writable = true;
                unlink_file(child.as_fd(), &g)?
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
fn list(dir: BorrowedFd<'_>) -> io::Result<Vec<OsString>> {
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
        let exe = std::env::current_exe().unwrap();
        let st = std::process::Command::new("sh")
            .arg("-c")
            .arg("ulimit -n 32 && exec \"$0\" \"$@\"")
            .arg(exe)
            .args([
                "--exact",
                "remove::tests::remove_path_from_env",
                "--ignored",
                "--test-threads=1",
            ])
            .env(REMOVE_ENV, &top)
            .status()
            .unwrap();
        assert!(st.success());
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
}
