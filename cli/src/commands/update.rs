//! `stockade update`: runc's update, for the resource limits stockade enforces. containerd
//! sends `--resources -` with the new `linux.resources` as JSON on stdin; the flags are
//! the same fields one at a time, and override the file.

use std::io::Read;

use anyhow::{bail, Context};
use oci_spec::runtime::LinuxResources;
use serde_json::{json, Value};
use stockade_runtime::container;
use stockade_runtime::id::ContainerId;
use stockade_runtime::state::StateStore;

use crate::args::limits::parse_bytes;
use crate::args::update::UpdateArgs;
use crate::args::GlobalArgs;

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
