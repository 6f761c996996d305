//! What the FreeBSD backend made for a container, recorded in `state.json` beside the
//! mount points (see `platform::made`) before each thing is made, so that `delete` (the
//! [`destroy_plan`](super::destroy_plan)) finds it after a SIGKILL at any instant.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The jail, its mounts, devfs rulesets, rctl rules and network changes of one container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FreeBsdMade {
    /// The jail's id and name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jid: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jail_name: Option<String>,
    /// Host paths that were mounted, in mount order.
    #[serde(default)]
    pub mounts: Vec<PathBuf>,
    /// (interface, address) aliases added for `freebsd.jail.interface`.
    #[serde(default)]
    pub interface_aliases: Vec<(String, String)>,
    /// Interfaces moved into the vnet jail.
    #[serde(default)]
    pub vnet_interfaces: Vec<String>,
    /// Devfs rulesets created for `freebsd.devices`.
    #[serde(default)]
    pub devfs_rulesets: Vec<u16>,
    /// The fsid (`FSID:v0:v1`, statfs(2) right after nmount) of each of `mounts`, by path,
    /// in mount order: delete unmounts by fsid (MNT_BYFSID), so a path the container has
    /// since redirected with a symlink can never unmount a host file system.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mount_fsids: Vec<(PathBuf, String)>,
    /// (parent jail, previous children.max) when create had to raise it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raised_children_max: Option<(String, i32)>,
    /// The jail was made with `children.max` to hold other containers' jails (a CRI pod's
    /// sandbox): delete refuses while any of them lives (docs/freebsd-backend.md, "Pods").
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub holds_children: bool,
    /// rctl rules added for the jail (`jail:NAME:memoryuse:deny=N`), removed on delete so
    /// they never apply to a later jail of the same name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rctl_rules: Vec<String>,
}
