//! The Linux backend's data, pure so that it compiles, and is planned and tested, on any
//! host: what it recorded having made (cgroups) beside the mount points in `state.json`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// What the Linux backend made on the host for a container. Everything else (mounts,
/// devices, namespaces) lives in the container's own namespaces and dies with them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinuxMade {
    /// Cgroup directories created for the container's limits, outermost first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cgroups: Vec<PathBuf>,
    /// `linux.cgroupsPath` as create planned it: where `update` makes the cgroups of
    /// controllers limited for the first time. (A state written before this was recorded
    /// has none: such a container's new cgroups go to the default place.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroups_path: Option<PathBuf>,
}
