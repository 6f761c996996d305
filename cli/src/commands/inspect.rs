//! `stockade inspect NAME…`: a JSON array, one object per container `run --image` made.
//! The field names are stable (docs/cli.md lists them); a field without a value is null.

use std::io::Write;
use std::path::Path;

use serde::Serialize;
use serde_json::Value;
use stockade_image::provision::{self, PROVISIONS_DIR};
use stockade_monitor::log::LOG_FILE;
use stockade_monitor::record::{ServiceConfig, ServiceState, ServiceStatus};
use stockade_net::attach::ATTACHMENTS_DIR;
use stockade_net::config::NETWORKS_DIR;
use stockade_quote::quote;
use stockade_runtime::container::container_state;
use stockade_runtime::id::ContainerId;
use stockade_runtime::state::{StateStore, Status};

use super::service_paths::{bundle_dir, service_dir};
use crate::args::service::InspectArgs;
use crate::args::GlobalArgs;

/// Largest record read for inspect (they are a few kilobytes).
const MAX_JSON: u64 = 4 << 20;

#[derive(Debug, Serialize)]
struct Inspected {
    id: String,
    name: String,
    image: Option<String>,
    bundle: String,
    /// Whether a monitor runs it (`run --image -d`).
    service: bool,
    config: ConfigSummary,
    state: StateSummary,
    mounts: Vec<MountSummary>,
    network: NetworkSummary,
    restart_policy: Option<String>,
    restart_count: u32,
    log_driver: Option<String>,
    log_path: Option<String>,
}

#[derive(Debug, Serialize)]
struct ConfigSummary {
    args: Vec<String>,
    env: Vec<String>,
    working_dir: Option<String>,
    uid: Option<u64>,
    gid: Option<u64>,
    hostname: Option<String>,
    terminal: bool,
    read_only: bool,
    stop_signal: Option<String>,
    stop_timeout: Option<String>,
}

#[derive(Debug, Serialize)]
struct StateSummary {
    /// The monitor's status (`starting`, `running`, `restarting`, `exited`, `failed`, or
    /// `monitor-lost` when its monitor was killed) for a service, else the runtime's
    /// (`created`, `running`, `stopped`), else `no-state`.
    status: String,
    running: bool,
    pid: Option<i32>,
    monitor_pid: Option<i32>,
    exit_code: Option<u8>,
    started_at: Option<String>,
    finished_at: Option<String>,
    stopped_by_user: bool,
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct MountSummary {
    #[serde(rename = "type")]
    kind: Option<String>,
    source: Option<String>,
    destination: String,
    options: Vec<String>,
}

#[derive(Debug, Serialize)]
struct NetworkSummary {
    mode: Option<String>,
    addresses: Vec<String>,
    ports: Vec<String>,
}

pub fn run(global: &GlobalArgs, a: &InspectArgs) -> anyhow::Result<u8> {
    let store = StateStore::open(&global.root)?;
    let root = &a.storage.storage_root;
    let mut out = Vec::new();
    for name in &a.names {
        if !provision::is_provisioned(root, name) {
            anyhow::bail!("no container named {} made by `run --image`", quote(name));
        }
        out.push(inspect(&store, root, name)?);
    }
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", serde_json::to_string_pretty(&out)?)?;
    Ok(0)
}

fn inspect(store: &StateStore, root: &Path, name: &str) -> anyhow::Result<Inspected> {
    let bundle = bundle_dir(root, name);
    let spec = read_json(&bundle.join("config.json")).unwrap_or_default();
    let dir = service_dir(root, name);
    let cfg: Option<ServiceConfig> = dir.exists().then(|| dir.read_config().ok()).flatten();
    let svc: Option<ServiceState> = dir
        .exists()
        .then(|| dir.read_state().ok().flatten())
        .flatten();
    let image = match &cfg {
        Some(c) => Some(c.image.clone()),
        None => read_json(&root.join(PROVISIONS_DIR).join(format!("{name}.json")))
            .and_then(|r| r["image"].as_str().map(String::from)),
    };
    let monitor_alive = dir.exists() && dir.monitor_alive()?;
    let runtime = ContainerId::parse(name)
        .ok()
        .and_then(|id| store.read(&id).ok())
        .map(|st| container_state(&st));
    let runtime_running = runtime
        .as_ref()
        .is_some_and(|rt| rt.status == Status::Running);
    let state = match (&svc, &runtime) {
        (Some(s), _) => StateSummary {
            status: match s.status {
                // What the monitor recorded last, but it is gone (killed): nothing
                // watches the container or will restart it.
                ServiceStatus::Starting | ServiceStatus::Running | ServiceStatus::Restarting
                    if !monitor_alive =>
                {
                    "monitor-lost".to_string()
                }
                other => serde_json::to_value(other)?
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            },
            running: runtime_running,
            pid: s.pid.filter(|_| monitor_alive),
            monitor_pid: Some(s.monitor_pid).filter(|_| monitor_alive),
            exit_code: s.exit_code,
            started_at: s.started_at.map(|t| t.to_rfc3339()),
            finished_at: s.finished_at.map(|t| t.to_rfc3339()),
            stopped_by_user: s.stopped,
            error: s.error.clone(),
        },
        (None, Some(rt)) => StateSummary {
            status: rt.status.to_string(),
            running: runtime_running,
            pid: rt.pid,
            monitor_pid: None,
            exit_code: None,
            started_at: None,
            finished_at: None,
            stopped_by_user: false,
            error: None,
        },
        (None, None) => StateSummary {
            status: "no-state".into(),
            running: false,
            pid: None,
            monitor_pid: None,
            exit_code: None,
            started_at: None,
            finished_at: None,
            stopped_by_user: false,
            error: None,
        },
    };
    let process = &spec["process"];
    let notes = &spec["annotations"];
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let text = |v: &Value| v.as_str().map(String::from);
    let config = ConfigSummary {
        args: strings(&process["args"]),
        env: strings(&process["env"]),
        working_dir: text(&process["cwd"]),
        uid: process["user"]["uid"].as_u64(),
        gid: process["user"]["gid"].as_u64(),
        hostname: text(&spec["hostname"]),
        terminal: process["terminal"].as_bool().unwrap_or(false),
        read_only: spec["root"]["readonly"].as_bool().unwrap_or(false),
        stop_signal: text(&notes[stockade_image::bundle::STOP_SIGNAL_ANNOTATION]),
        stop_timeout: text(&notes[stockade_image::bundle::run::STOP_TIMEOUT_ANNOTATION]),
    };
    let mounts = spec["mounts"]
        .as_array()
        .map(|ms| ms.iter().filter_map(mount).collect())
        .unwrap_or_default();
    let attachment = read_json(
        &root
            .join(NETWORKS_DIR)
            .join(ATTACHMENTS_DIR)
            .join(format!("{name}.json")),
    );
    let addresses = attachment
        .as_ref()
        .map(|r| stockade_net::cni::result_addresses(&r["result"]))
        .unwrap_or_default();
    let network = NetworkSummary {
        mode: match &cfg {
            Some(c) => Some(c.network.clone()),
            None => attachment
                .as_ref()
                .map(|r| r["network"].as_str().unwrap_or("none").to_string()),
        },
        addresses,
        ports: cfg.as_ref().map(|c| c.ports.clone()).unwrap_or_default(),
    };
    Ok(Inspected {
        id: name.to_string(),
        name: name.to_string(),
        image,
        bundle: bundle.display().to_string(),
        service: cfg.is_some(),
        config,
        state,
        mounts,
        network,
        restart_policy: cfg.as_ref().map(|c| c.restart.to_string()),
        restart_count: svc.as_ref().map_or(0, |s| s.restart_count),
        log_driver: cfg.as_ref().map(|c| c.log.driver.to_string()),
        log_path: cfg
            .as_ref()
            .map(|_| dir.path().join(LOG_FILE).display().to_string()),
    })
}

/// A bind mount of the config (volumes, `-v`, `--mount`, the files the runtime writes);
/// the kernel file systems every container has are left out.
fn mount(m: &Value) -> Option<MountSummary> {
    let options: Vec<String> = m["options"]
        .as_array()
        .map(|o| {
            o.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let kind = m["type"].as_str().map(String::from);
    let bind = matches!(kind.as_deref(), Some("bind" | "nullfs"))
        || options.iter().any(|o| o == "bind" || o == "rbind");
    let destination = m["destination"].as_str()?.to_string();
    let tmpfs_of_ours = kind.as_deref() == Some("tmpfs") && !destination.starts_with("/dev");
    (bind || tmpfs_of_ours).then(|| MountSummary {
        kind,
        source: m["source"].as_str().map(String::from),
        destination,
        options,
    })
}

fn read_json(path: &Path) -> Option<Value> {
    use std::io::Read;
    let f = std::fs::File::open(path).ok()?;
    let mut bytes = Vec::new();
    f.take(MAX_JSON).read_to_end(&mut bytes).ok()?;
    serde_json::from_slice(&bytes).ok()
}
