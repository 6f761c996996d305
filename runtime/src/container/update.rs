//! `update`: changes a created or running container's resource limits, as runc's update
//! does for `linux.resources` (containerd sends the new resources as JSON on stdin).

use oci_spec::runtime::LinuxResources;

use super::status::live_status;
use super::ContainerError;
use crate::id::ContainerId;
use crate::limits;
use crate::platform::{Host, LimitsChange, Platform};
use crate::state::{StateStore, Status};

/// Applies `resources` to container `id`: the fields it sets replace the limits in force,
/// the rest stay. Returns the warning naming what it sets that is not enforced.
pub fn update(
    store: &StateStore,
    id: &ContainerId,
    resources: &LinuxResources,
) -> Result<Option<String>, ContainerError> {
    let _lock = store.lock(id)?;
    let mut st = store.read(id)?;
    let status = live_status(&st);
    let (Status::Created | Status::Running, Some(init_pid)) = (status, st.pid) else {
        return Err(ContainerError::WrongStatus {
            id: id.clone(),
            op: "update",
            status,
            expected: "only a created or running container has limits to change",
        });
    };
    let (after, unenforced) = limits::update(&st.limits, resources)?;
    let cgroups_path = stored_cgroups_path(store, id)?;
    let change = LimitsChange {
        id,
        cgroups_path: cgroups_path.as_deref(),
        before: st.limits.clone(),
        after: after.clone(),
        init_pid,
    };
    let applied = Host::update_limits(&mut st.resources, &change);
    if applied.is_ok() {
        st.limits = after;
    }
    // What was made or removed is recorded either way, so delete undoes it.
    store.write(&st)?;
    applied?;
    Ok(unenforced)
}

/// `linux.cgroupsPath` of the configuration copied at create.
fn stored_cgroups_path(
    store: &StateStore,
    id: &ContainerId,
) -> Result<Option<std::path::PathBuf>, ContainerError> {
    Ok(super::stored_config(store, id)?
        .pointer("/linux/cgroupsPath")
        .and_then(serde_json::Value::as_str)
        .filter(|p| !p.is_empty())
        .map(std::path::PathBuf::from))
}
