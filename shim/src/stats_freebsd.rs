//! FreeBSD task metrics: the jail's rctl usage (`rctl_get_racct` of `jail:NAME`) in
//! containerd's cgroups v1 `Metrics` (`io.containerd.cgroups.v1.Metrics`), the type runj
//! and ocijail's users get and the one `ctr task metrics` and the CRI plugin decode (they
//! accept cgroups v1 or v2 metrics and refuse any other type). v1 is chosen over v2 since
//! its CPU total is in nanoseconds and its memory has separate usage, limit and swap
//! entries, which rctl's figures fill without inventing anything. docs/freebsd-backend.md,
//! "Task metrics", has the field table.
//!
//! The mapping is pure and compiled on every host, so it is unit-tested in Linux CI.

// Only FreeBSD's `stats::collect` calls the mapping outside tests.
#![cfg_attr(not(target_os = "freebsd"), allow(dead_code))]

use containerd_shim_protos::cgroups::metrics::Metrics;
use stockade_runtime::platform::freebsd::racct::JailUsage;

/// The cgroups v1 metrics for a jail's usage. rctl has no user/system split of CPU time,
/// no per-CPU figures and no cumulative I/O counters (`readbps` and friends are rates), so
/// those fields stay empty rather than hold invented numbers.
pub fn metrics(u: &JailUsage) -> Metrics {
    let mut m = Metrics::new();
    let pids = m.pids.mut_or_insert_default();
    pids.current = u.usage.maxproc;
    pids.limit = u.maxproc_limit.unwrap_or(0);

    let cpu = m.cpu.mut_or_insert_default();
    // cputime is whole seconds of CPU (kern_racct.c charges it from the threads' runtime).
    cpu.usage.mut_or_insert_default().total = u.usage.cputime.saturating_mul(1_000_000_000);

    let mem = m.memory.mut_or_insert_default();
    // memoryuse is the jail's resident set: what cgroups call rss, and the usage the
    // memory limit (memoryuse:deny) is enforced against.
    mem.rss = u.usage.memoryuse;
    mem.total_rss = u.usage.memoryuse;
    mem.unevictable = u.usage.memorylocked;
    let usage = mem.usage.mut_or_insert_default();
    usage.usage = u.usage.memoryuse;
    usage.limit = u.memory_limit.unwrap_or(0);
    // swapuse counts every reservation of anonymous memory, like cgroups v1's
    // memory+swap (memsw) counter, which is what the swap entry reports.
    let swap = mem.swap.mut_or_insert_default();
    swap.usage = u.usage.swapuse;
    swap.limit = u.swap_limit.unwrap_or(0);
    // Kernel memory the jail's processes hold for SysV shared memory segments.
    mem.kernel.mut_or_insert_default().usage = u.usage.shmsize;
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use stockade_runtime::platform::freebsd::racct::{parse_racct, RacctUsage};

    fn usage(text: &str, limits: [Option<u64>; 4]) -> JailUsage {
        let (usage, unknown) = RacctUsage::from_pairs(&parse_racct(text).unwrap());
        JailUsage {
            usage,
            memory_limit: limits[0],
            swap_limit: limits[1],
            maxproc_limit: limits[2],
            pcpu_limit: limits[3],
            unknown,
        }
    }

    #[test]
    fn rctl_usage_fills_the_v1_fields_ctr_prints() {
        let u = usage(
            "cputime=3,memoryuse=4096000,memorylocked=8192,maxproc=2,swapuse=5000000,shmsize=64,readbps=9",
            [Some(67_108_864), Some(134_217_728), Some(32), None],
        );
        let m = metrics(&u);
        assert_eq!(m.pids.current, 2);
        assert_eq!(m.pids.limit, 32);
        assert_eq!(m.cpu.usage.total, 3_000_000_000);
        assert_eq!(m.cpu.usage.user, 0);
        assert!(m.cpu.usage.per_cpu.is_empty());
        assert_eq!(m.memory.usage.usage, 4_096_000);
        assert_eq!(m.memory.usage.limit, 67_108_864);
        assert_eq!(m.memory.rss, 4_096_000);
        assert_eq!(m.memory.unevictable, 8192);
        assert_eq!(m.memory.swap.usage, 5_000_000);
        assert_eq!(m.memory.swap.limit, 134_217_728);
        assert_eq!(m.memory.kernel.usage, 64);
        // Rates are not cumulative counters: no blkio entry.
        assert!(m.blkio.is_none());
    }

    #[test]
    fn no_limits_read_as_zero_and_the_any_is_the_v1_type() {
        let m = metrics(&usage("maxproc=1", [None; 4]));
        assert_eq!(m.pids.limit, 0);
        assert_eq!(m.memory.usage.limit, 0);
        let any = crate::events::pack(&m).unwrap();
        assert_eq!(any.type_url, "io.containerd.cgroups.v1.Metrics");
    }

    #[test]
    fn cputime_does_not_overflow() {
        let m = metrics(&usage(&format!("cputime={}", u64::MAX), [None; 4]));
        assert_eq!(m.cpu.usage.total, u64::MAX);
    }
}
