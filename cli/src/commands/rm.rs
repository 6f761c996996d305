//! `stockade rm [-f] NAME…`: removes containers `run --image` made — the runtime's state,
//! the root filesystem, the bundle (with the service's records and log), the network.
//! A running one is refused without `-f`; with it, it is killed first, also when its
//! monitor died.

use std::fs::File;

use nix::fcntl::Flock;
use stockade_image::provision;
use stockade_monitor::MonitorError;
use stockade_quote::quote;
use stockade_runtime::container::container_state;
use stockade_runtime::id::ContainerId;
use stockade_runtime::state::{StateStore, Status};

use super::monitor::remove;
use super::service_paths::service_dir;
use super::stop;
use crate::args::service::RmArgs;
use crate::args::GlobalArgs;

pub fn run(global: &GlobalArgs, a: &RmArgs) -> anyhow::Result<u8> {
    let store = StateStore::open(&global.root)?;
    let root = &a.storage.storage_root;
    for name in &a.names {
        if !provision::is_provisioned(root, name) {
            if a.force {
                continue;
            }
            anyhow::bail!(
                "no container named {} made by `run --image` (for a bundle's container use `delete`)",
                quote(name)
            );
        }
        let dir = service_dir(root, name);
        let monitored = dir.exists() && dir.monitor_alive()?;
        let running = monitored || runtime_running(&store, name);
        if running && !a.force {
            anyhow::bail!("{name} is running: stop it first (`stockade stop {name}`) or use rm -f");
        }
        // Killed at once, and the monitor told not to restart nor remove it itself.
        let _held = quiesce(&store, root, name, true)?;
        remove(global, &a.storage, name)?;
        println!("{name}");
    }
    Ok(0)
}

/// Before a removal (`rm`, `delete`) of a container `run --image -d` made: its monitor, if
/// alive, is refused without `force`, else told to stop without removing and the
/// container killed, so that no restart races the removal. The monitor's lock is then
/// taken and returned, to be held across the removal: a monitor starting meanwhile (a
/// `run -d` killed right after it spawned one) finds it taken, or the stop request, and
/// ends without running anything.
pub fn quiesce(
    store: &StateStore,
    storage_root: &std::path::Path,
    name: &str,
    force: bool,
) -> anyhow::Result<Option<Flock<File>>> {
    let dir = service_dir(storage_root, name);
    if !dir.exists() {
        return Ok(None);
    }
    if dir.monitor_alive()? {
        if !force {
            anyhow::bail!(
                "{name} is a service whose monitor runs: stop it first (`stockade stop {name}`), or use --force"
            );
        }
        stop::stop(store, storage_root, name, &dir, Some(0), true)?;
    } else {
        dir.request_stop(true)?;
    }
    match dir.lock(name) {
        Ok(l) => Ok(Some(l)),
        Err(MonitorError::Running { .. }) => anyhow::bail!(
            "a monitor of {name} started while it was being removed; run the command again"
        ),
        Err(e) => Err(e.into()),
    }
}

/// Whether the runtime has container `name` running (or paused, or being created).
fn runtime_running(store: &StateStore, name: &str) -> bool {
    let Ok(id) = ContainerId::parse(name) else {
        return false;
    };
    store
        .read(&id)
        .is_ok_and(|st| !matches!(container_state(&st).status, Status::Stopped))
}
