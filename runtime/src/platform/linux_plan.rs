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

/// The Linux part of a [`ContainerPlan`](crate::platform::ContainerPlan): what only the
/// namespaces backend reads of the configuration.
#[derive(Debug, Clone, Default)]
pub struct LinuxPlan {
    /// The configuration's `linux` object (namespaces by path, devices, masked and
    /// read-only paths, sysctl, cgroups path, id mappings …), which the Linux backend
    /// applies field by field.
    pub config: Option<Box<oci_spec::runtime::Linux>>,
    /// What the configuration sets that Linux does not apply, one warning each.
    pub warnings: Vec<String>,
}

impl LinuxPlan {
    /// The Linux part of `cfg`.
    pub fn from_config(cfg: &crate::config::ContainerConfig) -> LinuxPlan {
        let mut warnings = Vec::new();
        if !cfg.devices.is_empty() {
            warnings.push("freebsd.devices has no effect on Linux; use linux.devices".to_string());
        }
        if cfg
            .spec
            .linux()
            .as_ref()
            .is_some_and(|l| l.intel_rdt().is_some())
        {
            warnings.push("not applied by stockade: linux.intelRdt".to_string());
        }
        LinuxPlan {
            config: cfg.spec.linux().clone().map(Box::new),
            warnings,
        }
    }
}
