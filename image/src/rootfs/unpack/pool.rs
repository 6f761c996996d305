//! Creating the regular files of a layer from several threads.
//!
//! Most of an unpack's time is file creation in the kernel (inode allocation inside
//! `openat`), and much of what follows it (writing the content, owner, mode, times) is
//! per-file work that other files need not wait for. So the regular files of a layer go
//! to a small pool of workers, while every other entry stays on the thread that reads the
//! tar, in order. What may run out of order is decided there, before a file is handed
//! over:
//!
//! - a worker creates only with `O_CREAT | O_EXCL | O_NOFOLLOW` in a directory the reading
//!   thread resolved (and holds open) the usual way, one component at a time without
//!   following links, so nothing a worker does can reach outside the target;
//! - a name that already exists is not touched by the worker: the file comes back and is
//!   replaced in order by the reading thread (which removes what is there, as without
//!   workers);
//! - an entry whose path, or one of whose ancestors, is a file still in flight, and every
//!   entry that acts on other paths (hard links, whiteouts, opaque markers) or removes
//!   things (anything but a regular file or a directory), first waits for every file in
//!   flight ([`Pool::drain`]): so hard links, whiteouts and replacements keep their order.

use std::collections::HashSet;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};

use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::Mode;
use tar::EntryType;

use super::error::EntryError;
use super::meta::{finish_fd, Meta, Settings};
use super::UnpackStats;

/// Files at most this large are read out of a streamed layer into memory and handed
/// to a worker; larger ones are written by the reading thread (still while the workers
/// create others). A layer already in memory hands any file over without a copy.
pub(crate) const STREAM_COPY_MAX: u64 = 1 << 20;

/// Whether an entry of type `et` may be applied while files are in flight (when its path
/// does not conflict with one): regular files, and directories, which only ever replace
/// a non-directory, under which nothing can be in flight.
pub(crate) fn may_overlap(et: EntryType) -> bool {
    matches!(
        et,
        EntryType::Regular | EntryType::Continuous | EntryType::Directory
    )
}

/// A file's content: a slice of the layer in memory, or a copy read from the stream.
pub(crate) enum Body<'d> {
    Slice(&'d [u8]),
    Owned(Vec<u8>),
}

impl Body<'_> {
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Body::Slice(s) => s,
            Body::Owned(v) => v,
        }
    }
}

/// One regular file to create.
pub(crate) struct Job<'d> {
    /// The directory it goes in, resolved by the reading thread.
    pub dir: Arc<OwnedFd>,
    pub name: std::ffi::OsString,
    pub rel: PathBuf,
    /// The entry's name as the layer gives it, for errors.
    pub shown: String,
    pub meta: Meta,
    pub body: Body<'d>,
}

/// What became of a job.
pub(crate) enum Done<'d> {
    /// Created and written; the counters it touched.
    Made {
        rel: PathBuf,
        bytes: u64,
        stats: UnpackStats,
    },
    /// The name exists: the reading thread replaces it, in order.
    Exists(Job<'d>),
    /// Failed: the entry and why.
    Failed {
        rel: PathBuf,
        shown: String,
        error: EntryError,
    },
}

impl Done<'_> {
    pub(crate) fn rel(&self) -> &Path {
        match self {
            Done::Made { rel, .. } | Done::Failed { rel, .. } => rel,
            Done::Exists(j) => &j.rel,
        }
    }
}

/// The workers of one layer, and what the reading thread knows about their work.
pub(crate) struct Pool<'d> {
    jobs: SyncSender<Job<'d>>,
    done: Receiver<Done<'d>>,
    /// Paths handed over and not yet reported back.
    in_flight: HashSet<PathBuf>,
    /// The directory most recently handed over, so the files of one directory share a
    /// descriptor.
    last_dir: Option<(PathBuf, Arc<OwnedFd>)>,
}

impl<'d> Pool<'d> {
    /// Starts `threads` workers in `scope`.
    pub(crate) fn start<'scope>(
        scope: &'scope std::thread::Scope<'scope, '_>,
        threads: usize,
        settings: &'scope Settings,
    ) -> Pool<'d>
    where
        'd: 'scope,
    {
        let (jobs, queue) = mpsc::sync_channel::<Job<'d>>(threads * 8);
        let (report, done) = mpsc::channel();
        let queue = Arc::new(Mutex::new(queue));
        for _ in 0..threads {
            let queue = Arc::clone(&queue);
            let report: Sender<Done<'d>> = report.clone();
            scope.spawn(move || loop {
                let job = match queue.lock() {
                    Ok(q) => match q.recv() {
                        Ok(j) => j,
                        Err(_) => break,
                    },
                    Err(_) => break,
                };
                if report.send(create(job, settings)).is_err() {
                    break;
                }
            });
        }
        Pool {
            jobs,
            done,
            in_flight: HashSet::new(),
            last_dir: None,
        }
    }

    /// Whether `rel` or one of its ancestors is a file in flight.
    pub(crate) fn conflicts(&self, rel: &Path) -> bool {
        !self.in_flight.is_empty() && rel.ancestors().any(|a| self.in_flight.contains(a))
    }

    /// Whether nothing is in flight.
    pub(crate) fn idle(&self) -> bool {
        self.in_flight.is_empty()
    }

    /// A shared descriptor of the directory `parent` (`dir`, borrowed from the tree).
    pub(crate) fn dir(
        &mut self,
        parent: &Path,
        dir: BorrowedFd<'_>,
    ) -> Result<Arc<OwnedFd>, EntryError> {
        if let Some((p, fd)) = &self.last_dir {
            if p == parent {
                return Ok(Arc::clone(fd));
            }
        }
        let fd = Arc::new(
            dir.try_clone_to_owned()
                .map_err(|e| EntryError::Fs("opening a directory", e))?,
        );
        self.last_dir = Some((parent.to_path_buf(), Arc::clone(&fd)));
        Ok(fd)
    }

    /// Forgets the shared directory descriptor (something may have replaced it).
    pub(crate) fn forget_dir(&mut self) {
        self.last_dir = None;
    }

    /// Hands a file to the workers.
    pub(crate) fn submit(&mut self, job: Job<'d>) {
        self.in_flight.insert(job.rel.clone());
        // Fails only when every worker is gone (a panic): the file stays in flight,
        // nothing reports it, and [`Pool::lost`] fails the unpack.
        let _ = self.jobs.send(job);
    }

    /// What finished so far, without waiting.
    pub(crate) fn finished(&mut self) -> Vec<Done<'d>> {
        let mut out = Vec::new();
        while let Ok(d) = self.done.try_recv() {
            self.in_flight.remove(d.rel());
            out.push(d);
        }
        out
    }

    /// Waits for every file in flight and returns what became of them.
    pub(crate) fn drain(&mut self) -> Vec<Done<'d>> {
        let mut out = Vec::new();
        while !self.in_flight.is_empty() {
            match self.done.recv() {
                Ok(d) => {
                    self.in_flight.remove(d.rel());
                    out.push(d);
                }
                Err(_) => break,
            }
        }
        self.last_dir = None;
        out
    }

    /// Whether a file handed over was lost (a worker panicked): the caller fails.
    pub(crate) fn lost(&self) -> bool {
        !self.in_flight.is_empty()
    }
}

/// A worker's part: creates the file exclusively, without following a link, writes it
/// and sets its metadata.
fn create<'d>(job: Job<'d>, settings: &Settings) -> Done<'d> {
    let made = openat(
        job.dir.as_fd(),
        job.name.as_os_str(),
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate((job.meta.mode & 0o777) as _),
    );
    let fd = match made {
        Ok(fd) => fd,
        Err(Errno::EEXIST) => return Done::Exists(job),
        Err(e) => {
            return Done::Failed {
                rel: job.rel,
                shown: job.shown,
                error: EntryError::fs("creating")(e),
            }
        }
    };
    let mut stats = UnpackStats::default();
    let mut f = File::from(fd);
    let bytes = job.body.bytes().len() as u64;
    let written = f
        .write_all(job.body.bytes())
        .map_err(|e| EntryError::Fs("writing", e))
        .and_then(|()| finish_fd(f.as_fd(), &job.meta, settings, false, &mut stats));
    match written {
        Ok(()) => Done::Made {
            rel: job.rel,
            bytes,
            stats,
        },
        Err(error) => Done::Failed {
            rel: job.rel,
            shown: job.shown,
            error,
        },
    }
}
