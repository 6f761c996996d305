//! The device rules' cgroup: which hierarchy carries them, and the BPF filter on a v2
//! cgroup.

use std::fs;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use super::{io_err, Hierarchy};
use crate::platform::linux::cgroup_sys;
use crate::platform::linux::devices::{self, Policy};
use crate::platform::{ContainerPlan, PlatformError};

/// The device rules of `plan` (`linux.resources.devices` and the defaults).
pub(super) fn device_policy(plan: &ContainerPlan) -> Result<Policy, PlatformError> {
    let list = crate::platform::linux::linux_config(plan)
        .and_then(|l| l.resources().as_ref())
        .and_then(|r| r.devices().as_deref())
        .unwrap_or(&[]);
    let rules = devices::rules(list).map_err(|e| PlatformError::Failed {
        call: "reading the device rules".into(),
        detail: e.to_string(),
    })?;
    Ok(Policy::new(&rules))
}

/// Where device rules go: the v2 mount when there is one (a BPF program needs no
/// controller), else the v1 `devices` hierarchy.
pub(super) fn device_hierarchy(
    v1: &[(String, PathBuf)],
    v2: Option<&Path>,
) -> Result<Hierarchy, PlatformError> {
    if let Some(mount) = v2 {
        return Ok(Hierarchy {
            mount: mount.to_path_buf(),
            v2: true,
        });
    }
    if let Some((_, mount)) = v1.iter().find(|(o, _)| o == "devices") {
        return Ok(Hierarchy {
            mount: mount.clone(),
            v2: false,
        });
    }
    Err(PlatformError::Unsupported {
        what: "linux.resources.devices (device rules, enforced on every container)".into(),
        os: "this Linux host",
        hint: "no cgroup2 mount and no cgroup v1 devices hierarchy is mounted; mount one".into(),
    })
}

/// Loads the device filter `prog` and attaches it to the v2 cgroup `dir`. The cgroup
/// holds the program from then on; it goes with the cgroup's removal.
pub(super) fn attach_device_filter(dir: &Path, prog: &[u8]) -> Result<(), PlatformError> {
    let cgroup =
        fs::File::open(dir).map_err(io_err(format!("opening cgroup {}", dir.display())))?;
    let loaded =
        cgroup_sys::load_device_program(prog).map_err(|(e, log)| PlatformError::Failed {
            call: "bpf(BPF_PROG_LOAD) of the device filter".into(),
            detail: if log.is_empty() {
                e.to_string()
            } else {
                format!("{e}; verifier: {log}")
            },
        })?;
    cgroup_sys::attach_device_program(cgroup.as_fd(), loaded.as_fd()).map_err(|e| {
        PlatformError::call(
            format!(
                "bpf(BPF_PROG_ATTACH) of the device filter to {}",
                dir.display()
            ),
            e,
        )
    })
}
