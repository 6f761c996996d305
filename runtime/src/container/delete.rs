//! `delete`: stop whatever is left, undo what create made, remove the state.
//!
//! Crash safety: every step can be cut short by SIGKILL and done again by the next delete.
//! The state is removed last, so a delete killed midway leaves a container that a second
//! `delete --force` finishes.

use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::remove_created::remove_created_under;
use super::{can_delete, live_status, wait_gone, ContainerError};
use crate::hooks::{self, Phase};
use crate::id::ContainerId;
use crate::platform::{Host, Platform};
use crate::state::{StateError, StateStore, Status};
use stockade_fault as fault;

/// How long delete waits for killed processes to go.
const KILL_WAIT: Duration = Duration::from_secs(10);

/// Deletes container `id`. A created container is killed and deleted; a running one only
/// with `force`; with `force`, an unknown id is not an error. A container left `creating`
/// by a create that died is deleted like a created one: its init is killed by pid and
/// start time, recorded before the init could make or wait on anything.
pub fn delete(store: &StateStore, id: &ContainerId, force: bool) -> Result<(), ContainerError> {
    fault::point("delete:before-lock");
    let _lock = match store.lock(id) {
        Ok(l) => l,
        Err(StateError::NotFound(_)) if force => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    fault::point("delete:after-lock");
    let st = match store.read(id) {
        Ok(st) => st,
        // A create that died before writing any state (or a delete that died after
        // removing it): nothing but the directory exists.
        Err(StateError::NotFound(_)) => {
            store.remove(id)?;
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let status = live_status(&st);
    tracing::debug!("delete {id}: status {status}, force {force}");
    if !force && !can_delete(status) {
        return Err(ContainerError::WrongStatus {
            id: id.clone(),
            op: "delete",
            status,
            expected: "stop it first (kill) or use --force",
        });
    }
    if status != Status::Stopped {
        if let Some(pid) = st.pid {
            let mut targets = crate::platform::procs::container_pids(&st.resources, Some(pid))
                .unwrap_or_default();
            if !targets.contains(&pid) {
                targets.push(pid);
            }
            tracing::debug!("delete {id}: SIGKILL to {targets:?}");
            for p in targets {
                let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
            }
            if !wait_gone(pid, st.pid_start_time, KILL_WAIT) {
                return Err(ContainerError::Stuck {
                    id: id.clone(),
                    what: format!("init process {pid}"),
                    seconds: KILL_WAIT.as_secs(),
                });
            }
        }
    }
    fault::point("delete:after-kill");
    tracing::debug!("delete {id}: destroying {:?}", st.resources.backend);
    let mut failures = Host::destroy(&st.resources);
    fault::point("delete:after-destroy");
    tracing::debug!(
        "delete {id}: removing {} mount points create made",
        st.resources.mount_points.len()
    );
    if let Some(first) = failures.drain(..).next() {
        // Keep the state so that delete can be retried once the cause is fixed.
        return Err(first.into());
    }
    // What create made on the root filesystem goes only while it is still what create
    // made; anything the container replaced or filled is left, and said so.
    for w in remove_created_under(&st.rootfs, &st.resources.mount_points) {
        tracing::warn!("deleting {id}: {w}");
    }
    fault::point("delete:after-mount-points");
    let poststop = poststop_hooks(store, id);
    if !poststop.is_empty() {
        let state = serde_json::to_vec(&super::container_state_as(&st, Status::Stopped))
            .unwrap_or_default();
        // Each failure is a warning; the hooks after it still run (runtime-spec).
        hooks::run_warning(Phase::Poststop, &poststop, &state);
    }
    fault::point("delete:before-remove");
    store.remove(id)?;
    tracing::debug!("delete {id}: state removed");
    Ok(())
}

/// The poststop hooks derived at create. A create that died before writing the record
/// ran nothing that a poststop hook would undo: no hooks. A record that cannot be read
/// must not keep the container from going: no hooks, with a warning.
fn poststop_hooks(store: &StateStore, id: &ContainerId) -> Vec<oci_spec::runtime::Hook> {
    match store.read_derived(id) {
        Ok(d) => d.hooks.poststop,
        Err(StateError::NoDerived { .. }) => Vec::new(),
        Err(e) => {
            tracing::warn!("deleting {id}: {e}; its poststop hooks are not run");
            Vec::new()
        }
    }
}
