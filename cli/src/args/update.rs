//! `stockade update`: runc's update flags, for the resource limits stockade enforces.

use std::path::PathBuf;

use clap::Args;

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
