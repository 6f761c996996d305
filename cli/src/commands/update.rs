//! `stockade update`: runc's update, for the resource limits stockade enforces. containerd
//! sends `--resources -` with the new `linux.resources` as JSON on stdin; the flags are
//! the same fields one at a time, and override the file.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use oci_spec::runtime::LinuxResources;
use serde_json::{json, Value};
use stockade_runtime::container;
use stockade_runtime::id::ContainerId;
use stockade_runtime::state::StateStore;

use super::limit_args::parse_bytes;
use crate::args::GlobalArgs;

/// Arguments of `stockade update`.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// A JSON file with a runtime-spec `linux.resources` object, or `-` for stdin.
    #[arg(short, long)]
    pub resources: Option<PathBuf>,
    /// Memory limit in bytes (suffixes k, m, g; -1 for unlimited).
    #[arg(short, long, allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Memory plus swap in bytes (suffixes k, m, g; -1 for unlimited swap).
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Memory reservation (soft limit) in bytes; not enforced, named in a warning.
    #[arg(long = "memory-reservation", allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// Maximum number of processes (-1 for unlimited).
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// CPU time per period in microseconds (-1 for unlimited).
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPU period in microseconds.
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    /// CPU shares; not enforced, named in a warning.
    #[arg(long = "cpu-share")]
    pub cpu_share: Option<u64>,
    /// CPUs to run on; not enforced, named in a warning.
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes to use; not enforced, named in a warning.
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Block I/O weight; not enforced, named in a warning.
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    /// Container id.
    pub id: String,
}

/// The `linux.resources` object the file and flags describe together.
fn resources(a: &UpdateArgs) -> anyhow::Result<LinuxResources> {
    let mut v: Value = match &a.resources {
        None => json!({}),
        Some(p) => {
            let text = if p.as_os_str() == "-" {
                let mut s = String::new();
                std::io::stdin()
                    .read_to_string(&mut s)
                    .context("reading --resources from stdin")?;
                s
            } else {
                std::fs::read_to_string(p)
                    .with_context(|| format!("reading --resources {}", p.display()))?
            };
            serde_json::from_str(&text).with_context(|| {
                format!(
                    "--resources {}: not a JSON linux.resources object",
                    p.display()
                )
            })?
        }
    };
    if !v.is_object() {
        bail!("--resources: expected a JSON object (runtime-spec linux.resources)");
    }
    let mut set = |pointer: &str, value: Value| {
        let (parent, key) = pointer.rsplit_once('/').unwrap_or(("", pointer));
        let mut node = &mut v;
        for part in parent.split('/').filter(|p| !p.is_empty()) {
            if !node[part].is_object() {
                node[part] = json!({});
            }
            node = &mut node[part];
        }
        node[key] = value;
    };
    if let Some(m) = &a.memory {
        set("memory/limit", json!(parse_bytes("memory", m)?));
    }
    if let Some(m) = &a.memory_swap {
        set("memory/swap", json!(parse_bytes("memory-swap", m)?));
    }
    if let Some(m) = &a.memory_reservation {
        set(
            "memory/reservation",
            json!(parse_bytes("memory-reservation", m)?),
        );
    }
    if let Some(p) = a.pids_limit {
        set("pids/limit", json!(p));
    }
    if let Some(q) = a.cpu_quota {
        set("cpu/quota", json!(q));
    }
    if let Some(p) = a.cpu_period {
        set("cpu/period", json!(p));
    }
    if let Some(s) = a.cpu_share {
        set("cpu/shares", json!(s));
    }
    if let Some(c) = &a.cpuset_cpus {
        set("cpu/cpus", json!(c));
    }
    if let Some(m) = &a.cpuset_mems {
        set("cpu/mems", json!(m));
    }
    if let Some(w) = a.blkio_weight {
        set("blockIO/weight", json!(w));
    }
    serde_json::from_value(v).context("--resources: not a valid linux.resources object")
}

/// Runs `stockade update`.
pub fn run(global: &GlobalArgs, a: &UpdateArgs) -> anyhow::Result<u8> {
    let id = ContainerId::parse(&a.id)?;
    let r = resources(a)?;
    let store = StateStore::open(&global.root)?;
    if let Some(w) = container::update(&store, &id, &r)? {
        tracing::warn!("{w}");
    }
    Ok(0)
}
