//! Processes on Linux, for `platform::procs`: found through `/proc`, handles are pidfds.

use std::os::fd::OwnedFd;

use super::{call, cgroups, pids, procfs, sys};
use crate::platform::{PlatformError, Resources};

/// `pidfd_open(2)` opens a descriptor for any live process.
pub const PROCESS_HANDLES: bool = true;

/// The host pids of every process in the container whose init is `init_pid`: those in its
/// PID namespace, or in its cgroups when it shares a PID namespace.
pub fn container_pids(made: &Resources, init_pid: Option<i32>) -> Result<Vec<i32>, PlatformError> {
    let Some(init) = init_pid else {
        return Ok(Vec::new());
    };
    if !pids::is_namespace_init(init) {
        cgroups::ensure_reachable(&made.backend.cgroups)?;
    }
    Ok(pids::of_container(&made.backend.cgroups, init))
}

/// A pidfd for `pid`, for `--pidfd-socket`.
pub fn process_handle(pid: i32) -> Result<OwnedFd, PlatformError> {
    sys::pidfd_open(pid).map_err(|e| call(format!("pidfd_open({pid})"), e))
}

/// The start time of `pid` in clock ticks since boot, or `None` when there is no such
/// live process (a zombie counts as gone).
pub fn process_start_time(pid: i32) -> Option<u64> {
    procfs::start_time(pid)
}

/// Marks every descriptor from `first` up close-on-exec.
pub fn cloexec_from(first: i32) -> Result<(), PlatformError> {
    sys::cloexec_from(first).map_err(|e| call("close_range(CLOSE_RANGE_CLOEXEC)", e))
}
