//! The container's log: what the monitor reads from the container's stdout and stderr,
//! one entry per line, in one of two formats, in a file rotated by size.
//!
//! - `k8s-file` (the default; Podman's and CRI's): `<RFC 3339 time> stdout|stderr F|P <line>`,
//!   `P` marking a piece of a line longer than [`MAX_LINE`] or cut by the end of the
//!   stream, `F` the piece that ends it.
//! - `json-file` (Docker's): `{"log":"<line>\n","stream":"stdout","time":"<RFC 3339>"}`,
//!   a piece without its `\n` being partial.
//!
//! The file is `container.log` in the service directory; when the next entry would make it
//! larger than the size limit it becomes `container.log.1` (the older ones moving up, the
//! oldest dropped) and a new one is begun.

mod reader;
mod split;
mod writer;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use reader::{parse_line, read_entries, read_entries_of, Follower};
pub use split::LineSplitter;
pub use writer::LogWriter;

use crate::MonitorError;

/// The longest piece of a line kept in one entry; longer lines are cut into partial entries.
pub const MAX_LINE: usize = 16 * 1024;
/// The log file's name in the service directory.
pub const LOG_FILE: &str = "container.log";
/// The default size limit of one log file.
pub const DEFAULT_LOG_SIZE: u64 = 10 * 1024 * 1024;
/// The default number of log files kept (the current one and the rotated ones).
pub const DEFAULT_LOG_FILES: u32 = 3;
/// The smallest size limit accepted (a limit below one entry would rotate every line).
pub const MIN_LOG_SIZE: u64 = 4096;

/// The log file format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogDriver {
    #[default]
    K8sFile,
    JsonFile,
}

impl FromStr for LogDriver {
    type Err = MonitorError;
    fn from_str(s: &str) -> Result<Self, MonitorError> {
        match s {
            "k8s-file" => Ok(LogDriver::K8sFile),
            "json-file" => Ok(LogDriver::JsonFile),
            _ => Err(MonitorError::BadDriver {
                value: s.to_string(),
            }),
        }
    }
}

impl fmt::Display for LogDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogDriver::K8sFile => "k8s-file",
            LogDriver::JsonFile => "json-file",
        })
    }
}

/// Parses a log size: bytes with an optional `k`, `m` or `g` suffix (powers of 1024).
pub fn parse_size(s: &str) -> Result<u64, MonitorError> {
    let bad = |why| MonitorError::BadSize {
        value: s.to_string(),
        why,
    };
    let lower = s.trim().to_ascii_lowercase();
    let lower = lower.strip_suffix('b').unwrap_or(&lower);
    let (digits, shift) = match lower.char_indices().last() {
        Some((i, 'k')) => (&lower[..i], 10),
        Some((i, 'm')) => (&lower[..i], 20),
        Some((i, 'g')) => (&lower[..i], 30),
        _ => (lower, 0),
    };
    let n: u64 = digits.parse().map_err(|_| bad("not a number"))?;
    let bytes = n.checked_mul(1 << shift).ok_or(bad("too large"))?;
    if bytes < MIN_LOG_SIZE {
        return Err(bad("too small"));
    }
    Ok(bytes)
}

/// Where the log goes and how large it may grow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogOptions {
    pub driver: LogDriver,
    /// Largest size of one file, in bytes.
    pub max_size: u64,
    /// Files kept, the current one included (1: the file is emptied instead of rotated).
    pub max_files: u32,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            driver: LogDriver::K8sFile,
            max_size: DEFAULT_LOG_SIZE,
            max_files: DEFAULT_LOG_FILES,
        }
    }
}

/// Which of the container's output streams an entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// One entry of the log: a line, or a piece of one (`partial`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub time: DateTime<Utc>,
    pub stream: Stream,
    pub partial: bool,
    pub text: Vec<u8>,
}

/// The files of the log in `dir`, oldest first (the rotated ones, then the current one),
/// those that exist.
pub fn log_files(dir: &Path, max_files: u32) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for n in (1..max_files.max(1)).rev() {
        let p = rotated(dir, n);
        if p.exists() {
            out.push(p);
        }
    }
    let current = dir.join(LOG_FILE);
    if current.exists() {
        out.push(current);
    }
    out
}

/// The `n`th rotated file (`container.log.n`).
pub(crate) fn rotated(dir: &Path, n: u32) -> PathBuf {
    dir.join(format!("{LOG_FILE}.{n}"))
}

/// The text of an entry in `driver`'s format, with its newline.
pub fn format_entry(driver: LogDriver, e: &Entry) -> Vec<u8> {
    let time = e.time.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    match driver {
        LogDriver::K8sFile => {
            let mut out = Vec::with_capacity(e.text.len() + 48);
            out.extend_from_slice(time.as_bytes());
            out.push(b' ');
            out.extend_from_slice(e.stream.as_str().as_bytes());
            out.extend_from_slice(if e.partial { b" P " } else { b" F " });
            out.extend_from_slice(&e.text);
            out.push(b'\n');
            out
        }
        LogDriver::JsonFile => {
            let mut log = String::from_utf8_lossy(&e.text).into_owned();
            if !e.partial {
                log.push('\n');
            }
            let v = serde_json::json!({"log": log, "stream": e.stream.as_str(), "time": time});
            let mut out = v.to_string().into_bytes();
            out.push(b'\n');
            out
        }
    }
}

#[cfg(test)]
mod tests;
