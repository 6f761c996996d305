//! `update`: changes a created or running container's resource limits, as runc's update
//! does for `linux.resources` (containerd sends the new resources as JSON on stdin).

use oci_spec::runtime::LinuxResources;

use super::status::live_status;
use super::ContainerError;
use crate::id::ContainerId;
use crate::limits;
use crate::platform::{Host, LimitsChange, Platform, PlatformError};
use crate::state::{StateStore, Status};

/// Applies `resources` to container `id`: the fields it sets replace the limits in force,
/// the rest stay. Returns the warning naming what it sets that is not enforced.
pub fn update(
    store: &StateStore,
    id: &ContainerId,
    resources: &LinuxResources,
) -> Result<Option<String>, ContainerError> {
    let _lock = store.lock(id)?;
    stockade_fault::point("update:after-lock");
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
    let (after, unenforced) = limits::update(&st.limits, resources, Host::TARGET)?;
    // What the update is about to make is written to the state first (a killed update
    // leaves it recorded); the final write below replaces it with what was made.
    let mut journal = st.clone();
    let mut intend = |made: &crate::state::Resources| {
        journal.resources = made.clone();
        store.write(&journal).map_err(|e| PlatformError::Failed {
            call: "recording the update in the state".into(),
            detail: e.to_string(),
        })
    };
    let change = LimitsChange {
        id,
        before: st.limits.clone(),
        after: after.clone(),
        init_pid,
    };
    let applied = Host::update_limits(&mut st.resources, &change, &mut intend);
    if applied.is_ok() {
        st.limits = after;
    }
    stockade_fault::point("update:before-state");
    // What was made or removed is recorded either way, so delete undoes it.
    store.write(&st)?;
    applied?;
    Ok(unenforced)
}
