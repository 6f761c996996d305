//! Entering and leaving the container's cgroups: where a new process goes (born into the
//! v2 cgroup, joining the v1 ones), and removal on delete.

use std::fs;
use std::io::ErrorKind;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::sched::CloneFlags;

use super::io_err;
use crate::platform::PlatformError;

/// How long delete waits for a cgroup's last processes to go before giving up on it.
const RMDIR_WAIT: Duration = Duration::from_secs(3);

/// The container's cgroups as a new process enters them: the v2 cgroup, open, to be born
/// into with `clone3(CLONE_INTO_CGROUP)` (no migration, so no RCU grace period), and the
/// v1 cgroups, which can only be joined by writing `cgroup.procs`.
#[derive(Debug, Default)]
pub struct Placement {
    pub v2: Option<(OwnedFd, PathBuf)>,
    pub v1: Vec<PathBuf>,
}

/// Splits `made` into a [`Placement`] by the file system each directory is on.
pub fn placement(made: &[PathBuf]) -> Result<Placement, PlatformError> {
    use nix::sys::statfs::{fstatfs, CGROUP2_SUPER_MAGIC};
    let mut out = Placement::default();
    for dir in made {
        let f = fs::File::open(dir).map_err(io_err(format!("opening cgroup {}", dir.display())))?;
        let v2 = fstatfs(&f)
            .map_err(|e| PlatformError::call(format!("statfs {}", dir.display()), e))?
            .filesystem_type()
            == CGROUP2_SUPER_MAGIC;
        if v2 && out.v2.is_none() {
            out.v2 = Some((OwnedFd::from(f), dir.clone()));
        } else {
            out.v1.push(dir.clone());
        }
    }
    Ok(out)
}

/// Starts `child` with `flags` in the container's cgroups: born into the v2 cgroup with
/// clone3 where the kernel has it (5.7), else cloned and the v2 cgroup joined like the v1
/// ones. Returns the pid and the cgroups still to join.
pub fn clone_placed(
    flags: CloneFlags,
    place: Placement,
    mut child: Box<dyn FnMut() -> isize + '_>,
) -> nix::Result<(nix::unistd::Pid, Vec<PathBuf>)> {
    let mut join = place.v1;
    if let Some((cgroup, dir)) = place.v2 {
        match super::super::cgroup_sys::clone_into_cgroup(flags, cgroup.as_fd(), &mut *child) {
            Ok(pid) => return Ok((pid, join)),
            Err(nix::errno::Errno::ENOSYS | nix::errno::Errno::E2BIG) => join.insert(0, dir),
            Err(e) => return Err(e),
        }
    }
    Ok((super::super::sys::clone_child(flags, child)?, join))
}

/// Moves process `pid` (0: the caller) into each of the container's cgroups.
pub fn join(cgroups: &[PathBuf], pid: i32) -> Result<(), PlatformError> {
    for dir in cgroups {
        let file = dir.join("cgroup.procs");
        fs::write(&file, pid.to_string())
            .map_err(io_err(format!("moving pid {pid} into {}", file.display())))?;
    }
    Ok(())
}

/// The parent stockade uses when `linux.cgroupsPath` is not given; removed with its last
/// container so no empty cgroups pile up.
const DEFAULT_PARENT: &str = "stockade";

/// Removes the container's cgroups, innermost first. Processes that were just killed may
/// still be leaving, so a busy cgroup is retried for a moment. The default parent goes
/// too once empty (an rmdir that fails because another container is in it is fine).
pub fn remove(cgroups: &[PathBuf]) -> Vec<PlatformError> {
    let mut failures = Vec::new();
    for dir in cgroups.iter().rev() {
        let deadline = Instant::now() + RMDIR_WAIT;
        loop {
            match fs::remove_dir(dir) {
                Ok(()) => break,
                Err(e) if e.kind() == ErrorKind::NotFound => break,
                Err(e)
                    if e.raw_os_error() == Some(nix::libc::EBUSY) && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => {
                    failures.push(io_err(format!("removing cgroup {}", dir.display()))(e));
                    break;
                }
            }
        }
        if let Some(parent) = dir
            .parent()
            .filter(|p| p.file_name().is_some_and(|n| n == DEFAULT_PARENT))
        {
            let _ = fs::remove_dir(parent);
        }
    }
    failures
}
