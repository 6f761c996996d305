//! What `state.json` holds.

use crate::limits::ResourceLimits;
use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::id::ContainerId;

/// OCI status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Stopped,
}

impl Status {
    /// The status as the spec spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Stopped => "stopped",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What create made on the host, recorded as it is made so that a failed create and a
/// delete undo exactly that, in reverse order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resources {
    /// FreeBSD: the jail's id and name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jid: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jail_name: Option<String>,
    /// Host paths that were mounted, in mount order (FreeBSD; on Linux mounts live and die
    /// with the container's mount namespace).
    #[serde(default)]
    pub mounts: Vec<PathBuf>,
    /// Files, directories, device nodes and links created on the root filesystem (mount
    /// points, default devices), outermost first, each with its identity when made.
    #[serde(default)]
    pub mount_points: Vec<crate::mounts::Created>,
    /// FreeBSD: (interface, address) aliases added for `freebsd.jail.interface`.
    #[serde(default)]
    pub interface_aliases: Vec<(String, String)>,
    /// FreeBSD: interfaces moved into the vnet jail.
    #[serde(default)]
    pub vnet_interfaces: Vec<String>,
    /// FreeBSD: devfs rulesets created for `freebsd.devices`.
    #[serde(default)]
    pub devfs_rulesets: Vec<u16>,
    /// FreeBSD: the fsid (`FSID:v0:v1`, statfs(2) right after nmount) of each of `mounts`,
    /// by path, in mount order: delete unmounts by fsid (MNT_BYFSID), so a path the
    /// container has since redirected with a symlink can never unmount a host file system.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mount_fsids: Vec<(PathBuf, String)>,
    /// FreeBSD: (parent jail, previous children.max) when create had to raise it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raised_children_max: Option<(String, i32)>,
    /// FreeBSD: rctl rules added for the jail (`jail:NAME:memoryuse:deny=N`), removed on
    /// delete so they never apply to a later jail of the same name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rctl_rules: Vec<String>,
    /// Linux: cgroup directories created for the container's limits, outermost first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cgroups: Vec<PathBuf>,
}

/// `state.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredState {
    pub oci_version: String,
    pub id: ContainerIdString,
    /// The status last written; the live status is derived from it and the init process.
    pub status: Status,
    /// The init process's host pid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// The init process's start time (platform clock ticks or microseconds), so a reused
    /// pid is never taken for the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_start_time: Option<u64>,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339.
    pub created: String,
    pub owner: String,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub resources: Resources,
    /// The resource limits in force: create's, as `update` has changed them since.
    #[serde(default, skip_serializing_if = "ResourceLimits::is_empty")]
    pub limits: ResourceLimits,
}

/// The container id as stored (serialised as a plain string).
pub type ContainerIdString = ContainerId;

impl Serialize for ContainerId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ContainerId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ContainerId::parse(&s).map_err(serde::de::Error::custom)
    }
}
