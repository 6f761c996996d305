//! The monitor of a detached stockade service (conmon's role): what `stockade run --image -d`
//! leaves running next to the container. This crate is its logic, without processes:
//!
//! - [`policy`]: `--restart no|on-failure[:N]|always|unless-stopped` and the back-off
//!   between restarts.
//! - [`log`]: the container's log file in `k8s-file` or `json-file` format, size-rotated,
//!   and reading it back (`stockade logs`).
//! - [`filter`]: `logs --since` and `--tail` values.
//! - [`record`]: the service's directory: its configuration, the monitor's state, the
//!   lock that says the monitor is alive, and the stop request.
//!
//! The CLI (`stockade monitor`, `logs`, `stop`, `rm`, `inspect`) runs the processes.

pub mod filter;
pub mod log;
pub mod policy;
pub mod record;

use std::path::PathBuf;

use stockade_quote::{quote, quote_os};

/// Why a monitor operation failed.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error("{op} {}: {source}", quote_os(path.as_os_str()))]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not valid JSON of a service record: {why}", quote_os(path.as_os_str()))]
    BadRecord { path: PathBuf, why: String },
    #[error(
        "--restart {}: {why} (expected no, on-failure[:N], always or unless-stopped)",
        quote(value)
    )]
    BadPolicy { value: String, why: &'static str },
    #[error("log driver {}: expected k8s-file or json-file", quote(value))]
    BadDriver { value: String },
    #[error(
        "log size {}: {why} (a number of bytes with an optional k, m or g suffix, at least 4k)",
        quote(value)
    )]
    BadSize { value: String, why: &'static str },
    #[error(
        "--since {}: expected a duration (10s, 5m, 2h, 1h30m) or an RFC 3339 time",
        quote(value)
    )]
    BadSince { value: String },
    #[error("--tail {}: expected a number of lines or `all`", quote(value))]
    BadTail { value: String },
    #[error("the monitor of {id} is already running (pid {pid})")]
    Running { id: String, pid: i32 },
}

/// A closure turning an I/O error on `path` into [`MonitorError::Io`].
pub(crate) fn io<'a>(
    op: &'static str,
    path: &'a std::path::Path,
) -> impl FnOnce(std::io::Error) -> MonitorError + 'a {
    move |source| MonitorError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}
