//! What each controller's files get for a set of limits: cgroup v1 and v2 names and
//! units, and the value that lifts a limit (`update` writes it when a limit goes away).

use super::Controller;
use crate::limits::{rdma_line, shares_to_weight, ResourceLimits, ThrottleKind};
use crate::platform::PlatformError;

/// `(file, value, optional)`: an optional file that does not exist is a warning.
pub type Write = (&'static str, String, bool);

/// Whether controller `c` is involved (limited by `now` or by `before`, which an update
/// lifts) and needed (limited by `now`, so a host without it is an error).
pub fn involvement(c: Controller, now: &ResourceLimits, before: &ResourceLimits) -> (bool, bool) {
    let uses = |l: &ResourceLimits| match c {
        Controller::Memory => {
            l.memory.is_some()
                || l.memory_reservation.is_some()
                || l.swappiness.is_some()
                || l.disable_oom_killer
        }
        Controller::Pids => l.pids.is_some(),
        Controller::Cpu => {
            l.cpu.is_some()
                || l.cpu_shares.is_some()
                || l.rt_runtime.is_some()
                || l.rt_period.is_some()
                || l.cpu_burst.is_some()
                || l.cpu_idle.is_some()
        }
        Controller::Cpuset => l.cpuset_cpus.is_some() || l.cpuset_mems.is_some(),
        Controller::Blkio => {
            l.blkio_weight.is_some()
                || !l.blkio_throttle.is_empty()
                || l.blkio_leaf_weight.is_some()
                || !l.blkio_weight_device.is_empty()
        }
        Controller::Hugetlb => !l.hugetlb.is_empty(),
        Controller::NetCls => l.net_classid.is_some(),
        Controller::NetPrio => !l.net_priorities.is_empty(),
        Controller::Rdma => !l.rdma.is_empty(),
        Controller::Devices => false,
    };
    (uses(now) || uses(before), uses(now))
}

/// Where `file` is in cgroup `dir`: on v1 with BFQ (Linux 5.0 dropped CFQ) the weights
/// are `blkio.bfq.weight` and `blkio.bfq.weight_device`, used when the CFQ names are
/// missing, as runc does.
pub fn file_here(dir: &std::path::Path, v2: bool, file: &str) -> std::path::PathBuf {
    let plain = dir.join(file);
    if v2 || plain.exists() {
        return plain;
    }
    match file {
        "blkio.weight" => dir.join("blkio.bfq.weight"),
        "blkio.weight_device" => dir.join("blkio.bfq.weight_device"),
        _ => plain,
    }
}

/// The `linux.resources` field a cgroup file of the newer fields carries, for messages.
pub fn field_of(file: &str) -> Option<&'static str> {
    Some(match file {
        "cpu.max.burst" | "cpu.cfs_burst_us" => "cpu.burst",
        "cpu.idle" => "cpu.idle",
        "blkio.leaf_weight" | "blkio.leaf_weight_device" => "blockIO.leafWeight",
        "blkio.weight_device" => "blockIO.weightDevice",
        "blkio.weight" | "io.weight" => "blockIO.weight/weightDevice",
        "rdma.max" => "rdma",
        _ => return None,
    })
}

fn num(v: Option<u64>, unlimited: &str) -> String {
    v.map_or(unlimited.to_string(), |v| v.to_string())
}

fn v2_lacks(field: &str, why: &str) -> PlatformError {
    PlatformError::Unsupported {
        what: format!("linux.resources.{field}"),
        os: "cgroup v2",
        hint: format!("{why}; remove it (runc's cgroup v2 driver has no equivalent either)"),
    }
}

/// The writes for controller `c` on a v1 or v2 (`v2`) hierarchy; fields `now` leaves unset
/// but `before` had are set back to the kernel's default.
pub fn limit_writes(
    c: Controller,
    v2: bool,
    now: &ResourceLimits,
    before: &ResourceLimits,
) -> Result<Vec<Write>, PlatformError> {
    let mut w: Vec<Write> = Vec::new();
    let was = |f: fn(&ResourceLimits) -> bool| f(now) || f(before);
    match c {
        Controller::Memory => {
            if was(|l| l.memory.is_some()) {
                w.push(if v2 {
                    ("memory.max", num(now.memory, "max"), false)
                } else {
                    ("memory.limit_in_bytes", num(now.memory, "-1"), false)
                });
            }
            if was(|l| l.memory_and_swap.is_some()) {
                w.push(if v2 {
                    ("memory.swap.max", num(now.swap_only(), "max"), true)
                } else {
                    (
                        "memory.memsw.limit_in_bytes",
                        num(now.memory_and_swap, "-1"),
                        true,
                    )
                });
            }
            if was(|l| l.memory_reservation.is_some()) {
                w.push(if v2 {
                    ("memory.low", num(now.memory_reservation, "0"), false)
                } else {
                    (
                        "memory.soft_limit_in_bytes",
                        num(now.memory_reservation, "-1"),
                        false,
                    )
                });
            }
            if let Some(s) = now.swappiness {
                if v2 {
                    return Err(v2_lacks(
                        "memory.swappiness",
                        "cgroup v2 has no per-cgroup swappiness",
                    ));
                }
                w.push(("memory.swappiness", s.to_string(), false));
            }
            if was(|l| l.disable_oom_killer) {
                if v2 && now.disable_oom_killer {
                    return Err(v2_lacks(
                        "memory.disableOOMKiller",
                        "cgroup v2 cannot turn the OOM killer off",
                    ));
                }
                if !v2 {
                    w.push((
                        "memory.oom_control",
                        u8::from(now.disable_oom_killer).to_string(),
                        false,
                    ));
                }
            }
        }
        Controller::Pids => w.push(("pids.max", num(now.pids, "max"), false)),
        Controller::Cpu => {
            if was(|l| l.cpu.is_some()) {
                match (now.cpu, v2) {
                    (Some(cpu), true) => {
                        w.push(("cpu.max", format!("{} {}", cpu.quota, cpu.period), false))
                    }
                    (None, true) => w.push(("cpu.max", "max".into(), false)),
                    (Some(cpu), false) => {
                        w.push(("cpu.cfs_period_us", cpu.period.to_string(), false));
                        w.push(("cpu.cfs_quota_us", cpu.quota.to_string(), false));
                    }
                    (None, false) => w.push(("cpu.cfs_quota_us", "-1".into(), false)),
                }
            }
            if was(|l| l.rt_runtime.is_some() || l.rt_period.is_some()) {
                if v2 && (now.rt_runtime.is_some() || now.rt_period.is_some()) {
                    return Err(v2_lacks(
                        "cpu.realtimeRuntime",
                        "cgroup v2 has no real-time bandwidth per cgroup",
                    ));
                }
                if !v2 {
                    // The period first: the runtime must fit in it.
                    if let Some(p) = now.rt_period {
                        w.push(("cpu.rt_period_us", p.to_string(), false));
                    }
                    w.push((
                        "cpu.rt_runtime_us",
                        now.rt_runtime.unwrap_or(0).to_string(),
                        false,
                    ));
                }
            }
            if was(|l| l.cpu_shares.is_some()) {
                w.push(if v2 {
                    let weight = now.cpu_shares.map_or(100, shares_to_weight);
                    ("cpu.weight", weight.to_string(), false)
                } else {
                    (
                        "cpu.shares",
                        now.cpu_shares.unwrap_or(1024).to_string(),
                        false,
                    )
                });
            }
            // Linux 5.14 (burst) and 5.15 (idle): an older kernel lacks the file, and the
            // write fails naming the field.
            if was(|l| l.cpu_burst.is_some()) {
                let file = if v2 {
                    "cpu.max.burst"
                } else {
                    "cpu.cfs_burst_us"
                };
                w.push((file, now.cpu_burst.unwrap_or(0).to_string(), false));
            }
            if was(|l| l.cpu_idle.is_some()) {
                w.push((
                    "cpu.idle",
                    u8::from(now.cpu_idle.unwrap_or(false)).to_string(),
                    false,
                ));
            }
        }
        Controller::Cpuset => {
            // Unset lists are copied from the parent when the cgroup is made (v1 starts
            // empty); lifting one writes the parent's back, done by the caller.
            if let Some(cpus) = &now.cpuset_cpus {
                w.push(("cpuset.cpus", cpus.clone(), false));
            }
            if let Some(mems) = &now.cpuset_mems {
                w.push(("cpuset.mems", mems.clone(), false));
            }
        }
        Controller::Blkio => blkio_writes(v2, now, before, &mut w)?,
        Controller::Hugetlb => {
            let sizes = now.hugetlb.keys().chain(before.hugetlb.keys());
            let mut seen: Vec<&String> = Vec::new();
            for size in sizes {
                if seen.contains(&size) {
                    continue;
                }
                seen.push(size);
                let file = hugetlb_file(size, v2).ok_or_else(|| PlatformError::Unsupported {
                    what: format!("linux.resources.hugepageLimits page size {size}"),
                    os: "Linux",
                    hint: "use a page size the kernel has".into(),
                })?;
                let limit = now.hugetlb.get(size).copied();
                w.push((file, num(limit, if v2 { "max" } else { "-1" }), false));
            }
        }
        Controller::NetCls => {
            w.push((
                "net_cls.classid",
                now.net_classid.unwrap_or(0).to_string(),
                false,
            ));
        }
        Controller::NetPrio => {
            for (name, prio) in &now.net_priorities {
                w.push(("net_prio.ifpriomap", format!("{name} {prio}"), false));
            }
            for (name, _) in &before.net_priorities {
                if !now.net_priorities.iter().any(|(n, _)| n == name) {
                    w.push(("net_prio.ifpriomap", format!("{name} 0"), false));
                }
            }
        }
        Controller::Rdma => {
            for device in now.rdma.keys().chain(before.rdma.keys()) {
                let line = rdma_line(device, now.rdma.get(device));
                if !w.iter().any(|(_, l, _)| *l == line) {
                    w.push(("rdma.max", line, false));
                }
            }
        }
        Controller::Devices => {}
    }
    Ok(w)
}

/// The hugetlb controller's limit file for a page size (v1 `limit_in_bytes`, v2 `max`).
fn hugetlb_file(size: &str, v2: bool) -> Option<&'static str> {
    Some(match (size, v2) {
        ("64KB", false) => "hugetlb.64KB.limit_in_bytes",
        ("64KB", true) => "hugetlb.64KB.max",
        ("2MB", false) => "hugetlb.2MB.limit_in_bytes",
        ("2MB", true) => "hugetlb.2MB.max",
        ("32MB", false) => "hugetlb.32MB.limit_in_bytes",
        ("32MB", true) => "hugetlb.32MB.max",
        ("512MB", false) => "hugetlb.512MB.limit_in_bytes",
        ("512MB", true) => "hugetlb.512MB.max",
        ("1GB", false) => "hugetlb.1GB.limit_in_bytes",
        ("1GB", true) => "hugetlb.1GB.max",
        ("16GB", false) => "hugetlb.16GB.limit_in_bytes",
        ("16GB", true) => "hugetlb.16GB.max",
        _ => return None,
    })
}

/// Block I/O weight (the kernel's default back when lifted) and throttles: v1 one line per
/// device and kind (rate 0 lifts), v2 one `io.max` line per device with every kind.
fn blkio_writes(
    v2: bool,
    now: &ResourceLimits,
    before: &ResourceLimits,
    w: &mut Vec<Write>,
) -> Result<(), PlatformError> {
    if now.blkio_weight.is_some() || before.blkio_weight.is_some() {
        w.push(match (v2, now.blkio_weight) {
            (false, v) => ("blkio.weight", v.unwrap_or(500).to_string(), false),
            (true, Some(v)) => ("io.weight", format!("default {v}"), false),
            (true, None) => ("io.weight", "default 100".into(), false),
        });
    }
    weight_writes(v2, now, before, w)?;
    let mut devices: Vec<(u32, u32)> = now
        .blkio_throttle
        .iter()
        .chain(&before.blkio_throttle)
        .map(|t| (t.major, t.minor))
        .collect();
    devices.sort_unstable();
    devices.dedup();
    let rate = |kind: ThrottleKind, dev: (u32, u32)| {
        now.blkio_throttle
            .iter()
            .find(|t| t.kind == kind && (t.major, t.minor) == dev && t.rate > 0)
            .map(|t| t.rate)
    };
    let kinds = [
        (
            ThrottleKind::ReadBps,
            "blkio.throttle.read_bps_device",
            "rbps",
        ),
        (
            ThrottleKind::WriteBps,
            "blkio.throttle.write_bps_device",
            "wbps",
        ),
        (
            ThrottleKind::ReadIops,
            "blkio.throttle.read_iops_device",
            "riops",
        ),
        (
            ThrottleKind::WriteIops,
            "blkio.throttle.write_iops_device",
            "wiops",
        ),
    ];
    for dev in devices {
        if v2 {
            let fields: Vec<String> = kinds
                .iter()
                .map(|(k, _, key)| {
                    format!(
                        "{key}={}",
                        rate(*k, dev).map_or("max".into(), |r| r.to_string())
                    )
                })
                .collect();
            w.push((
                "io.max",
                format!("{}:{} {}", dev.0, dev.1, fields.join(" ")),
                false,
            ));
            continue;
        }
        for (k, file, _) in kinds {
            let given = |l: &ResourceLimits| {
                l.blkio_throttle
                    .iter()
                    .any(|t| t.kind == k && (t.major, t.minor) == dev)
            };
            if given(now) || given(before) {
                let r = rate(k, dev).unwrap_or(0);
                w.push((file, format!("{}:{} {r}", dev.0, dev.1), false));
            }
        }
    }
    Ok(())
}

/// `blockIO.leafWeight` and `blockIO.weightDevice`: v1 `blkio.leaf_weight` and
/// `blkio.{leaf_,}weight_device` (CFQ; BFQ has `blkio.bfq.weight_device`, used when the
/// plain file is missing), v2 `io.weight` per-device lines. Leaf weights exist only in
/// v1 CFQ: refused on v2, as runc's v2 driver has nothing to write them to. A device
/// weight lifted by an update gets the default back (v1 the cgroup's own weight is "0",
/// v2 "default").
fn weight_writes(
    v2: bool,
    now: &ResourceLimits,
    before: &ResourceLimits,
    w: &mut Vec<Write>,
) -> Result<(), PlatformError> {
    let leaf_now = now.blkio_leaf_weight.is_some()
        || now
            .blkio_weight_device
            .iter()
            .any(|d| d.leaf_weight.is_some());
    if v2 && leaf_now {
        return Err(v2_lacks(
            "blockIO.leafWeight",
            "cgroup v2 has no leaf weights (they belonged to the CFQ scheduler)",
        ));
    }
    if !v2 && (now.blkio_leaf_weight.is_some() || before.blkio_leaf_weight.is_some()) {
        let v = now.blkio_leaf_weight.unwrap_or(500);
        w.push(("blkio.leaf_weight", v.to_string(), false));
    }
    let mut devices: Vec<(u32, u32)> = now
        .blkio_weight_device
        .iter()
        .chain(&before.blkio_weight_device)
        .map(|d| (d.major, d.minor))
        .collect();
    devices.sort_unstable();
    devices.dedup();
    for dev in devices {
        let entry = |l: &ResourceLimits| {
            l.blkio_weight_device
                .iter()
                .find(|d| (d.major, d.minor) == dev)
                .copied()
        };
        let (n, b) = (entry(now), entry(before));
        let weight = n.and_then(|d| d.weight);
        if weight.is_some() || b.is_some_and(|d| d.weight.is_some()) {
            w.push(match (v2, weight) {
                (true, Some(v)) => ("io.weight", format!("{}:{} {v}", dev.0, dev.1), false),
                (true, None) => ("io.weight", format!("{}:{} default", dev.0, dev.1), false),
                (false, v) => (
                    "blkio.weight_device",
                    format!("{}:{} {}", dev.0, dev.1, v.unwrap_or(0)),
                    false,
                ),
            });
        }
        let leaf = n.and_then(|d| d.leaf_weight);
        if !v2 && (leaf.is_some() || b.is_some_and(|d| d.leaf_weight.is_some())) {
            w.push((
                "blkio.leaf_weight_device",
                format!("{}:{} {}", dev.0, dev.1, leaf.unwrap_or(0)),
                false,
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
