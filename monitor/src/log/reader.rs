//! Reading the log back: whole files for `logs`, and what is appended for `logs -f`.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::{log_files, Entry, LogDriver, Stream, LOG_FILE};
use crate::{io, MonitorError};

/// The entry a line of the log (without its newline) holds; `None` for a line that is not
/// one (a file cut short by a crash ends in a piece of a line).
pub fn parse_line(driver: LogDriver, line: &[u8]) -> Option<Entry> {
    match driver {
        LogDriver::K8sFile => {
            let mut parts = line.splitn(4, |&b| b == b' ');
            let time = parse_time(parts.next()?)?;
            let stream = parse_stream(parts.next()?)?;
            let partial = match parts.next()? {
                b"F" => false,
                b"P" => true,
                _ => return None,
            };
            let text = parts.next().unwrap_or_default().to_vec();
            Some(Entry {
                time,
                stream,
                partial,
                text,
            })
        }
        LogDriver::JsonFile => {
            let v: serde_json::Value = serde_json::from_slice(line).ok()?;
            let time = parse_time(v["time"].as_str()?.as_bytes())?;
            let stream = parse_stream(v["stream"].as_str()?.as_bytes())?;
            let log = v["log"].as_str()?;
            let (text, partial) = match log.strip_suffix('\n') {
                Some(t) => (t, false),
                None => (log, true),
            };
            Some(Entry {
                time,
                stream,
                partial,
                text: text.as_bytes().to_vec(),
            })
        }
    }
}

fn parse_time(b: &[u8]) -> Option<DateTime<Utc>> {
    let s = std::str::from_utf8(b).ok()?;
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn parse_stream(b: &[u8]) -> Option<Stream> {
    match b {
        b"stdout" => Some(Stream::Stdout),
        b"stderr" => Some(Stream::Stderr),
        _ => None,
    }
}

/// Every entry of the log in `dir`, oldest first.
pub fn read_entries(
    dir: &Path,
    driver: LogDriver,
    max_files: u32,
) -> Result<Vec<Entry>, MonitorError> {
    let mut out = Vec::new();
    for path in log_files(dir, max_files) {
        out.extend(read_entries_of(&path, driver)?);
    }
    Ok(out)
}

/// The entries of one log file (none when it was rotated away meanwhile).
pub fn read_entries_of(path: &Path, driver: LogDriver) -> Result<Vec<Entry>, MonitorError> {
    let mut bytes = Vec::new();
    match File::open(path) {
        Ok(mut f) => {
            f.read_to_end(&mut bytes).map_err(io("reading", path))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io("opening", path)(e)),
    }
    Ok(bytes
        .split(|&b| b == b'\n')
        .filter_map(|l| parse_line(driver, l))
        .collect())
}

/// What `logs -f` reads: the current file from an offset on, across rotations.
#[derive(Debug)]
pub struct Follower {
    path: PathBuf,
    driver: LogDriver,
    file: Option<File>,
    pending: Vec<u8>,
}

impl Follower {
    /// Follows the log file `path` from its current end.
    pub fn at_end(path: &Path, driver: LogDriver) -> Result<Follower, MonitorError> {
        let mut f = Follower::from_start(path, driver)?;
        if let Some(file) = f.file.as_mut() {
            file.seek(SeekFrom::End(0)).map_err(io("reading", path))?;
        }
        Ok(f)
    }

    /// Follows the log file `path` from its start (the first poll returns what it holds).
    pub fn from_start(path: &Path, driver: LogDriver) -> Result<Follower, MonitorError> {
        Ok(Follower {
            path: path.to_path_buf(),
            driver,
            file: open_existing(path)?,
            pending: Vec::new(),
        })
    }

    /// The whole entries appended since the last call. When the file was rotated, the
    /// rest of the old one is read first, then the new one from its start.
    pub fn poll(&mut self) -> Result<Vec<Entry>, MonitorError> {
        let mut out = Vec::new();
        loop {
            let Some(file) = self.file.as_mut() else {
                self.file = open_existing(&self.path)?;
                if self.file.is_none() {
                    return Ok(out);
                }
                continue;
            };
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes)
                .map_err(io("reading", &self.path))?;
            let ours = file.metadata().map_err(io("reading", &self.path))?.ino();
            self.take_lines(&bytes, &mut out);
            match std::fs::metadata(&self.path) {
                Ok(m) if m.ino() != ours => {
                    // Rotated: the old file is complete. Rotated twice since the last
                    // look: the file in between is `.1` now, complete as well.
                    self.pending.clear();
                    self.file = None;
                    let between = self.path.with_file_name(format!("{LOG_FILE}.1"));
                    match std::fs::metadata(&between) {
                        Ok(b) if b.ino() != ours && b.ino() != m.ino() => {
                            out.extend(read_entries_of(&between, self.driver)?);
                        }
                        _ => {}
                    }
                }
                _ => return Ok(out),
            }
        }
    }

    fn take_lines(&mut self, bytes: &[u8], out: &mut Vec<Entry>) {
        self.pending.extend_from_slice(bytes);
        let Some(end) = self.pending.iter().rposition(|&b| b == b'\n') else {
            return;
        };
        let rest = self.pending.split_off(end + 1);
        let whole = std::mem::replace(&mut self.pending, rest);
        out.extend(
            whole
                .split(|&b| b == b'\n')
                .filter_map(|l| parse_line(self.driver, l)),
        );
    }
}

fn open_existing(path: &Path) -> Result<Option<File>, MonitorError> {
    match File::open(path) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io("opening", path)(e)),
    }
}
