//! Joining existing namespaces named by `linux.namespaces[].path`: each path checked to be
//! a namespace file of the type it is listed as (before anything is made, so a wrong path
//! fails create with the entry's name rather than an EINVAL from setns in the init), the
//! order the joins are made in, and the PID namespace, which is joined by the process that
//! clones the init.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::sched::{setns, CloneFlags};

use super::ns_sys::namespace_type;
use crate::platform::PlatformError;

/// The `/proc/self/ns` name of a namespace flag.
pub fn proc_name(flag: CloneFlags) -> &'static str {
    match flag {
        CloneFlags::CLONE_NEWNS => "mnt",
        CloneFlags::CLONE_NEWPID => "pid",
        CloneFlags::CLONE_NEWUTS => "uts",
        CloneFlags::CLONE_NEWIPC => "ipc",
        CloneFlags::CLONE_NEWNET => "net",
        CloneFlags::CLONE_NEWCGROUP => "cgroup",
        CloneFlags::CLONE_NEWUSER => "user",
        _ => "",
    }
}

/// One `linux.namespaces` entry with a path: its index (for errors), type and path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Join {
    pub index: usize,
    pub flag: CloneFlags,
    pub path: PathBuf,
}

impl Join {
    fn field(&self) -> String {
        format!("linux.namespaces[{}].path", self.index)
    }

    /// Opens the path and checks it is a namespace of the listed type.
    pub fn open(&self) -> Result<File, PlatformError> {
        let quoted = stockade_quote::quote_os(&self.path);
        let f = File::open(&self.path)
            .map_err(|e| PlatformError::io(format!("opening {} {quoted}", self.field()), &e))?;
        let wrong = |detail: String| PlatformError::Failed {
            call: format!("{} {quoted}", self.field()),
            detail,
        };
        match namespace_type(f.as_fd()) {
            Ok(t) if t == self.flag.bits() => Ok(f),
            Ok(t) => Err(wrong(format!(
                "it is a {} namespace, but the entry's type is {}",
                match CloneFlags::from_bits(t) {
                    Some(other) if !proc_name(other).is_empty() => proc_name(other),
                    _ => "different",
                },
                proc_name(self.flag)
            ))),
            Err(nix::errno::Errno::ENOTTY | nix::errno::Errno::EINVAL) => Err(wrong(
                "not a namespace file (such as /proc/PID/ns/NAME or a bind mount of one)".into(),
            )),
            Err(e) => Err(wrong(format!("ioctl(NS_GET_NSTYPE): {}", e.desc()))),
        }
    }

    /// Joins it from the calling process, unless the process is in it already (the first
    /// stage of an init that joins a user namespace joins them all before cloning the init;
    /// the kernel refuses joining one's own user namespace).
    pub fn enter(&self) -> Result<(), PlatformError> {
        let f = self.open()?;
        let id = |m: std::fs::Metadata| {
            use std::os::unix::fs::MetadataExt;
            (m.dev(), m.ino())
        };
        let own = std::fs::metadata(Path::new("/proc/self/ns").join(proc_name(self.flag)));
        if let (Ok(theirs), Ok(own)) = (f.metadata(), own) {
            if id(theirs) == id(own) {
                return Ok(());
            }
        }
        setns(f.as_fd(), self.flag).map_err(|e| {
            PlatformError::call(
                format!(
                    "joining the {} namespace of {} {}",
                    proc_name(self.flag),
                    self.field(),
                    stockade_quote::quote_os(&self.path)
                ),
                e,
            )
        })
    }
}

/// The rank of a namespace in the join order: the user namespace first (the others are
/// owned by it, and joining it gives the capabilities joining them needs), the mount
/// namespace last (joining it moves the root and working directory, and later paths are
/// then resolved in it).
fn rank(flag: CloneFlags) -> u8 {
    match flag {
        CloneFlags::CLONE_NEWUSER => 0,
        CloneFlags::CLONE_NEWNS => 2,
        _ => 1,
    }
}

/// Sorts joins into the order they are made in (stable: equal ranks keep config order).
pub fn order(joins: &mut [Join]) {
    joins.sort_by_key(|j| rank(j.flag));
}

/// Whether `path` is the caller's own namespace of type `flag` (the same inode). A path
/// that cannot be read counts as the caller's: the stricter answer.
pub fn is_callers(flag: CloneFlags, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let id = |p: &Path| std::fs::metadata(p).map(|m| (m.dev(), m.ino())).ok();
    match id(path) {
        Some(theirs) => id(&Path::new("/proc/self/ns").join(proc_name(flag))) == Some(theirs),
        None => true,
    }
}

/// Whether `ns` (an open `/proc/PID/ns/NAME`) is this process's own namespace of that
/// type. Joining it would change nothing, and once in the container's user namespace the
/// kernel refuses it for a namespace the host's user namespace owns (EPERM), or for the
/// user namespace itself (EINVAL).
pub fn is_own_namespace(name: &str, ns: &std::fs::File) -> bool {
    use std::os::unix::fs::MetadataExt;
    let id = |m: std::fs::Metadata| (m.dev(), m.ino());
    match (
        ns.metadata(),
        std::fs::metadata(format!("/proc/self/ns/{name}")),
    ) {
        (Ok(theirs), Ok(ours)) => id(theirs) == id(ours),
        _ => false,
    }
}

/// While alive, the calling process's children are born in a joined PID namespace; dropped,
/// they are born in the process's own again. A PID namespace applies only to children, so
/// the process that clones the init joins it for the clone and leaves it right after.
pub struct PidForChildren {
    own: File,
}

impl PidForChildren {
    pub fn enter(join: &Join) -> Result<PidForChildren, PlatformError> {
        let own = File::open("/proc/self/ns/pid")
            .map_err(|e| PlatformError::io("opening /proc/self/ns/pid", &e))?;
        join.enter()?;
        Ok(PidForChildren { own })
    }
}

impl Drop for PidForChildren {
    fn drop(&mut self) {
        // The process's own PID namespace is always one it may return to (an ancestor of
        // any it joined).
        if let Err(e) = setns(self.own.as_fd(), CloneFlags::CLONE_NEWPID) {
            tracing::warn!("returning to the runtime's PID namespace after the clone: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn join(flag: CloneFlags, path: &str) -> Join {
        Join {
            index: 3,
            flag,
            path: PathBuf::from(path),
        }
    }

    #[test]
    fn the_user_namespace_is_joined_first_and_the_mount_namespace_last() {
        let mut j = vec![
            join(CloneFlags::CLONE_NEWNS, "/m"),
            join(CloneFlags::CLONE_NEWNET, "/n"),
            join(CloneFlags::CLONE_NEWUSER, "/u"),
            join(CloneFlags::CLONE_NEWIPC, "/i"),
        ];
        order(&mut j);
        let names: Vec<_> = j.iter().map(|j| proc_name(j.flag)).collect();
        assert_eq!(names, ["user", "net", "ipc", "mnt"]);
    }

    #[test]
    fn a_namespace_file_of_the_listed_type_opens() {
        for flag in [
            CloneFlags::CLONE_NEWNET,
            CloneFlags::CLONE_NEWNS,
            CloneFlags::CLONE_NEWPID,
        ] {
            let path = format!("/proc/self/ns/{}", proc_name(flag));
            join(flag, &path).open().unwrap();
            assert!(is_callers(flag, Path::new(&path)));
        }
    }

    #[test]
    fn a_namespace_of_another_type_is_refused_by_entry() {
        let e = join(CloneFlags::CLONE_NEWPID, "/proc/self/ns/net")
            .open()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("linux.namespaces[3].path") && e.contains("it is a net namespace"),
            "{e}"
        );
    }

    #[test]
    fn a_file_that_is_no_namespace_is_refused() {
        let e = join(CloneFlags::CLONE_NEWNS, "/proc/self/status")
            .open()
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a namespace file"), "{e}");
        let e = join(CloneFlags::CLONE_NEWNS, "/nonexistent/ns")
            .open()
            .unwrap_err()
            .to_string();
        assert!(e.contains("opening linux.namespaces[3].path"), "{e}");
    }
}
