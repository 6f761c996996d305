//! Task metrics in the types containerd expects: on Linux the container's cgroup figures as
//! `io.containerd.cgroups.v1.Metrics` (v1 hierarchies) or `io.containerd.cgroups.v2.Metrics`
//! (the unified hierarchy), read from the cgroups create made for it. On FreeBSD the jail's
//! rctl usage, as cgroups v1 metrics (`stats_freebsd`).

// The cgroup readers are Linux's.
#![cfg_attr(not(target_os = "linux"), allow(dead_code))]

use containerd_shim_protos::protobuf::well_known_types::any::Any;
use stockade_runtime::state::StoredState;

#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    #[error("the container has no running init to measure")]
    NoInit,
    #[error("the container has no cgroup of its own (it was created without resource limits), so there is nothing of its own to measure")]
    NoCgroup,
    #[error("packing metrics: {0}")]
    Pack(#[from] protobuf::Error),
    #[cfg(target_os = "freebsd")]
    #[error(transparent)]
    Platform(#[from] stockade_runtime::platform::PlatformError),
}

/// The first number in a cgroup file's text ("max" reads as 0: no limit).
pub fn first_number(text: &str) -> u64 {
    text.split_whitespace()
        .next()
        .and_then(|w| w.parse().ok())
        .unwrap_or(0)
}

/// A `key value` line's value in a stat file (memory.stat, cpu.stat).
pub fn stat_value(text: &str, key: &str) -> u64 {
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0)
}

/// The jail's rctl usage as cgroups v1 metrics (`stats_freebsd::metrics`).
#[cfg(target_os = "freebsd")]
pub fn collect(st: &StoredState) -> Result<Any, StatsError> {
    st.pid.ok_or(StatsError::NoInit)?;
    let u = stockade_runtime::platform::freebsd::usage(&st.resources)?;
    if !u.unknown.is_empty() {
        tracing::debug!(
            resources = ?u.unknown,
            "rctl_get_racct reported resources this build does not map; ignored"
        );
    }
    Ok(crate::events::pack(&crate::stats_freebsd::metrics(&u))?)
}

#[cfg(target_os = "linux")]
pub fn collect(st: &StoredState) -> Result<Any, StatsError> {
    st.pid.ok_or(StatsError::NoInit)?;
    let dirs: Vec<String> = st
        .resources
        .backend
        .cgroups
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if dirs.is_empty() {
        return Err(StatsError::NoCgroup);
    }
    let read = |p: String| std::fs::read_to_string(p).unwrap_or_default();
    if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        return v2(&innermost(&dirs, None).ok_or(StatsError::NoCgroup)?, read);
    }
    v1(
        innermost(&dirs, Some("memory")),
        innermost(&dirs, Some("cpuacct"))
            .map(CpuSource::Cpuacct)
            .or_else(|| unified_cpu(&dirs).map(CpuSource::Unified)),
        innermost(&dirs, Some("pids")),
        read,
    )
}

/// The container's own (innermost) cgroup directory, for a v1 controller when given: in
/// the hierarchy mounted at /sys/fs/cgroup/<controllers> that carries it.
pub fn innermost(dirs: &[String], controller: Option<&str>) -> Option<String> {
    dirs.iter()
        .filter(|d| match controller {
            None => true,
            Some(c) => d
                .strip_prefix("/sys/fs/cgroup/")
                .and_then(|rest| rest.split('/').next())
                .is_some_and(|h| h.split(',').any(|x| x == c)),
        })
        .max_by_key(|d| d.matches('/').count())
        .cloned()
}

/// Where a v1 host without a `cpuacct` cgroup of the container's own (a CPU limit alone
/// makes one in `cpu`, which is a separate hierarchy on some hosts) still has its CPU time:
/// the `cpu.stat` every v2 cgroup keeps, in the hybrid host's unified hierarchy.
fn unified_cpu(dirs: &[String]) -> Option<String> {
    dirs.iter()
        .filter(|d| std::path::Path::new(&format!("{d}/cpu.stat")).exists())
        .filter(|d| !std::path::Path::new(&format!("{d}/cpuacct.usage")).exists())
        .max_by_key(|d| d.matches('/').count())
        .cloned()
}

/// Where the CPU time of a v1 container is read.
pub enum CpuSource {
    /// Its v1 `cpuacct` cgroup (`cpuacct.usage`, `cpuacct.stat`).
    Cpuacct(String),
    /// Its v2 cgroup on a hybrid host (`cpu.stat`, microseconds).
    Unified(String),
}

fn v1(
    memory: Option<String>,
    cpu: Option<CpuSource>,
    pids: Option<String>,
    read: impl Fn(String) -> String,
) -> Result<Any, StatsError> {
    use containerd_shim_protos::cgroups::metrics::*;
    let mut m = Metrics::new();
    if let Some(d) = pids {
        let p = m.pids.mut_or_insert_default();
        p.current = first_number(&read(format!("{d}/pids.current")));
        p.limit = first_number(&read(format!("{d}/pids.max")));
    }
    if let Some(CpuSource::Unified(d)) = &cpu {
        let stat = read(format!("{d}/cpu.stat"));
        let u = m.cpu.mut_or_insert_default().usage.mut_or_insert_default();
        u.total = stat_value(&stat, "usage_usec") * 1000;
        u.user = stat_value(&stat, "user_usec") * 1000;
        u.kernel = stat_value(&stat, "system_usec") * 1000;
    } else if let Some(CpuSource::Cpuacct(d)) = cpu {
        let u = m.cpu.mut_or_insert_default().usage.mut_or_insert_default();
        u.total = first_number(&read(format!("{d}/cpuacct.usage")));
        let stat = read(format!("{d}/cpuacct.stat"));
        // USER_HZ ticks to nanoseconds.
        u.user = stat_value(&stat, "user") * 10_000_000;
        u.kernel = stat_value(&stat, "system") * 10_000_000;
    }
    if let Some(d) = memory {
        let mem = m.memory.mut_or_insert_default();
        let stat = read(format!("{d}/memory.stat"));
        mem.cache = stat_value(&stat, "cache");
        mem.rss = stat_value(&stat, "rss");
        mem.mapped_file = stat_value(&stat, "mapped_file");
        mem.inactive_file = stat_value(&stat, "inactive_file");
        mem.active_file = stat_value(&stat, "active_file");
        mem.total_cache = stat_value(&stat, "total_cache");
        mem.total_rss = stat_value(&stat, "total_rss");
        mem.total_inactive_file = stat_value(&stat, "total_inactive_file");
        let u = mem.usage.mut_or_insert_default();
        u.usage = first_number(&read(format!("{d}/memory.usage_in_bytes")));
        u.max = first_number(&read(format!("{d}/memory.max_usage_in_bytes")));
        u.limit = first_number(&read(format!("{d}/memory.limit_in_bytes")));
        u.failcnt = first_number(&read(format!("{d}/memory.failcnt")));
    }
    Ok(crate::events::pack(&m)?)
}

fn v2(dir: &str, read: impl Fn(String) -> String) -> Result<Any, StatsError> {
    use containerd_shim_protos::cgroups_v2::metrics::*;
    let mut m = Metrics::new();
    let p = m.pids.mut_or_insert_default();
    p.current = first_number(&read(format!("{dir}/pids.current")));
    p.limit = first_number(&read(format!("{dir}/pids.max")));
    let cpu = read(format!("{dir}/cpu.stat"));
    let c = m.cpu.mut_or_insert_default();
    c.usage_usec = stat_value(&cpu, "usage_usec");
    c.user_usec = stat_value(&cpu, "user_usec");
    c.system_usec = stat_value(&cpu, "system_usec");
    c.nr_periods = stat_value(&cpu, "nr_periods");
    c.nr_throttled = stat_value(&cpu, "nr_throttled");
    c.throttled_usec = stat_value(&cpu, "throttled_usec");
    let stat = read(format!("{dir}/memory.stat"));
    let mem = m.memory.mut_or_insert_default();
    mem.anon = stat_value(&stat, "anon");
    mem.file = stat_value(&stat, "file");
    mem.usage = first_number(&read(format!("{dir}/memory.current")));
    mem.usage_limit = first_number(&read(format!("{dir}/memory.max")));
    mem.swap_usage = first_number(&read(format!("{dir}/memory.swap.current")));
    mem.max_usage = first_number(&read(format!("{dir}/memory.peak")));
    Ok(crate::events::pack(&m)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use containerd_shim_protos::protobuf::Message;

    #[test]
    fn innermost_per_controller() {
        let d: Vec<String> = [
            "/sys/fs/cgroup/memory/ns",
            "/sys/fs/cgroup/memory/ns/c",
            "/sys/fs/cgroup/cpu,cpuacct/ns/c",
            "/sys/fs/cgroup/pids/ns",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            innermost(&d, Some("memory")).unwrap(),
            "/sys/fs/cgroup/memory/ns/c"
        );
        assert_eq!(
            innermost(&d, Some("cpuacct")).unwrap(),
            "/sys/fs/cgroup/cpu,cpuacct/ns/c"
        );
        assert_eq!(
            innermost(&d, Some("pids")).unwrap(),
            "/sys/fs/cgroup/pids/ns"
        );
        assert_eq!(innermost(&d, Some("blkio")), None);
        assert_eq!(innermost(&d, None).unwrap().matches('/').count(), 6);
    }

    #[test]
    fn numbers() {
        assert_eq!(first_number("42\n"), 42);
        assert_eq!(first_number("max\n"), 0);
        assert_eq!(stat_value("cache 5\nrss 7\n", "rss"), 7);
        assert_eq!(stat_value("cache 5\n", "rss"), 0);
    }

    #[test]
    fn v1_metrics_from_files() {
        let files = |p: String| match p.rsplit('/').next().unwrap() {
            "pids.current" => "3\n".to_string(),
            "memory.usage_in_bytes" => "4096\n".to_string(),
            "memory.stat" => "cache 1\nrss 2\n".to_string(),
            "cpuacct.usage" => "123456\n".to_string(),
            _ => String::new(),
        };
        let any = v1(
            Some("/m".into()),
            Some(CpuSource::Cpuacct("/c".into())),
            Some("/p".into()),
            files,
        )
        .unwrap();
        assert_eq!(any.type_url, "io.containerd.cgroups.v1.Metrics");
        let m = containerd_shim_protos::cgroups::metrics::Metrics::parse_from_bytes(&any.value)
            .unwrap();
        assert_eq!(m.pids.current, 3);
        assert_eq!(m.memory.usage.usage, 4096);
        assert_eq!(m.memory.rss, 2);
        assert_eq!(m.cpu.usage.total, 123456);
    }

    #[test]
    fn v1_cpu_time_from_the_unified_cgroup() {
        let files = |p: String| match p.as_str() {
            "/u/cpu.stat" => "usage_usec 7
user_usec 5
system_usec 2
"
            .to_string(),
            _ => String::new(),
        };
        let any = v1(None, Some(CpuSource::Unified("/u".into())), None, files).unwrap();
        let m = containerd_shim_protos::cgroups::metrics::Metrics::parse_from_bytes(&any.value)
            .unwrap();
        assert_eq!(m.cpu.usage.total, 7000);
        assert_eq!(m.cpu.usage.user, 5000);
        assert_eq!(m.cpu.usage.kernel, 2000);
    }
}
