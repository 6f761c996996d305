//! Rootless containers: stockade run by an unprivileged user (runc's `--rootless=auto`
//! when the effective uid is not 0). The container needs a new user namespace whose root is
//! the caller (its own uid and gid mapped to 0 inside, as Podman's rootless mappings have
//! it: the init, root only inside, then still reaches the caller's state directory and
//! start fifo); more ranges are written with `newuidmap`/`newgidmap` from `/etc/subuid`
//! and `/etc/subgid`. There are no cgroups: limits and device rules are not applied, and
//! said so once per create; device nodes are bind-mounted from the host, and a user
//! namespace cannot make or open others (the kernel's rule for non-initial user
//! namespaces, which is what runc rootless relies on too).

use std::path::PathBuf;
use std::process::{Command, Stdio};

use nix::unistd::{getegid, geteuid};

use super::namespaces::NamespacePlan;
use super::userns::{Extent, IdMaps};
use crate::platform::{ContainerPlan, PlatformError};

/// Whether this runtime runs rootless: not as root.
pub fn active() -> bool {
    !geteuid().is_root()
}

fn refuse(what: &str, hint: &str) -> PlatformError {
    PlatformError::Unsupported {
        what: what.into(),
        os: "Linux",
        hint: hint.into(),
    }
}

/// Checks a rootless container's plan: a new user namespace whose root is the caller, no
/// namespace joined by path that the caller's user namespace does not own (left to the
/// kernel), and one warning naming what cannot be applied without cgroups.
pub fn check(plan: &ContainerPlan, ns: &NamespacePlan) -> Result<(), PlatformError> {
    let Some(maps) = &ns.user else {
        return Err(refuse(
            "a container without a new user namespace as an unprivileged user",
            "root is needed, or (rootless) a user namespace: add {\"type\": \"user\"} to linux.namespaces with linux.uidMappings/gidMappings mapping your own uid and gid to 0",
        ));
    };
    let (uid, gid) = (geteuid().as_raw(), getegid().as_raw());
    if maps.host_root() != (uid, gid) {
        let (ru, rg) = maps.host_root();
        return Err(PlatformError::Failed {
            call: "linux.uidMappings/gidMappings".into(),
            detail: format!(
                "rootless, the container's root must be the caller ({uid}:{gid}), as with Podman's rootless mappings; it is {ru}:{rg}"
            ),
        });
    }
    let mut lost = Vec::new();
    if !plan.limits.is_empty() {
        lost.push("the resource limits of linux.resources");
    }
    lost.push("linux.resources.devices (device access is the calling user's: a user namespace cannot make device nodes)");
    if super::linux_config(plan).is_some_and(|l| l.cgroups_path().is_some()) {
        lost.push("linux.cgroupsPath");
    }
    tracing::warn!(
        "rootless: no cgroup is made (no delegated cgroup is used); not applied: {}",
        lost.join(", ")
    );
    Ok(())
}

/// `update` has no cgroups to change rootless.
pub fn refuse_update() -> Result<(), PlatformError> {
    match active() {
        true => Err(refuse(
            "changing the limits of a rootless container",
            "rootless containers have no cgroups; run stockade as root",
        )),
        false => Ok(()),
    }
}

/// Rootless, the container's PID namespace is owned by its user namespace (`user`, open):
/// exec joins that first, for the capability joining the PID namespace needs there.
pub fn join_user_for_exec(user: std::fs::File) -> Result<(), PlatformError> {
    use std::os::fd::AsFd;
    if super::join::is_own_namespace("user", &user) {
        return Ok(());
    }
    nix::sched::setns(user.as_fd(), nix::sched::CloneFlags::CLONE_NEWUSER)
        .map_err(|e| PlatformError::call("joining the container's user namespace", e))
}

/// Whether `extents` is exactly the caller's own id mapped to 0, which a process may write
/// for its child without privileges.
fn own_only(extents: &[Extent], own: u32) -> bool {
    extents
        == [Extent {
            container: 0,
            host: own,
            size: 1,
        }]
}

/// The arguments of newuidmap/newgidmap for `extents`: `PID inside outside size…`.
fn helper_args(pid: i32, extents: &[Extent]) -> Vec<String> {
    let mut args = vec![pid.to_string()];
    for e in extents {
        args.extend([e.container, e.host, e.size].map(|n| n.to_string()));
    }
    args
}

fn run_helper(tool: &str, pid: i32, extents: &[Extent]) -> Result<(), PlatformError> {
    let out = Command::new(tool)
        .args(helper_args(pid, extents))
        .stdin(Stdio::null())
        .output()
        .map_err(|e| PlatformError::io(format!("running {tool} (package uidmap)"), &e))?;
    if !out.status.success() {
        return Err(PlatformError::Failed {
            call: format!("{tool} {}", helper_args(pid, extents).join(" ")),
            detail: format!(
                "{} ({}; the ranges must be yours in /etc/subuid and /etc/subgid)",
                String::from_utf8_lossy(&out.stderr).trim(),
                out.status
            ),
        });
    }
    Ok(())
}

/// Writes the maps of the cloned (and waiting) init as an unprivileged user: the single
/// own-id mapping directly (`setgroups` set to "deny" first, as the kernel requires of an
/// unprivileged gid map), anything more through newuidmap/newgidmap.
pub fn write_maps(maps: &IdMaps, pid: i32) -> Result<(), PlatformError> {
    let write = |name: &str, text: String| {
        let path = PathBuf::from(format!("/proc/{pid}/{name}"));
        std::fs::write(&path, text)
            .map_err(|e| PlatformError::io(format!("writing {}", path.display()), &e))
    };
    if own_only(&maps.gid, getegid().as_raw()) {
        write("setgroups", "deny".into())?;
        write("gid_map", super::userns::format_map(&maps.gid))?;
    } else {
        run_helper("newgidmap", pid, &maps.gid)?;
    }
    if own_only(&maps.uid, geteuid().as_raw()) {
        write("uid_map", super::userns::format_map(&maps.uid))
    } else {
        run_helper("newuidmap", pid, &maps.uid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(container: u32, host: u32, size: u32) -> Extent {
        Extent {
            container,
            host,
            size,
        }
    }

    #[test]
    fn only_the_single_own_id_mapping_is_written_directly() {
        assert!(own_only(&[e(0, 1000, 1)], 1000));
        assert!(!own_only(&[e(0, 1000, 2)], 1000));
        assert!(!own_only(&[e(0, 1000, 1), e(1, 100000, 65536)], 1000));
        assert!(!own_only(&[e(0, 1001, 1)], 1000));
    }

    #[test]
    fn the_helpers_get_the_pid_then_each_range() {
        assert_eq!(
            helper_args(42, &[e(0, 1000, 1), e(1, 100000, 65536)]),
            ["42", "0", "1000", "1", "1", "100000", "65536"]
        );
    }
}
