//! The reading thread's side of [`super::pool`]: which entries wait for the files in
//! flight, handing regular files over, and taking back what the workers report.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::path::Path;

use nix::fcntl::{openat, OFlag};
use nix::sys::stat::Mode;
use tar::EntryType;

use super::apply::LayerRun;
use super::error::{EntryError, UnpackError};
use super::fsops::create_exclusive;
use super::meta::{finish_fd, Meta};
use super::pool::{Body, Done, Job, Pool, STREAM_COPY_MAX};

impl<'d> LayerRun<'_, '_> {
    /// Before the entry at `rel`: waits for the files in flight when the entry must not
    /// overlap them, else takes back what finished so far.
    pub(super) fn before_entry(
        &mut self,
        pool: &mut Pool<'d>,
        rel: &Path,
        et: EntryType,
        overlap: bool,
    ) -> Result<(), UnpackError> {
        if !overlap || !matches!(et, EntryType::Regular | EntryType::Continuous) {
            // Whatever this entry replaces or removes may be the directory whose
            // descriptor the workers share.
            pool.forget_dir();
        }
        if pool.idle() {
            return Ok(());
        }
        let done = if overlap && !pool.conflicts(rel) {
            pool.finished()
        } else {
            pool.drain()
        };
        self.settle(pool, done)
    }

    /// After the layer's last entry: waits for every file.
    pub(super) fn finish_pool(&mut self, pool: &mut Pool<'d>) -> Result<(), UnpackError> {
        let done = pool.drain();
        self.settle(pool, done)?;
        if pool.lost() {
            return Err(UnpackError::Read {
                layer: self.layer.clone(),
                source: std::io::Error::other("a file-creating thread panicked"),
            });
        }
        Ok(())
    }

    /// Takes back what the workers report: counts what was made, fails on the first
    /// failure, and replaces in order (once nothing else is in flight) what found its
    /// name taken.
    fn settle(&mut self, pool: &mut Pool<'d>, done: Vec<Done<'d>>) -> Result<(), UnpackError> {
        let mut taken = Vec::new();
        let mut done = done;
        loop {
            for d in done {
                match d {
                    Done::Made { bytes, stats, .. } => {
                        self.stats.files += 1;
                        self.stats.bytes += bytes;
                        self.stats.xattrs_skipped += stats.xattrs_skipped;
                    }
                    Done::Failed { shown, error, .. } => {
                        return Err(error.into_unpack(self.layer, &shown))
                    }
                    Done::Exists(job) => taken.push(job),
                }
            }
            // A replacement removes what is there, perhaps a directory some file in
            // flight is being created in: nothing may be in flight while it runs.
            if taken.is_empty() || pool.idle() {
                break;
            }
            done = pool.drain();
        }
        if taken.is_empty() {
            return Ok(());
        }
        pool.forget_dir();
        for job in taken {
            let shown = job.shown.clone();
            self.replace_file(job)
                .map_err(|e| e.into_unpack(self.layer, &shown))?;
        }
        Ok(())
    }

    /// A file whose name a worker found taken: created again here, replacing what is
    /// there, exactly as without workers.
    fn replace_file(&mut self, job: Job<'d>) -> Result<(), EntryError> {
        let parent = job.rel.parent().unwrap_or(Path::new("")).to_path_buf();
        let (replaced, fd) = {
            let dir = self.tree.dir(&parent, true)?;
            create_exclusive(dir, &job.name, |d, n| open_new(d, n, &job.meta))?
        };
        if replaced {
            self.replaced(&job.rel);
        }
        let mut f = std::fs::File::from(fd);
        f.write_all(job.body.bytes())
            .map_err(|e| EntryError::Fs("writing", e))?;
        finish_fd(f.as_fd(), &job.meta, self.settings, false, self.stats)?;
        self.stats.files += 1;
        self.stats.bytes += job.body.bytes().len() as u64;
        Ok(())
    }

    /// Hands the regular file at `rel` to the workers, with its content from `data` (the
    /// layer in memory) or read from `entry`. Returns false, having done nothing, when
    /// the file is better written here (a large file of a streamed layer).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn hand_over<R: Read>(
        &mut self,
        pool: &mut Pool<'d>,
        entry: &mut tar::Entry<'_, R>,
        data: Option<&'d [u8]>,
        parent: &Path,
        name: &std::ffi::OsStr,
        rel: &Path,
        shown: &str,
        meta: &Meta,
    ) -> Result<bool, EntryError> {
        let size = entry.size();
        let body = match data {
            Some(all) => {
                let start = usize::try_from(entry.raw_file_position()).unwrap_or(usize::MAX);
                let end = start.saturating_add(usize::try_from(size).unwrap_or(usize::MAX));
                Body::Slice(all.get(start..end).ok_or_else(|| {
                    EntryError::Fs(
                        "reading the content",
                        std::io::Error::from(std::io::ErrorKind::UnexpectedEof),
                    )
                })?)
            }
            None if size <= STREAM_COPY_MAX => {
                let mut v = Vec::with_capacity(size as usize);
                entry
                    .read_to_end(&mut v)
                    .map_err(|e| EntryError::Fs("reading the content", e))?;
                Body::Owned(v)
            }
            None => return Ok(false),
        };
        let dir = {
            let d = self.tree.dir(parent, true)?;
            pool.dir(parent, d)?
        };
        pool.submit(Job {
            dir,
            name: name.to_os_string(),
            rel: rel.to_path_buf(),
            shown: shown.to_string(),
            meta: meta.clone(),
            body,
        });
        Ok(true)
    }
}

/// `openat` for a new regular file: exclusive, never following a link.
pub(super) fn open_new(
    dir: std::os::fd::BorrowedFd<'_>,
    name: &std::ffi::OsStr,
    meta: &Meta,
) -> nix::Result<std::os::fd::OwnedFd> {
    openat(
        dir,
        name,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate((meta.mode & 0o777) as _),
    )
}
