//! Processes on FreeBSD, for `platform::procs`: found by their jail id.

use std::os::fd::OwnedFd;

use super::executor;
use super::host::HostKernel;
use super::sys;
use crate::platform::{PlatformError, Resources};

/// FreeBSD's process descriptors come only from pdfork(2): there is no way to open one for
/// an existing pid, so `--pidfd-socket` is refused before anything is made.
pub const PROCESS_HANDLES: bool = false;

/// The host pids of every process in the container's jail (and the init before it
/// attached).
pub fn container_pids(made: &Resources, init_pid: Option<i32>) -> Result<Vec<i32>, PlatformError> {
    executor::container_pids(&mut HostKernel, &made.backend, init_pid)
}

/// Always an error: see [`PROCESS_HANDLES`].
pub fn process_handle(pid: i32) -> Result<OwnedFd, PlatformError> {
    Err(PlatformError::Unsupported {
        what: format!("--pidfd-socket (a descriptor for pid {pid})"),
        os: "FreeBSD",
        hint: "FreeBSD has no pidfd_open; omit --pidfd-socket".into(),
    })
}

/// The start time of `pid` in microseconds since the epoch, or `None` when there is no
/// such live process (a zombie counts as gone).
pub fn process_start_time(pid: i32) -> Option<u64> {
    let k = sys::process(pid)?;
    if k.ki_stat == libc::SZOMB {
        return None;
    }
    let secs = u64::try_from(k.ki_start.tv_sec).ok()?;
    let micros = u64::try_from(k.ki_start.tv_usec).ok()?;
    Some(secs * 1_000_000 + micros)
}

/// Marks every descriptor from `first` up close-on-exec.
pub fn cloexec_from(first: i32) -> Result<(), PlatformError> {
    sys::cloexec_from(first).map_err(|e| PlatformError::call("close_range(CLOSE_RANGE_CLOEXEC)", e))
}
