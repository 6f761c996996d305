//! The unified (v2) hierarchy where the host has not mounted it (a v1-only host, or a
//! mount namespace without it). Device rules want it: a BPF device filter on a v2 cgroup,
//! entered at birth with `clone3(CLONE_INTO_CGROUP)`, costs no cgroup migration, while
//! joining a v1 `devices` cgroup costs an RCU grace period (~10 ms) on every create. The
//! kernel always has the v2 hierarchy (controllers bound to v1 are simply absent from it),
//! so stockade mounts it once at [`MOUNT_POINT`], as systemd's hybrid mode does at
//! `/sys/fs/cgroup/unified`. Mounting costs a grace period too (measured: 6-17 ms), which
//! is why the mount is left for later containers rather than made per process.

use std::path::Path;

use nix::mount::{mount, MsFlags};

use crate::platform::PlatformError;

/// Where stockade mounts the unified hierarchy when no cgroup2 mount exists.
pub const MOUNT_POINT: &str = "/run/stockade-cgroup2";

/// Whether a cgroup2 file system is mounted in this process's mount namespace.
fn v2_mounted() -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|m| super::hierarchies(&m).1.is_some())
        .unwrap_or(false)
}

/// Makes the unified hierarchy visible to this process when no cgroup2 mount is (see the
/// module's documentation). Without cgroup2 in the kernel, v1 `devices` is the way.
pub fn ensure() -> Result<(), PlatformError> {
    if v2_mounted() {
        return Ok(());
    }
    mount_unified()
}

/// Whether [`MOUNT_POINT`] is a mount point in this process's mount namespace.
fn mounted_here() -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|m| {
            super::super::mountinfo::mount_points(&m)
                .iter()
                .any(|p| p == Path::new(MOUNT_POINT))
        })
        .unwrap_or(false)
}

/// Mounts cgroup2 at [`MOUNT_POINT`]. Without cgroup2 in the kernel (ENODEV) nothing is
/// mounted and the v1 devices hierarchy is used instead.
fn mount_unified() -> Result<(), PlatformError> {
    let dir = Path::new(MOUNT_POINT);
    std::fs::create_dir_all(dir)
        .map_err(|e| PlatformError::io(format!("creating {}", dir.display()), &e))?;
    match mount(
        Some("cgroup2"),
        dir,
        Some("cgroup2"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    ) {
        Ok(()) | Err(nix::errno::Errno::ENODEV) => Ok(()),
        Err(e) => Err(PlatformError::call(
            format!("mounting cgroup2 on {}", dir.display()),
            e,
        )),
    }
}

/// Makes [`MOUNT_POINT`] reachable when one of `made` lies under it (a container created
/// that way), to enter or remove its cgroup.
pub fn ensure_for(made: &[std::path::PathBuf]) -> Result<(), PlatformError> {
    if made.iter().any(|d| d.starts_with(MOUNT_POINT)) && !mounted_here() {
        mount_unified()?;
    }
    Ok(())
}
