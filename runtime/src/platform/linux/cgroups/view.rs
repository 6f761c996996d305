//! The container's view of its own cgroups: what a mount of type `cgroup`/`cgroup2` inside
//! the container shows.

use std::fs;
use std::path::{Path, PathBuf};

use super::super::mountinfo::hierarchies;
use super::io_err;
use crate::platform::PlatformError;

/// The init's cgroups as host directories, for mounts of type `cgroup`/`cgroup2`: per v1
/// hierarchy (named as its mount point is, `memory`, `cpu,cpuacct`), and v2's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupView {
    v1: Vec<(String, PathBuf)>,
    v2: Option<PathBuf>,
}

/// The init's cgroups: those create made for it (`made`), one per hierarchy. Decided by
/// the parent before clone (the init, in a fresh cgroup namespace, can no longer see
/// absolute cgroup paths) and handed to the init with its context. Hierarchies
/// without one are left out of the container's view: what is there is the caller's.
pub fn view_for_init(made: &[PathBuf]) -> Result<CgroupView, PlatformError> {
    let read =
        |p: &str| fs::read_to_string(p).map_err(|e| PlatformError::io(format!("reading {p}"), &e));
    Ok(view_from(&read("/proc/self/mountinfo")?, made))
}

fn view_from(mountinfo: &str, made: &[PathBuf]) -> CgroupView {
    let (v1, v2) = hierarchies(mountinfo);
    let host_dir = |mount: &Path| made.iter().find(|d| d.starts_with(mount)).cloned();
    let mut mounts: Vec<PathBuf> = Vec::new();
    for (_, m) in &v1 {
        if !mounts.contains(m) {
            mounts.push(m.clone());
        }
    }
    let mut view = CgroupView::default();
    for m in mounts {
        let name = m
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let (false, Some(dir)) = (name.is_empty(), host_dir(&m)) {
            view.v1.push((name, dir));
        }
    }
    view.v2 = v2.and_then(|m| host_dir(&m));
    view
}

/// Mounts the container's own cgroups at `target` for a mount of type `fstype`, read-only,
/// as runc does: `cgroup` on a host with v1 hierarchies is a tmpfs with each hierarchy's
/// container cgroup bound under its name (and a link per controller of a combined one,
/// `cpu` → `cpu,cpuacct`); otherwise (`cgroup2`, or a v2-only host) the container's v2
/// cgroup is bound at `target`. Either way the container sees its limits at the top.
pub fn mount_view(
    target: &Path,
    fstype: &str,
    view: Option<&CgroupView>,
) -> Result<(), PlatformError> {
    use nix::mount::{mount, MsFlags};
    let view = view.ok_or_else(|| PlatformError::Failed {
        call: format!("mounting {fstype} on {}", target.display()),
        detail: "the init's cgroups were not decided before clone".into(),
    })?;
    let guard = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let bind_ro = |from: &Path, to: &Path| -> Result<(), PlatformError> {
        mount(Some(from), to, None::<&str>, MsFlags::MS_BIND, None::<&str>).map_err(|e| {
            PlatformError::call(
                format!("bind mount of {} on {}", from.display(), to.display()),
                e,
            )
        })?;
        mount(
            None::<&str>,
            to,
            None::<&str>,
            guard | MsFlags::MS_RDONLY | MsFlags::MS_BIND | MsFlags::MS_REMOUNT,
            None::<&str>,
        )
        .map_err(|e| PlatformError::call(format!("remounting {} read-only", to.display()), e))
    };
    if fstype == "cgroup" && !view.v1.is_empty() {
        mount(
            Some("cgroup"),
            target,
            Some("tmpfs"),
            guard,
            Some("mode=755"),
        )
        .map_err(|e| PlatformError::call(format!("mounting tmpfs on {}", target.display()), e))?;
        for (name, dir) in &view.v1 {
            let to = target.join(name);
            fs::create_dir(&to).map_err(io_err(format!("creating {}", to.display())))?;
            bind_ro(dir, &to)?;
            if name.contains(',') {
                for part in name.split(',') {
                    let link = target.join(part);
                    if fs::symlink_metadata(&link).is_err() {
                        std::os::unix::fs::symlink(name, &link)
                            .map_err(io_err(format!("linking {} to {name}", link.display())))?;
                    }
                }
            }
        }
        mount(
            None::<&str>,
            target,
            None::<&str>,
            guard | MsFlags::MS_RDONLY | MsFlags::MS_REMOUNT,
            Some("mode=755"),
        )
        .map_err(|e| {
            PlatformError::call(format!("remounting {} read-only", target.display()), e)
        })?;
        return Ok(());
    }
    match &view.v2 {
        Some(dir) => bind_ro(dir, target),
        // No cgroup of its own (the host has none of the controllers): an empty directory,
        // rather than a view of the caller's cgroups.
        None => mount(
            Some("cgroup"),
            target,
            Some("tmpfs"),
            guard | MsFlags::MS_RDONLY,
            Some("mode=755"),
        )
        .map_err(|e| {
            PlatformError::call(
                format!("mounting an empty tmpfs on {}", target.display()),
                e,
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::linux::mountinfo::HYBRID;

    #[test]
    fn the_view_is_the_cgroups_create_made_and_nothing_else() {
        let made = [
            PathBuf::from("/sys/fs/cgroup/memory/ns/c1"),
            PathBuf::from("/sys/fs/cgroup/pids/ns/c1"),
        ];
        let v = view_from(HYBRID, &made);
        assert_eq!(
            v.v1,
            vec![
                (
                    "memory".to_string(),
                    PathBuf::from("/sys/fs/cgroup/memory/ns/c1")
                ),
                (
                    "pids".to_string(),
                    PathBuf::from("/sys/fs/cgroup/pids/ns/c1")
                ),
            ],
            "hierarchies without a cgroup of the container's are left out"
        );
        assert_eq!(v.v2, None);
        assert_eq!(view_from(HYBRID, &[]), CgroupView::default());
    }
}
