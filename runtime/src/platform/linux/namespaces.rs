//! Which namespaces a container gets: the jail model mapped onto Linux, plus
//! `linux.namespaces` entries that join an existing namespace by path.

use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};

use super::join::{is_callers, order, Join};
use super::userns::IdMaps;
use crate::config::SharingMode;
use crate::jail::{Host, IpAccess, Network};
use crate::platform::{ContainerPlan, PlatformError};

/// New namespaces to create, and existing ones to join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespacePlan {
    pub clone_flags: CloneFlags,
    /// Namespaces the init joins with setns before anything else, in join order (the user
    /// namespace first, the mount namespace last); never the PID namespace.
    pub join: Vec<Join>,
    /// The PID namespace joined by path: the runtime joins it for its children and clones
    /// the init into it.
    pub join_pid: Option<Join>,
    /// The maps of the new user namespace, when `clone_flags` has one.
    pub user: Option<IdMaps>,
}

impl NamespacePlan {
    /// The user namespace joined by path, if any.
    pub fn joined_user(&self) -> Option<&Join> {
        self.join
            .iter()
            .find(|j| j.flag == CloneFlags::CLONE_NEWUSER)
    }

    /// Whether the calling init is in a user namespace other than the host's (device nodes
    /// can then be neither made nor opened: they are bind-mounted from the host). Asked
    /// of the kernel, as the init may have joined it already: only the host's user
    /// namespace maps every id to itself.
    pub fn in_user_namespace(&self) -> bool {
        self.clone_flags.contains(CloneFlags::CLONE_NEWUSER)
            || std::fs::read_to_string("/proc/self/uid_map").map_or(true, |m| {
                m.split_whitespace().collect::<Vec<_>>() != ["0", "0", "4294967295"]
            })
    }

    /// The namespaces the container has of its own: made new, or joined by path when the
    /// path is not the caller's own namespace of that type (judged by the caller's
    /// `/proc/self/ns`, so before any setns).
    pub fn own(&self) -> CloneFlags {
        let mut own = self.clone_flags;
        for j in self.join.iter().chain(&self.join_pid) {
            if !is_callers(j.flag, &j.path) {
                own |= j.flag;
            }
        }
        own
    }

    /// Opens every joined path, checking it is a namespace of its entry's type.
    pub fn check_joins(&self) -> Result<(), PlatformError> {
        for j in self.join.iter().chain(&self.join_pid) {
            j.open()?;
        }
        Ok(())
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
    let Some(l) = super::linux_config(plan) else {
        return Ok(());
    };
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

/// The `linux.namespaces` list, when the config has one (the config layer makes a `linux`
/// object without the key list none, as runc reads it, unless the config is a jail's with
/// a `freebsd` section). Without a list the jail model alone decides: mount and PID
/// namespaces of its own.
fn listed(plan: &ContainerPlan) -> Option<&[LinuxNamespace]> {
    super::linux_config(plan)?.namespaces().as_deref()
}

/// Decides the namespaces for `plan`. Mount and PID: new when listed without a path, joined
/// when listed with one; when not listed, the PID namespace is the runtime's own, and a
/// container without a mount namespace is refused (it would mount in the host's mount
/// table; runc refuses it as soon as maskedPaths or readonlyPaths are set). Without a list
/// (no `linux` object, or a jail configuration's) both are new. UTS for `host=new`; network for `vnet=new` (or no address
/// family at all); IPC when SysV IPC is `new` — the jail settings, which `linux.namespaces`
/// sets (a type not listed is the runtime's own) unless the `freebsd` section overrides it.
pub fn plan(plan: &ContainerPlan) -> Result<NamespacePlan, PlatformError> {
    let list = listed(plan);
    let mut flags = CloneFlags::empty();
    if list.is_none() {
        flags |= CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWPID;
    }
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
    let mut join_pid = None;
    for (i, ns) in list.unwrap_or_default().iter().enumerate() {
        let flag = match ns.typ() {
            LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
            LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
            LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
            LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
            LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
            LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
            LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
            LinuxNamespaceType::Time => {
                return Err(unsupported(
                    format!("linux.namespaces[{i}]: time namespaces"),
                    "remove the time namespace",
                ))
            }
        };
        if list.unwrap_or_default()[..i]
            .iter()
            .any(|o| o.typ() == ns.typ())
        {
            return Err(PlatformError::Failed {
                call: format!("linux.namespaces[{i}]"),
                detail: format!("the {} namespace is listed twice", ns.typ()),
            });
        }
        match ns.path() {
            None => {
                // Uts, ipc and network come from the jail settings (which the freebsd
                // section may override); the others only from this list.
                if matches!(
                    flag,
                    CloneFlags::CLONE_NEWNS
                        | CloneFlags::CLONE_NEWPID
                        | CloneFlags::CLONE_NEWCGROUP
                        | CloneFlags::CLONE_NEWUSER
                ) {
                    flags |= flag;
                }
            }
            Some(path) => {
                flags.remove(flag);
                let entry = Join {
                    index: i,
                    flag,
                    path: path.clone(),
                };
                match flag {
                    CloneFlags::CLONE_NEWPID => join_pid = Some(entry),
                    _ => join.push(entry),
                }
            }
        }
    }
    order(&mut join);
    let mount_listed = list.is_none_or(|l| l.iter().any(|n| n.typ() == LinuxNamespaceType::Mount));
    let own_mount = match join.iter().find(|j| j.flag == CloneFlags::CLONE_NEWNS) {
        Some(j) => !is_callers(j.flag, &j.path),
        None => mount_listed,
    };
    if !own_mount {
        return Err(unsupported(
            "a container without a mount namespace of its own (linux.namespaces lists no \"mount\", or its path is the runtime's own)",
            "add {\"type\": \"mount\"} to linux.namespaces: without one the container's mounts would be made in the host's mount table",
        ));
    }
    let user = IdMaps::from_plan(plan, flags.contains(CloneFlags::CLONE_NEWUSER))?;
    Ok(NamespacePlan {
        clone_flags: flags,
        join,
        join_pid,
        user,
    })
}
