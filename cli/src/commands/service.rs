//! `run --image -d`: the service's records, its monitor started, and the wait until the
//! container ran (or could not start) — then `run` prints the name and returns, its own
//! stdout never having been the container's.

use std::process::Child;
use std::time::Duration;

use anyhow::Context;
use stockade_image::provision::{is_provisioned, MadeBundle};
use stockade_monitor::log::{read_entries, Stream};
use stockade_monitor::policy::RestartPolicy;
use stockade_monitor::record::{ServiceConfig, ServiceDir, ServiceState, ServiceStatus};

use stockade_runtime::id::ContainerId;
use stockade_runtime::state::StateStore;

use super::{lifecycle, monitor, service_paths};
use crate::args::lifecycle::{IdArgs, RunArgs};
use crate::args::service::StartArgs;
use crate::args::GlobalArgs;

/// How many of the container's last stderr lines a failed start shows.
const SHOWN_LINES: usize = 5;

/// Hands container `name` (bundle `made`, of `image`) to a new monitor; returns once the
/// container started (or ran and exited), or with an error when it did not start.
pub fn start_service(
    global: &GlobalArgs,
    a: &RunArgs,
    name: &str,
    image: &str,
    made: MadeBundle,
) -> anyhow::Result<u8> {
    let bundle = std::path::absolute(&made.bundle)
        .with_context(|| format!("bundle directory {}", made.bundle.display()))?;
    let root = std::path::absolute(&global.root)
        .with_context(|| format!("state directory {}", global.root.display()))?;
    let dir = ServiceDir::in_bundle(&bundle);
    dir.create()?;
    let default_network = if cfg!(target_os = "linux") && nix::unistd::geteuid().is_root() {
        stockade_net::DEFAULT_NETWORK
    } else {
        "host"
    };
    dir.write_config(&ServiceConfig {
        id: name.to_string(),
        image: image.to_string(),
        bundle,
        root,
        restart: a.service.restart.unwrap_or(RestartPolicy::No),
        log: a.service.log_options(),
        remove: a.rm,
        network: a
            .network
            .network
            .clone()
            .unwrap_or_else(|| default_network.to_string()),
        ports: a.network.publish.clone(),
    })?;
    let child = monitor::spawn(global, &a.storage.location, name)?;
    wait_started(&dir, child)
}

/// `start ID`: runc's start of a created container; for a stopped service (no runtime
/// container, no live monitor) a new monitor, which starts it again.
pub fn start(global: &GlobalArgs, a: &StartArgs) -> anyhow::Result<u8> {
    let dir = service_paths::service_dir(&a.storage.storage_root, &a.id);
    let store = StateStore::open(&global.root)?;
    let in_runtime = ContainerId::parse(&a.id).is_ok_and(|id| store.dir(&id).exists());
    if in_runtime || !dir.exists() || !is_provisioned(&a.storage.storage_root, &a.id) {
        return lifecycle::start(global, &IdArgs { id: a.id.clone() });
    }
    if dir.monitor_alive()? {
        anyhow::bail!("{} is already running (its monitor is alive)", a.id);
    }
    dir.clear_stop()?;
    // `starting` before the monitor runs, so the wait below does not take the last
    // run's `exited` for this one's.
    let mut st = dir
        .read_state()?
        .unwrap_or_else(|| ServiceState::starting(0));
    st.status = ServiceStatus::Starting;
    dir.write_state(&st)?;
    let child = monitor::spawn(global, &a.storage, &a.id)?;
    wait_started(&dir, child)
}

/// Waits until the monitor `child` of `dir` started the container, or failed to.
fn wait_started(dir: &ServiceDir, mut child: Child) -> anyhow::Result<u8> {
    loop {
        if let Ok(Some(st)) = dir.read_state() {
            match st.status {
                ServiceStatus::Starting => {}
                ServiceStatus::Failed => {
                    let _ = child.wait();
                    return Err(not_started(dir, st.error));
                }
                _ => return Ok(0),
            }
        }
        if let Some(status) = child.try_wait().context("waiting for the monitor")? {
            // It ran (and with --rm may have removed everything already).
            if status.success() {
                return Ok(0);
            }
            let why = dir.read_state().ok().flatten().and_then(|s| s.error);
            return Err(not_started(
                dir,
                why.or_else(|| Some(format!("the service monitor ended with {status}"))),
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The error of a service that did not start, with the last lines the container (or the
/// runtime) wrote to stderr.
fn not_started(dir: &ServiceDir, why: Option<String>) -> anyhow::Error {
    let mut msg = why.unwrap_or_else(|| "the container did not start".into());
    let cfg = dir.read_config().ok();
    if let Some(cfg) = cfg {
        let lines: Vec<String> = read_entries(dir.path(), cfg.log.driver, cfg.log.max_files)
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e.stream == Stream::Stderr)
            .map(|e| String::from_utf8_lossy(&e.text).into_owned())
            .collect();
        let tail = &lines[lines.len().saturating_sub(SHOWN_LINES)..];
        for l in tail {
            msg.push_str("\n  ");
            msg.push_str(&stockade_quote::quote(l).to_string());
        }
    }
    anyhow::anyhow!(msg)
}
