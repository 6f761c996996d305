//! Appending entries to the log file, rotating it by size.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::{format_entry, rotated, Entry, LogOptions, LOG_FILE};
use crate::{io, MonitorError};

/// The open log of one container.
#[derive(Debug)]
pub struct LogWriter {
    dir: PathBuf,
    opts: LogOptions,
    file: File,
    size: u64,
}

impl LogWriter {
    /// Opens (appending to) the log in `dir`.
    pub fn open(dir: &Path, opts: LogOptions) -> Result<LogWriter, MonitorError> {
        let (file, size) = open_current(dir)?;
        Ok(LogWriter {
            dir: dir.to_path_buf(),
            opts,
            file,
            size,
        })
    }

    /// The current file.
    pub fn path(&self) -> PathBuf {
        self.dir.join(LOG_FILE)
    }

    /// Appends `e`, rotating first when it would make the file larger than the limit.
    pub fn write(&mut self, e: &Entry) -> Result<(), MonitorError> {
        let bytes = format_entry(self.opts.driver, e);
        if self.size > 0 && self.size + bytes.len() as u64 > self.opts.max_size {
            self.rotate()?;
        }
        let path = self.path();
        self.file.write_all(&bytes).map_err(io("writing", &path))?;
        self.size += bytes.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> Result<(), MonitorError> {
        let current = self.path();
        let keep = self.opts.max_files.max(1);
        if keep == 1 {
            self.file.set_len(0).map_err(io("truncating", &current))?;
            self.size = 0;
            return Ok(());
        }
        let oldest = rotated(&self.dir, keep - 1);
        match fs::remove_file(&oldest) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("removing", &oldest)(e)),
        }
        for n in (1..keep - 1).rev() {
            let from = rotated(&self.dir, n);
            match fs::rename(&from, rotated(&self.dir, n + 1)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io("renaming", &from)(e)),
            }
        }
        fs::rename(&current, rotated(&self.dir, 1)).map_err(io("renaming", &current))?;
        let (file, size) = open_current(&self.dir)?;
        self.file = file;
        self.size = size;
        Ok(())
    }
}

fn open_current(dir: &Path) -> Result<(File, u64), MonitorError> {
    let path = dir.join(LOG_FILE);
    // Not through a link: the directory is the runtime's, but a link there must not
    // redirect the container's output into another file.
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .open(&path)
        .map_err(io("opening", &path))?;
    let size = file.metadata().map_err(io("reading", &path))?.len();
    Ok((file, size))
}
