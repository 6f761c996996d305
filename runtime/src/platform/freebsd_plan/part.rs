//! The FreeBSD part of a [`ContainerPlan`](crate::platform::ContainerPlan): what only the
//! jail backend reads of the configuration.

use crate::config::{ContainerConfig, DeviceRule};

/// `freebsd.devices`, and the `linux` settings FreeBSD does not apply (named in one
/// warning by `check`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FreeBsdPlan {
    /// `freebsd.devices`: the container's devfs ruleset.
    pub devices: Vec<DeviceRule>,
    /// The `linux.*` fields set that FreeBSD ignores, each as the warning names it.
    /// (`linux.resources` is enforced through rctl; `crate::limits` names what is not.
    /// `linux.namespaces` become jail parameters.)
    pub ignored_linux: Vec<&'static str>,
}

/// `freebsd.devices` of `plan` (none in a plan made for another kernel, which `check`
/// refuses).
pub fn devices(plan: &crate::platform::ContainerPlan) -> &[DeviceRule] {
    plan.freebsd().map(|p| &p.devices[..]).unwrap_or(&[])
}

impl FreeBsdPlan {
    /// The FreeBSD part of `cfg`.
    pub fn from_config(cfg: &ContainerConfig) -> FreeBsdPlan {
        let mut ignored = Vec::new();
        if let Some(linux) = cfg.spec.linux() {
            for (set, name) in [
                (
                    linux.cgroups_path().is_some(),
                    "cgroupsPath (resource limits are rctl rules on the jail)",
                ),
                (
                    linux.masked_paths().as_ref().is_some_and(|p| !p.is_empty()),
                    "maskedPaths",
                ),
                (
                    linux
                        .readonly_paths()
                        .as_ref()
                        .is_some_and(|p| !p.is_empty()),
                    "readonlyPaths",
                ),
                (
                    linux.devices().as_ref().is_some_and(|d| !d.is_empty()),
                    "devices (use freebsd.devices)",
                ),
                (
                    linux.sysctl().as_ref().is_some_and(|s| !s.is_empty()),
                    "sysctl",
                ),
                (
                    linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty()),
                    "uidMappings/gidMappings",
                ),
                (linux.mount_label().is_some(), "mountLabel"),
                (linux.intel_rdt().is_some(), "intelRdt"),
            ] {
                if set {
                    ignored.push(name);
                }
            }
        }
        FreeBsdPlan {
            devices: cfg.devices.clone(),
            ignored_linux: ignored,
        }
    }
}
