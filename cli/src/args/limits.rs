//! Resource-limit flags for commands that write a bundle from an image (`run --image`,
//! `bundle create`): they become the bundle's `linux.resources`, which create enforces
//! (rctl rules on FreeBSD, cgroups on Linux). Also the byte-size syntax `update` shares.

use anyhow::{bail, Context};
use clap::Args;
use serde_json::{json, Value};

/// `--memory`, `--memory-swap`, `--pids-limit`, `--cpus`.
#[derive(Debug, Clone, Default, Args)]
pub struct LimitArgs {
    /// Memory limit in bytes (suffixes k, m, g).
    #[arg(long)]
    pub memory: Option<String>,
    /// Memory plus swap in bytes (suffixes k, m, g; -1 for unlimited swap).
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Maximum number of processes.
    #[arg(long = "pids-limit")]
    pub pids_limit: Option<i64>,
    /// CPUs' worth of CPU time (e.g. 0.5 or 2): a quota per 100 ms period.
    #[arg(long)]
    pub cpus: Option<f64>,
}

impl LimitArgs {
    /// Whether any limit was given.
    pub fn any(&self) -> bool {
        self.memory.is_some()
            || self.memory_swap.is_some()
            || self.pids_limit.is_some()
            || self.cpus.is_some()
    }

    /// The `linux.resources` object these flags describe (`None` without flags).
    pub fn resources(&self) -> anyhow::Result<Option<Value>> {
        if !self.any() {
            return Ok(None);
        }
        let mut r = json!({});
        if let Some(m) = &self.memory {
            r["memory"]["limit"] = json!(parse_bytes("memory", m)?);
        }
        if let Some(m) = &self.memory_swap {
            r["memory"]["swap"] = json!(parse_bytes("memory-swap", m)?);
        }
        if let Some(p) = self.pids_limit {
            if p < 1 {
                bail!("--pids-limit {p}: expected a number of processes, at least 1");
            }
            r["pids"]["limit"] = json!(p);
        }
        if let Some(c) = self.cpus {
            const PERIOD: f64 = 100_000.0;
            if !(c.is_finite() && c >= 0.01) {
                bail!("--cpus {c}: expected a number of CPUs, at least 0.01");
            }
            r["cpu"]["quota"] = json!((c * PERIOD).round() as i64);
            r["cpu"]["period"] = json!(PERIOD as u64);
        }
        // The same checks create makes, before anything is written.
        let parsed: oci_spec::runtime::LinuxResources = serde_json::from_value(r.clone())
            .context("the limit flags do not make a valid linux.resources object")?;
        stockade_runtime::limits::from_resources(
            Some(&parsed),
            stockade_runtime::platform::HOST_TARGET,
        )?;
        Ok(Some(r))
    }
}

/// Bytes from `N`, `Nk`, `Nm`, `Ng` (binary multiples, as runc takes them) or `-1`.
pub fn parse_bytes(flag: &str, value: &str) -> anyhow::Result<i64> {
    let expected =
        || format!("--{flag} {value:?}: expected bytes with an optional k, m or g suffix, or -1");
    let v = value.trim().to_ascii_lowercase();
    if v == "-1" {
        return Ok(-1);
    }
    let digits = v.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let shift = match &v[digits.len()..] {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => bail!(expected()),
    };
    let n: i64 = digits.parse().with_context(expected)?;
    n.checked_mul(1 << shift)
        .filter(|b| *b >= 0)
        .with_context(|| format!("--{flag} {value:?} is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_values_take_runc_suffixes() {
        assert_eq!(parse_bytes("memory", "1048576").unwrap(), 1 << 20);
        assert_eq!(parse_bytes("memory", "64m").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("memory", "2G").unwrap(), 2 << 30);
        assert_eq!(parse_bytes("memory", "512k").unwrap(), 512 << 10);
        assert_eq!(parse_bytes("memory", "-1").unwrap(), -1);
        for bad in ["", "ten", "5x", "-5", "99999999999999g"] {
            let e = parse_bytes("memory", bad).unwrap_err().to_string();
            assert!(e.contains("--memory"), "{bad}: {e}");
        }
    }

    #[test]
    fn flags_become_linux_resources() {
        let a = LimitArgs {
            memory: Some("64m".into()),
            memory_swap: Some("128m".into()),
            pids_limit: Some(50),
            cpus: Some(0.5),
        };
        assert_eq!(
            a.resources().unwrap().unwrap(),
            json!({"memory": {"limit": 64 << 20, "swap": 128 << 20}, "pids": {"limit": 50},
                   "cpu": {"quota": 50000, "period": 100000}})
        );
        assert!(LimitArgs::default().resources().unwrap().is_none());
        let bad = LimitArgs {
            cpus: Some(0.0),
            ..LimitArgs::default()
        };
        assert!(bad.resources().unwrap_err().to_string().contains("--cpus"));
        let swap_below = LimitArgs {
            memory: Some("64m".into()),
            memory_swap: Some("32m".into()),
            ..LimitArgs::default()
        };
        let e = swap_below.resources().unwrap_err().to_string();
        assert!(e.contains("linux.resources.memory.swap"), "{e}");
    }
}
