//! `delete`: stop whatever is left, undo what create made, remove the state.

use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::{can_delete, live_status, wait_gone, ContainerError};
use crate::hooks::{self, Phase};
use crate::id::ContainerId;
use crate::mounts::remove_mount_points;
use crate::platform::{Host, Platform};
use crate::state::{StateError, StateStore, Status};

/// How long delete waits for killed processes to go.
const KILL_WAIT: Duration = Duration::from_secs(10);

/// Deletes container `id`. A created container is killed and deleted; a running one only
/// with `force`; with `force`, an unknown id is not an error.
pub fn delete(store: &StateStore, id: &ContainerId, force: bool) -> Result<(), ContainerError> {
    let _lock = match store.lock(id) {
        Ok(l) => l,
        Err(StateError::NotFound(_)) if force => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let st = match store.read(id) {
        Ok(st) => st,
        // A create that died before writing any state: nothing but the directory exists.
        Err(StateError::NotFound(_)) => {
            store.remove(id)?;
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let status = live_status(&st);
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
            let mut targets = Host::container_pids(&st.resources, Some(pid)).unwrap_or_default();
            if !targets.contains(&pid) {
                targets.push(pid);
            }
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
    let mut failures = Host::destroy(&st.resources);
    let mount_failures = remove_mount_points(&st.resources.mount_points);
    if let Some(first) = failures.drain(..).next() {
        // Keep the state so that delete can be retried once the cause is fixed.
        return Err(first.into());
    }
    for e in mount_failures {
        tracing::warn!("deleting {id}: {e}");
    }
    let poststop = super::stored_hooks(store, id, Phase::Poststop);
    if !poststop.is_empty() {
        let state = serde_json::to_vec(&super::container_state_as(&st, Status::Stopped))
            .unwrap_or_default();
        if let Err(e) = hooks::run(Phase::Poststop, &poststop, &state) {
            tracing::warn!("deleting {id}: {e} (poststop hook failures do not stop delete)");
        }
    }
    store.remove(id)?;
    Ok(())
}
