//! Linux network namespaces kept alive by a bind mount on a file, as `ip netns` does:
//! `/run/stockade/netns/<id>`. The runtime joins it through `linux.namespaces` `path`,
//! and the CNI plugins configure it by that path before the container exists.

use std::fs;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};

use crate::{io, NetError};

/// Where stockade keeps its network namespaces.
pub const NETNS_DIR: &str = "/run/stockade/netns";

/// The namespace file of container `id` of the storage root whose key is `root_key`
/// ([`crate::attach::root_key`]): `/run/stockade/netns/<key>/<id>`, so that two storage
/// roots may both have a container `id`. (Files directly in [`NETNS_DIR`] are of the
/// layout before, keyed by id only; their attachment records name them, and
/// [`remove`] takes them like any other.)
pub fn netns_path(root_key: &str, id: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(root_key).join(id)
}

/// Makes a new network namespace bound on `path` (a new file; an existing one is refused:
/// it may be another container's).
pub fn create(path: &Path) -> Result<(), NetError> {
    let open = || {
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
    };
    let dir = path.parent().unwrap_or(Path::new(NETNS_DIR));
    fs::create_dir_all(dir).map_err(io("creating", dir))?;
    // remove() of the root's last namespace may take the directory between the two steps.
    let made = match open() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir_all(dir).map_err(io("creating", dir))?;
            open()
        }
        r => r,
    };
    made.map_err(io("creating", path))?;
    stockade_fault::point("net:netns-file");
    let target = path.to_path_buf();
    // unshare(CLONE_NEWNET) moves only the calling thread: a thread of its own takes the
    // new namespace, binds it on the file, and ends, leaving this process's threads alone.
    let made = std::thread::spawn(move || -> nix::Result<()> {
        unshare(CloneFlags::CLONE_NEWNET)?;
        mount(
            Some("/proc/thread-self/ns/net"),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
    })
    .join();
    match made {
        Ok(Ok(())) => Ok(()),
        Ok(Err(errno)) => {
            let _ = fs::remove_file(path);
            Err(NetError::Netns {
                path: path.to_path_buf(),
                source: std::io::Error::from(errno),
            })
        }
        Err(_) => {
            let _ = fs::remove_file(path);
            Err(NetError::Netns {
                path: path.to_path_buf(),
                source: std::io::Error::other("the namespace thread panicked"),
            })
        }
    }
}

/// Whether `path` is a namespace bound on a file (nsfs): after a crash between the file
/// and the bind mount it is a plain file, which CNI's DEL must not be given.
pub fn is_bound(path: &Path) -> bool {
    use nix::sys::statfs::{statfs, NSFS_MAGIC};
    statfs(path).is_ok_and(|s| s.filesystem_type() == NSFS_MAGIC)
}

/// Unmounts and removes the namespace file; nothing there, or a file that is no mount
/// (a crash between the two steps of [`create`]), is fine.
pub fn remove(path: &Path) -> Result<(), NetError> {
    match umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
        Err(errno) => {
            return Err(NetError::Netns {
                path: path.to_path_buf(),
                source: std::io::Error::from(errno),
            })
        }
    }
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("removing", path)(e)),
    }
    // The storage root's directory goes with its last namespace (it is in use otherwise,
    // and rmdir refuses); the top directory stays.
    if let Some(dir) = path
        .parent()
        .filter(|d| d.parent() == Some(Path::new(NETNS_DIR)))
    {
        let _ = fs::remove_dir(dir);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Needs root (CI runs the unit tests as root); as another user it says so and passes.
    #[test]
    fn a_namespace_is_bound_on_its_file_and_removed_again() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("ns");
        create(&path).unwrap();
        assert!(is_bound(&path));
        let own = fs::metadata("/proc/self/ns/net").unwrap();
        let made = fs::metadata(&path).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_ne!(own.ino(), made.ino(), "the file holds a new namespace");
        // A taken path is refused, not reused.
        assert!(create(&path).is_err());
        assert!(is_bound(&path));
        remove(&path).unwrap();
        assert!(!path.exists());
        remove(&path).unwrap();
        // A plain file left by a crash before the bind mount is no namespace, and goes.
        fs::write(&path, b"").unwrap();
        assert!(!is_bound(&path));
        remove(&path).unwrap();
        assert!(!path.exists());
    }
}
