//! Which namespaces a container gets: the jail model mapped onto Linux, plus
//! `linux.namespaces` entries that join an existing namespace by path.

use std::path::PathBuf;

use nix::sched::CloneFlags;
use oci_spec::runtime::LinuxNamespaceType;

use super::userns::IdMaps;
use crate::config::SharingMode;
use crate::jail::{Host, IpAccess, Network};
use crate::platform::{ContainerPlan, PlatformError};

/// New namespaces to create, and existing ones to join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespacePlan {
    pub clone_flags: CloneFlags,
    /// (flag, path) joined with setns in the init before anything else.
    pub join: Vec<(CloneFlags, PathBuf)>,
    /// The maps of the new user namespace, when `clone_flags` has one.
    pub user: Option<IdMaps>,
}

impl NamespacePlan {
    /// The namespaces the container has of its own: made new, or joined by path when the
    /// path is not the caller's own namespace of that type (judged by the caller's
    /// `/proc/self/ns`, so before any setns).
    pub fn own(&self) -> CloneFlags {
        let mut own = self.clone_flags;
        for (flag, path) in &self.join {
            if !is_callers(*flag, path) {
                own |= *flag;
            }
        }
        own
    }
}

/// The `/proc/self/ns` name of a namespace flag.
fn proc_name(flag: CloneFlags) -> &'static str {
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

/// Whether `path` is the caller's own namespace of type `flag` (the same inode). A path
/// that cannot be read counts as the caller's: the stricter answer.
fn is_callers(flag: CloneFlags, path: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let id = |p: &std::path::Path| std::fs::metadata(p).map(|m| (m.dev(), m.ino())).ok();
    match id(path) {
        Some(theirs) => {
            id(&std::path::Path::new("/proc/self/ns").join(proc_name(flag))) == Some(theirs)
        }
        None => true,
    }
}

fn unsupported(what: impl Into<String>, hint: &str) -> PlatformError {
    PlatformError::Unsupported {
        what: what.into(),
        os: "Linux",
        hint: hint.into(),
    }
}

/// `linux` fields stockade does not apply and callers do not send routinely: refused by
/// name rather than dropped.
pub fn refuse_unapplied(plan: &ContainerPlan) -> Result<(), PlatformError> {
    let Some(l) = &plan.linux else { return Ok(()) };
    let mut given = Vec::new();
    if l.personality().is_some() {
        given.push("linux.personality");
    }
    if l.time_offsets().as_ref().is_some_and(|t| !t.is_empty()) {
        given.push("linux.timeOffsets (time namespaces)");
    }
    if l.memory_policy().is_some() {
        given.push("linux.memoryPolicy");
    }
    if l.net_devices().as_ref().is_some_and(|d| !d.is_empty()) {
        given.push("linux.netDevices");
    }
    match given.is_empty() {
        true => Ok(()),
        false => Err(unsupported(
            given.join(", "),
            "stockade does not apply these; remove them from the configuration",
        )),
    }
}

/// Decides the namespaces for `plan`: always mount and PID; UTS for `host=new`; network
/// for `vnet=new` (or no address family at all); IPC when SysV IPC is `new`.
pub fn plan(plan: &ContainerPlan) -> Result<NamespacePlan, PlatformError> {
    let mut flags = CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWPID;
    let j = &plan.jail;
    if matches!(j.host, Host::New { .. }) {
        flags |= CloneFlags::CLONE_NEWUTS;
    }
    match &j.network {
        Network::Vnet { interfaces } if !interfaces.is_empty() => {
            return Err(unsupported(
                format!("moving interfaces {interfaces:?} into the container"),
                "create the container with a network namespace and move interfaces with `ip link set IF netns PID` from a createRuntime hook",
            ))
        }
        Network::Vnet { .. } => flags |= CloneFlags::CLONE_NEWNET,
        Network::Shared { ip4: IpAccess::Inherit, ip6: IpAccess::Inherit, .. } => {}
        Network::Shared { ip4: IpAccess::Disable, ip6: IpAccess::Disable, .. } => flags |= CloneFlags::CLONE_NEWNET,
        Network::Shared { .. } => {
            return Err(unsupported(
                "restricting a container to some IP addresses of the host (ip4/ip6 \"new\" or one family disabled)",
                "Linux has no per-address restriction; use vnet \"new\" (a network namespace), or ip4/ip6 \"inherit\"",
            ))
        }
    }
    let sysv = [j.sysvmsg, j.sysvsem, j.sysvshm];
    if sysv.contains(&SharingMode::New) {
        if sysv.iter().any(|m| *m != SharingMode::New) {
            tracing::warn!("Linux has one IPC namespace for all SysV IPC; sysvmsg/sysvsem/sysvshm differ, so all get a new one");
        }
        flags |= CloneFlags::CLONE_NEWIPC;
    } else if sysv.contains(&SharingMode::Disable) {
        tracing::warn!("SysV IPC \"disable\" has no Linux equivalent; the container shares the host's IPC namespace");
    }

    let mut join = Vec::new();
    let list = plan
        .linux
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    for (i, ns) in list.iter().enumerate() {
        let flag = match ns.typ() {
            LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
            LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
            LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
            LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
            LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
            LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
            LinuxNamespaceType::User if ns.path().is_some() => {
                return Err(unsupported(
                    format!("linux.namespaces[{i}]: joining a user namespace by path"),
                    "give the container a new user namespace with linux.uidMappings/gidMappings instead",
                ))
            }
            LinuxNamespaceType::User => {
                // Cloned together with the others, which it then owns: the init is root
                // over its mounts, PID and network namespaces, and nothing on the host.
                flags |= CloneFlags::CLONE_NEWUSER;
                continue;
            }
            LinuxNamespaceType::Time => {
                return Err(unsupported(format!("linux.namespaces[{i}]: time namespaces"), "remove the time namespace"))
            }
        };
        if ns.typ() == LinuxNamespaceType::Cgroup && ns.path().is_none() {
            flags |= CloneFlags::CLONE_NEWCGROUP;
        }
        if let Some(path) = ns.path() {
            if flag == CloneFlags::CLONE_NEWPID || flag == CloneFlags::CLONE_NEWNS {
                return Err(unsupported(
                    format!(
                        "linux.namespaces[{i}]: joining a {} namespace by path",
                        ns.typ()
                    ),
                    "only network, ipc, uts and cgroup namespaces can be joined by path",
                ));
            }
            flags.remove(flag);
            join.push((flag, path.clone()));
        }
    }
    let user = IdMaps::from_plan(plan, flags.contains(CloneFlags::CLONE_NEWUSER))?;
    Ok(NamespacePlan {
        clone_flags: flags,
        join,
        user,
    })
}
