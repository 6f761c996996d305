//! `stockade stop [-t SECS] NAME…`: the service's stop signal (`--stop-signal` of `run`,
//! else the image's StopSignal, else TERM), SIGKILL to every process once the timeout
//! passed, and no restart: the stop request is recorded before any signal.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::sys::signal::Signal;
use stockade_image::bundle::run::STOP_TIMEOUT_ANNOTATION;
use stockade_image::bundle::STOP_SIGNAL_ANNOTATION;
use stockade_image::provision;
use stockade_monitor::record::ServiceDir;
use stockade_quote::quote;
use stockade_runtime::container::{self, ContainerError};
use stockade_runtime::id::ContainerId;
use stockade_runtime::state::StateStore;

use super::service_paths::{bundle_dir, service_dir};
use crate::args::service::StopArgs;
use crate::args::GlobalArgs;

/// The timeout when neither `-t` nor `run --stop-timeout` gave one (Podman's).
pub const DEFAULT_STOP_TIMEOUT: u32 = 10;
/// How long the monitor gets to notice its container's exit once SIGKILL was sent.
const AFTER_KILL: Duration = Duration::from_secs(30);

pub fn run(global: &GlobalArgs, a: &StopArgs) -> anyhow::Result<u8> {
    let store = StateStore::open(&global.root)?;
    for name in &a.names {
        let dir = find(&a.storage.storage_root, name)?;
        stop(&store, &a.storage.storage_root, name, &dir, a.time, false)?;
        println!("{name}");
    }
    Ok(0)
}

/// The service directory of `name`, which must be a service.
pub fn find(storage_root: &Path, name: &str) -> anyhow::Result<ServiceDir> {
    let dir = service_dir(storage_root, name);
    if !provision::is_provisioned(storage_root, name) || !dir.exists() {
        anyhow::bail!(
            "no service named {} (services are made by `stockade run --image -d`)",
            quote(name)
        );
    }
    Ok(dir)
}

/// The stop signal and timeout recorded in the bundle of `name`.
pub fn stop_settings(storage_root: &Path, name: &str) -> (Signal, Option<u32>) {
    let config = bundle_dir(storage_root, name).join("config.json");
    let spec: serde_json::Value = std::fs::read(&config)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let notes = &spec["annotations"];
    let signal = notes[STOP_SIGNAL_ANNOTATION]
        .as_str()
        .and_then(|s| container::parse_signal(s).ok())
        .unwrap_or(Signal::SIGTERM);
    let timeout = notes[STOP_TIMEOUT_ANNOTATION]
        .as_str()
        .and_then(|t| t.parse().ok());
    (signal, timeout)
}

/// Stops service `name`: records the request (`remove`: for `rm`, which removes it
/// itself), signals, waits up to the timeout for the monitor to end, then kills.
pub fn stop(
    store: &StateStore,
    storage_root: &Path,
    name: &str,
    dir: &ServiceDir,
    time: Option<u32>,
    remove: bool,
) -> anyhow::Result<()> {
    // An `rm` under way keeps its request (the removal is its).
    dir.request_stop(remove || dir.removal_requested())?;
    // A --rm service is removed by its monitor, which ends right after: `stop` returns
    // once that is done too.
    let removed_by_monitor = !remove && dir.read_config().is_ok_and(|c| c.remove);
    let id = ContainerId::parse(name)?;
    if !dir.monitor_alive()? {
        // No monitor (it was killed): the container may still run; nothing would restart it.
        if store.dir(&id).exists() {
            container::delete(store, &id, true)?;
        }
        return Ok(());
    }
    let (signal, recorded) = stop_settings(storage_root, name);
    let timeout = time.or(recorded).unwrap_or(DEFAULT_STOP_TIMEOUT);
    if timeout > 0 {
        ignore_not_running(container::kill(store, &id, signal, false))
            .with_context(|| format!("sending {} to {name}", signal.as_str()))?;
        if wait_monitor(dir, Duration::from_secs(timeout.into()))? {
            return wait_removed(storage_root, name, removed_by_monitor);
        }
    }
    ignore_not_running(container::kill(store, &id, Signal::SIGKILL, true))
        .with_context(|| format!("killing {name}"))?;
    if wait_monitor(dir, AFTER_KILL)? {
        return wait_removed(storage_root, name, removed_by_monitor);
    }
    anyhow::bail!(
        "the monitor of {name} did not end within {}s of SIGKILL to the container",
        AFTER_KILL.as_secs()
    )
}

/// A container that is not running (or no longer exists) needs no signal.
fn ignore_not_running(r: Result<(), ContainerError>) -> Result<(), ContainerError> {
    match r {
        Err(ContainerError::NotRunning { .. }) => Ok(()),
        Err(e) if e.errno() == Some(nix::errno::Errno::ESRCH) => Ok(()),
        Err(ContainerError::State(_)) => Ok(()),
        other => other,
    }
}

/// With `removing`, waits (bounded) until the monitor removed service `name`: its lock is
/// released while the removal still runs (the lock file goes with the bundle).
fn wait_removed(storage_root: &Path, name: &str, removing: bool) -> anyhow::Result<()> {
    let until = Instant::now() + AFTER_KILL;
    while removing && provision::is_provisioned(storage_root, name) {
        if Instant::now() >= until {
            anyhow::bail!(
                "{name} stopped, but its monitor did not remove it (--rm) within {}s; `stockade rm -f {name}` does",
                AFTER_KILL.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Waits up to `timeout` for the monitor's lock to be free; returns whether it is.
fn wait_monitor(dir: &ServiceDir, timeout: Duration) -> anyhow::Result<bool> {
    let until = Instant::now() + timeout;
    loop {
        if !dir.monitor_alive()? {
            return Ok(true);
        }
        if Instant::now() >= until {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
