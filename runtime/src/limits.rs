//! Resource limits: the part of `linux.resources` stockade enforces, decided once here.
//! Memory, memory plus swap, process count and CPU bandwidth are enforced by both backends:
//! FreeBSD as rctl(8) rules on the jail (`memoryuse`, `swapuse`, `maxproc`, `pcpu`), Linux
//! as cgroup limits (v1 or v2). CPU shares, cpusets, real-time CPU, the memory
//! reservation, swappiness, the OOM killer switch, block I/O, huge pages, network class and
//! priorities and `unified` are Linux cgroup settings only; FreeBSD names them in a warning
//! ([`ResourceLimits::linux_only_fields`]). Everything else in `linux.resources` is named
//! in a warning.
//!
//! containerd, CRI-O and Podman send `linux.resources` on FreeBSD too (their spec
//! generators are shared with Linux), which is why it is the input here.

use oci_spec::runtime::LinuxResources;

use crate::target::Target;

mod extra;
pub use extra::{rdma_line, RdmaLimit, WeightDevice};

/// The CPU scheduler's period when `cpu.period` is not given (the kernel's and runc's).
pub const DEFAULT_CPU_PERIOD: u64 = 100_000;

/// A `linux.resources` value stockade cannot enforce.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LimitsError {
    #[error("linux.resources.{field}: {value} is not valid here; expected {expected}")]
    Invalid {
        field: &'static str,
        value: String,
        expected: &'static str,
    },
}

/// CPU bandwidth: `quota` microseconds of CPU time per `period` microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CpuQuota {
    pub quota: u64,
    pub period: u64,
}

impl CpuQuota {
    /// The quota as a percentage of one CPU, rounded up (rctl's `pcpu`): 50000/100000 is
    /// 50, two CPUs' worth is 200.
    pub fn percent(&self) -> u64 {
        (self.quota.saturating_mul(100)).div_ceil(self.period)
    }
}

/// The limits to enforce; `None` means unlimited (or the kernel's default).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ResourceLimits {
    /// `memory.limit`: bytes of memory.
    pub memory: Option<u64>,
    /// `memory.swap`: bytes of memory plus swap (runtime-spec's meaning), at least
    /// `memory`.
    pub memory_and_swap: Option<u64>,
    /// `pids.limit`: processes (threads count on Linux).
    pub pids: Option<u64>,
    /// `cpu.quota` and `cpu.period`.
    pub cpu: Option<CpuQuota>,
    /// `cpu.shares`: relative CPU weight, 2 to 262144 (cgroup v1 `cpu.shares`; v2
    /// `cpu.weight`, converted as runc does).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_shares: Option<u64>,
    /// `cpu.cpus`: the CPUs the container may run on, a cpuset list ("0-3,6").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpuset_cpus: Option<String>,
    /// `cpu.mems`: the memory nodes it may allocate from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpuset_mems: Option<String>,
    /// `memory.reservation`: bytes, the soft limit (v1 `memory.soft_limit_in_bytes`, v2
    /// `memory.low`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_reservation: Option<u64>,
    /// `memory.swappiness`, 0 to 100 (cgroup v1 only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swappiness: Option<u64>,
    /// `memory.disableOOMKiller` (cgroup v1 only).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub disable_oom_killer: bool,
    /// `blockIO.weight`, 10 to 1000 (v1 `blkio.weight`, v2 `io.weight`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blkio_weight: Option<u16>,
    /// `blockIO.throttle*Device`: per-device bandwidth and IOPS limits.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub blkio_throttle: Vec<Throttle>,
    /// `cpu.realtimeRuntime` and `cpu.realtimePeriod`, microseconds (cgroup v1 only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rt_runtime: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rt_period: Option<u64>,
    /// `hugepageLimits`: bytes per page size ("2MB").
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub hugetlb: std::collections::BTreeMap<String, u64>,
    /// `network.classID` (cgroup v1 `net_cls`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub net_classid: Option<u32>,
    /// `network.priorities`: (interface, priority) (cgroup v1 `net_prio`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub net_priorities: Vec<(String, u32)>,
    /// `unified`: cgroup v2 files and their values, written as given.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub unified: std::collections::BTreeMap<String, String>,
    /// `cpu.burst`: microseconds a period may borrow (v1 `cpu.cfs_burst_us`, v2
    /// `cpu.max.burst`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_burst: Option<u64>,
    /// `cpu.idle` 1: the cgroup's tasks get the idle scheduling policy (`cpu.idle`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_idle: Option<bool>,
    /// `blockIO.leafWeight`, 10 to 1000 (v1 CFQ `blkio.leaf_weight` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blkio_leaf_weight: Option<u16>,
    /// `blockIO.weightDevice`: per-device weights.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub blkio_weight_device: Vec<WeightDevice>,
    /// `rdma`: per-device HCA limits (`rdma.max`).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub rdma: std::collections::BTreeMap<String, RdmaLimit>,
}

/// The huge page sizes Linux has on its architectures, as `hugepageLimits.pageSize` and
/// the hugetlb controller's file names spell them.
pub const HUGE_PAGE_SIZES: [&str; 6] = ["64KB", "2MB", "32MB", "512MB", "1GB", "16GB"];

/// What a block I/O throttle limits.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "camelCase")]
pub enum ThrottleKind {
    ReadBps,
    WriteBps,
    ReadIops,
    WriteIops,
}

/// One `blockIO.throttle*Device` entry: `rate` per second on device `major:minor`
/// (0 lifts it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Throttle {
    pub kind: ThrottleKind,
    pub major: u32,
    pub minor: u32,
    pub rate: u64,
}

/// runc's conversion of cgroup v1 CPU shares (2..262144) to a v2 `cpu.weight`
/// (1..10000): linear, 1024 shares (the default) giving 39, not 100.
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + ((shares.clamp(2, 262_144) - 2) * 9999) / 262_142
}

/// A cpuset list as the kernel reads it: numbers and ranges separated by commas.
fn cpuset_list(field: &'static str, v: &str) -> Result<String, LimitsError> {
    let ok = v.split(',').all(|part| {
        let mut ends = part.splitn(2, '-');
        ends.all(|n| !n.is_empty() && n.len() <= 5 && n.bytes().all(|b| b.is_ascii_digit()))
    });
    if ok {
        Ok(v.to_string())
    } else {
        Err(LimitsError::Invalid {
            field,
            value: stockade_quote::quote(v).to_string(),
            expected: "a list of numbers and ranges such as 0-3,6",
        })
    }
}

impl ResourceLimits {
    /// Whether there is nothing to enforce.
    pub fn is_empty(&self) -> bool {
        *self == ResourceLimits::default()
    }

    /// The fields set here that only the Linux backend applies (for FreeBSD's warning).
    pub fn linux_only_fields(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        for (set, name) in [
            (self.cpu_shares.is_some(), "cpu.shares"),
            (self.cpuset_cpus.is_some(), "cpu.cpus"),
            (self.cpuset_mems.is_some(), "cpu.mems"),
            (self.memory_reservation.is_some(), "memory.reservation"),
            (self.swappiness.is_some(), "memory.swappiness"),
            (self.disable_oom_killer, "memory.disableOOMKiller"),
            (self.blkio_weight.is_some(), "blockIO.weight"),
            (!self.blkio_throttle.is_empty(), "blockIO.throttle*Device"),
            (
                self.rt_runtime.is_some() || self.rt_period.is_some(),
                "cpu.realtime*",
            ),
            (!self.hugetlb.is_empty(), "hugepageLimits"),
            (self.net_classid.is_some(), "network.classID"),
            (!self.net_priorities.is_empty(), "network.priorities"),
            (!self.unified.is_empty(), "unified"),
            (self.cpu_burst.is_some(), "cpu.burst"),
            (self.cpu_idle.is_some(), "cpu.idle"),
            (self.blkio_leaf_weight.is_some(), "blockIO.leafWeight"),
            (!self.blkio_weight_device.is_empty(), "blockIO.weightDevice"),
            (!self.rdma.is_empty(), "rdma"),
        ] {
            if set {
                out.push(name);
            }
        }
        out
    }

    /// Checks that the limits make sense together.
    pub fn validate(&self) -> Result<(), LimitsError> {
        if let Some(both) = self.memory_and_swap {
            match self.memory {
                None => {
                    return Err(LimitsError::Invalid {
                        field: "memory.swap",
                        value: both.to_string(),
                        expected: "to be set together with memory.limit",
                    })
                }
                Some(mem) if both < mem => {
                    return Err(LimitsError::Invalid {
                        field: "memory.swap",
                        value: both.to_string(),
                        expected: "memory plus swap in bytes, at least memory.limit (or -1 for unlimited swap)",
                    })
                }
                Some(_) => {}
            }
        }
        if let Some(s) = self.cpu_shares.filter(|s| !(2..=262_144).contains(s)) {
            return Err(LimitsError::Invalid {
                field: "cpu.shares",
                value: s.to_string(),
                expected: "a weight from 2 to 262144",
            });
        }
        if let Some(s) = self.swappiness.filter(|s| *s > 100) {
            return Err(LimitsError::Invalid {
                field: "memory.swappiness",
                value: s.to_string(),
                expected: "a value from 0 to 100",
            });
        }
        if let Some(CpuQuota { quota, period }) = self.cpu {
            if !(1_000..=1_000_000).contains(&period) {
                return Err(LimitsError::Invalid {
                    field: "cpu.period",
                    value: period.to_string(),
                    expected: "microseconds from 1000 to 1000000",
                });
            }
            if quota < 1_000 {
                return Err(LimitsError::Invalid {
                    field: "cpu.quota",
                    value: quota.to_string(),
                    expected: "at least 1000 microseconds per period (or -1 for unlimited)",
                });
            }
        }
        Ok(())
    }

    /// Swap beyond memory, in bytes: `memory.swap - memory.limit` (cgroup v2's
    /// `memory.swap.max`). rctl's `swapuse` takes `memory_and_swap` as it is: the kernel
    /// charges it for every reservation of anonymous memory, resident or swapped out.
    pub fn swap_only(&self) -> Option<u64> {
        Some(self.memory_and_swap?.saturating_sub(self.memory?))
    }
}

/// A limit in the spec's signed form: absent, 0 or negative mean none (-1 is "unlimited"
/// in the spec; 0 is what Go callers send for "unset").
fn positive(v: Option<i64>) -> Option<u64> {
    v.and_then(|v| u64::try_from(v).ok()).filter(|v| *v > 0)
}

/// The enforced limits of `resources`, and one warning naming every field that is set but
/// not enforced. Values that make no sense are errors.
pub fn from_resources(
    resources: Option<&LinuxResources>,
    target: Target,
) -> Result<(ResourceLimits, Option<String>), LimitsError> {
    match resources {
        Some(r) => update(&ResourceLimits::default(), r, target),
        None => Ok((ResourceLimits::default(), None)),
    }
}

/// `current` with what `r` sets replaced (`update`): a field `r` gives replaces the
/// current limit (`-1`/`0` lift it), a field it leaves out keeps it. The result is checked
/// as a whole; the warning names what `r` sets that `target` does not enforce.
pub fn update(
    current: &ResourceLimits,
    r: &LinuxResources,
    target: Target,
) -> Result<(ResourceLimits, Option<String>), LimitsError> {
    let mut limits = current.clone();
    let mut ignored: Vec<&str> = Vec::new();

    if let Some(m) = r.memory() {
        if m.limit().is_some() {
            limits.memory = positive(m.limit());
            // Memory+swap means nothing without a memory limit: lifting one lifts both.
            if limits.memory.is_none() && m.swap().is_none() {
                limits.memory_and_swap = None;
            }
        }
        if m.swap().is_some() {
            limits.memory_and_swap = positive(m.swap());
        }
        if m.reservation().is_some() {
            limits.memory_reservation = positive(m.reservation());
        }
        if let Some(s) = m.swappiness() {
            limits.swappiness = Some(s);
        }
        if let Some(d) = m.disable_oom_killer() {
            limits.disable_oom_killer = d;
        }
        // Kernel memory accounting is gone from the kernel (5.16); runc 1.1 ignores it too.
        for (set, name) in [
            (positive(m.kernel()).is_some(), "memory.kernel"),
            (positive(m.kernel_tcp()).is_some(), "memory.kernelTCP"),
        ] {
            if set {
                ignored.push(name);
            }
        }
    }
    if let Some(p) = r.pids() {
        limits.pids = positive(Some(p.limit()));
    }
    if let Some(c) = r.cpu() {
        let period = c
            .period()
            .or(limits.cpu.map(|q| q.period))
            .unwrap_or(DEFAULT_CPU_PERIOD);
        if c.quota().is_some() {
            limits.cpu = positive(c.quota()).map(|quota| CpuQuota { quota, period });
        } else if let Some(q) = &mut limits.cpu {
            q.period = period;
        }
        if let Some(s) = c.shares() {
            limits.cpu_shares = Some(s).filter(|s| *s > 0);
        }
        if let Some(cpus) = c.cpus() {
            limits.cpuset_cpus = match cpus.as_str() {
                "" => None,
                v => Some(cpuset_list("cpu.cpus", v)?),
            };
        }
        if let Some(mems) = c.mems() {
            limits.cpuset_mems = match mems.as_str() {
                "" => None,
                v => Some(cpuset_list("cpu.mems", v)?),
            };
        }
        if let Some(rt) = c.realtime_runtime() {
            limits.rt_runtime = Some(rt).filter(|r| *r != 0);
        }
        if let Some(p) = c.realtime_period() {
            limits.rt_period = Some(p).filter(|p| *p != 0);
        }
        extra::cpu(&mut limits, c)?;
    }
    limits.validate()?;
    if let Some(b) = r.block_io() {
        if let Some(w) = b.weight() {
            if w != 0 && !(10..=1000).contains(&w) {
                return Err(LimitsError::Invalid {
                    field: "blockIO.weight",
                    value: w.to_string(),
                    expected: "a weight from 10 to 1000",
                });
            }
            limits.blkio_weight = Some(w).filter(|w| *w != 0);
        }
        let lists = [
            (
                ThrottleKind::ReadBps,
                "throttleReadBpsDevice",
                b.throttle_read_bps_device(),
            ),
            (
                ThrottleKind::WriteBps,
                "throttleWriteBpsDevice",
                b.throttle_write_bps_device(),
            ),
            (
                ThrottleKind::ReadIops,
                "throttleReadIOPSDevice",
                b.throttle_read_iops_device(),
            ),
            (
                ThrottleKind::WriteIops,
                "throttleWriteIOPSDevice",
                b.throttle_write_iops_device(),
            ),
        ];
        for (kind, field, list) in lists {
            let Some(list) = list else { continue };
            // A list given replaces the one in force for its kind.
            limits.blkio_throttle.retain(|t| t.kind != kind);
            for d in list {
                let num = |v: i64| u32::try_from(v).ok().filter(|n| *n < (1 << 20));
                let (Some(major), Some(minor)) = (num(d.major()), num(d.minor())) else {
                    return Err(LimitsError::Invalid {
                        field,
                        value: format!("{}:{}", d.major(), d.minor()),
                        expected: "a device major:minor",
                    });
                };
                limits.blkio_throttle.push(Throttle {
                    kind,
                    major,
                    minor,
                    rate: d.rate(),
                });
            }
        }
        extra::block_io(&mut limits, b)?;
    }
    if let Some(h) = r.hugepage_limits() {
        limits.hugetlb.clear();
        for l in h {
            if crate::limits::HUGE_PAGE_SIZES
                .iter()
                .all(|s| *s != l.page_size().as_str())
            {
                return Err(LimitsError::Invalid {
                    field: "hugepageLimits.pageSize",
                    value: stockade_quote::quote(l.page_size()).to_string(),
                    expected:
                        "a huge page size the kernel has: 64KB, 2MB, 32MB, 512MB, 1GB or 16GB",
                });
            }
            if let Some(limit) = positive(Some(l.limit())) {
                limits.hugetlb.insert(l.page_size().clone(), limit);
            }
        }
    }
    if let Some(n) = r.network() {
        if let Some(id) = n.class_id() {
            limits.net_classid = Some(id).filter(|id| *id != 0);
        }
        if let Some(prios) = n.priorities() {
            limits.net_priorities.clear();
            for p in prios {
                let name = p.name();
                if name.is_empty()
                    || name.len() > 15
                    || name.contains(|c: char| c.is_whitespace() || c == '/')
                {
                    return Err(LimitsError::Invalid {
                        field: "network.priorities.name",
                        value: stockade_quote::quote(name).to_string(),
                        expected: "a network interface name",
                    });
                }
                limits.net_priorities.push((name.clone(), p.priority()));
            }
        }
    }
    extra::rdma(&mut limits, r)?;
    if let Some(u) = r.unified() {
        for (key, value) in u {
            // A file of the container's own cgroup: a bare name with a controller prefix.
            let plain = key.contains('.')
                && !key.starts_with('.')
                && !key.contains('/')
                && !key.starts_with("cgroup.");
            if !plain || value.contains('\n') {
                return Err(LimitsError::Invalid {
                    field: "unified",
                    value: stockade_quote::quote(key).to_string(),
                    expected: "a cgroup v2 controller file name such as memory.high, with a one-line value",
                });
            }
            limits.unified.insert(key.clone(), value.clone());
        }
    }
    // Cgroup settings with no rctl(8) counterpart: named, not silently dropped, on FreeBSD.
    if !target.has_cgroups() {
        ignored.extend(limits.linux_only_fields());
    }
    // Device rules are what every containerd and Podman config carries (deny all, then
    // the default devices). Linux enforces them (a cgroup device filter); on FreeBSD the
    // device nodes made (devfs rules) are the enforcement stockade has.
    if !target.has_cgroups() && r.devices().as_ref().is_some_and(|d| !d.is_empty()) {
        ignored.push("devices (the device nodes created are what the container gets)");
    }
    let warning = (!ignored.is_empty()).then(|| {
        format!(
            "linux.resources.{} not enforced (stockade enforces memory.limit/swap/reservation/swappiness/disableOOMKiller, pids.limit, cpu.quota/period/shares/cpus/mems/realtime*/burst/idle, blockIO.weight/leafWeight/weightDevice/throttle*Device, hugepageLimits, network, rdma, unified)",
            ignored.join(", linux.resources.")
        )
    });
    Ok((limits, warning))
}

#[cfg(test)]
mod tests;
