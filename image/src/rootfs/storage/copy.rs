//! Copying a stored chain into a container root filesystem, for the dir driver, at any
//! depth and with a bounded number of open descriptors.
//!
//! Both trees are private to stockade while this runs (a chain directory is never a
//! container's root, and the destination is new), so no untrusted process can swap a
//! component under us; even so no symlink is ever followed: every call is an `*at` call on
//! a directory descriptor opened with `O_NOFOLLOW`, symlinks are recreated, not copied
//! through. The walk is iterative: a stack of directories being copied, of which only the
//! deepest [`WINDOW`] keep their descriptors open. Going back up to a directory whose
//! descriptors were closed reopens it as `..` of the child, checked by device and inode
//! against what it was, so a tree 30,000 levels deep copies with a few dozen descriptors.
//!
//! Regular file contents go through `std::io::copy` between two files, which uses
//! `copy_file_range(2)` where the kernel has it, and so shares extents (a reflink) on
//! filesystems that can (XFS, Btrfs, ZFS with block cloning). Hard links within the chain
//! stay hard links within the copy.
//!
//! Regular files with one link are copied by a few worker threads (`threads`), the walk
//! handing each the two directory descriptors it resolved; a directory is finished (its
//! mode and times set) only once no file is in flight, and files with several links are
//! copied by the walk itself, so a link always finds its first name made.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use nix::fcntl::{openat, readlinkat, AtFlags, OFlag};
use nix::sys::stat::{
    fchmod, fchmodat, fstat, fstatat, futimens, mkdirat, mknodat, utimensat, FchmodatFlags,
    FileStat, Mode, SFlag, UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, linkat, symlinkat, Gid, Uid};
use xattr::FileExt;

use super::StorageError;

/// How many levels of the stack keep their two descriptors open: enough that a walk
/// going down and up a few levels rarely reopens anything, few enough for any limit.
const WINDOW: usize = 8;

/// Copies the tree `src` into the new directory `dst` (which must not exist; its parent
/// must), with `threads` threads copying regular files (none for 0 or 1). Neither `src`
/// nor any component below it is followed if a symlink.
pub(crate) fn copy_tree(src: &Path, dst: &Path, threads: usize) -> Result<(), StorageError> {
    let (src_parent, src_name) = split(src)?;
    let (dst_parent, dst_name) = split(dst)?;
    let sp = open_dir_path(src_parent).map_err(StorageError::io("opening", src_parent))?;
    let dp = open_dir_path(dst_parent).map_err(StorageError::io("opening", dst_parent))?;
    let mut copy = Copy {
        src_root: src.to_path_buf(),
        dst_root: dst.to_path_buf(),
        stack: Vec::new(),
        links: HashMap::new(),
        root: nix::unistd::geteuid().is_root(),
        workers: None,
    };
    let top = copy
        .enter(&sp, src_name, &dp, dst_name)
        .map_err(StorageError::io("copying", dst))?;
    copy.stack.push(top);
    if threads <= 1 {
        return copy.run();
    }
    std::thread::scope(|sc| {
        copy.workers = Some(Workers::start(sc, threads));
        let r = copy.run();
        // Dropping the queue ends the workers; the scope joins them.
        copy.workers = None;
        r
    })
}

/// A file copy for a worker: the path it makes (for the error) and the copy.
type Task = Box<dyn FnOnce() -> (PathBuf, io::Result<()>) + Send>;

/// Threads copying regular files, and how many of their copies are not reported yet.
struct Workers {
    tasks: SyncSender<Task>,
    done: Receiver<(PathBuf, io::Result<()>)>,
    pending: usize,
}

impl Workers {
    fn start<'scope>(sc: &'scope std::thread::Scope<'scope, '_>, threads: usize) -> Workers {
        let (tasks, queue) = mpsc::sync_channel::<Task>(threads * 8);
        let (report, done) = mpsc::channel();
        let queue = Arc::new(Mutex::new(queue));
        for _ in 0..threads {
            let (queue, report) = (Arc::clone(&queue), report.clone());
            sc.spawn(move || loop {
                let task = match queue.lock().map(|q| q.recv()) {
                    Ok(Ok(t)) => t,
                    _ => break,
                };
                if report.send(task()).is_err() {
                    break;
                }
            });
        }
        Workers {
            tasks,
            done,
            pending: 0,
        }
    }

    /// Waits for every copy in flight; the first failure is the error.
    fn drain(&mut self) -> Result<(), StorageError> {
        let mut first = None;
        while self.pending > 0 {
            let Ok((path, r)) = self.done.recv() else {
                return Err(StorageError::io("copying", PathBuf::new())(
                    io::Error::other("a copying thread panicked"),
                ));
            };
            self.pending -= 1;
            if let (Err(e), None) = (r, &first) {
                first = Some(StorageError::io("copying", path)(e));
            }
        }
        first.map_or(Ok(()), Err)
    }
}

/// A path's parent (`.` for a bare name) and final name.
fn split(p: &Path) -> Result<(&Path, &OsStr), StorageError> {
    let name = p.file_name().ok_or_else(|| {
        StorageError::io("copying", p)(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the path has no final name",
        ))
    })?;
    let parent = match p.parent() {
        Some(q) if !q.as_os_str().is_empty() => q,
        _ => Path::new("."),
    };
    Ok((parent, name))
}

fn dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
}

/// Opens a directory path given by the caller (a storage path: ours, not the image's).
fn open_dir_path(p: &Path) -> io::Result<File> {
    Ok(File::from(nix::fcntl::open(p, dir_flags(), Mode::empty())?))
}

fn open_dir_at(dir: &File, name: &OsStr) -> io::Result<File> {
    Ok(File::from(openat(dir, name, dir_flags(), Mode::empty())?))
}

/// One directory being copied.
struct Frame {
    /// The source and destination directories, while within the window (shared with
    /// the workers copying files into it).
    fds: Option<(Arc<File>, Arc<File>)>,
    /// (device, inode) of the source and the destination, to check a reopen.
    ids: [(u64, u64); 2],
    /// The source directory's status, applied to the copy once it is filled.
    stat: FileStat,
    /// The directory's name in its parent (for error paths and hard links).
    name: OsString,
    /// The source directory's entries not yet copied.
    todo: Vec<OsString>,
}

struct Copy {
    src_root: PathBuf,
    dst_root: PathBuf,
    stack: Vec<Frame>,
    /// The first destination path (relative to `dst_root`, as components) of every source
    /// inode with more than one link.
    links: HashMap<(u64, u64), Vec<OsString>>,
    root: bool,
    workers: Option<Workers>,
}

// dev_t and ino_t are narrower on some targets.
#[allow(clippy::unnecessary_cast)]
fn id(st: &FileStat) -> (u64, u64) {
    (st.st_dev as u64, st.st_ino as u64)
}

fn times(st: &FileStat) -> TimeSpec {
    TimeSpec::new(st.st_mtime as _, st.st_mtime_nsec as _)
}

fn mode(st: &FileStat) -> Mode {
    Mode::from_bits_truncate((st.st_mode & 0o7777) as _)
}

impl Copy {
    fn run(&mut self) -> Result<(), StorageError> {
        while let Some(top) = self.stack.last_mut() {
            let Some(name) = top.todo.pop() else {
                self.leave()?;
                continue;
            };
            let (s, d) = top.fds.as_ref().expect("the deepest frame is open");
            // Shared, so the stack can change while they are used.
            let (s, d) = (Arc::clone(s), Arc::clone(d));
            match self.entry(&s, &d, &name) {
                Ok(Some(frame)) => {
                    drop((s, d));
                    self.stack.push(frame);
                    self.shrink_window();
                }
                Ok(None) => {}
                Err(e) => return Err(StorageError::io("copying", self.path(Some(&name)))(e)),
            }
        }
        match &mut self.workers {
            Some(w) => w.drain(),
            None => Ok(()),
        }
    }

    /// The destination path of the current directory, or of `name` in it.
    fn path(&self, name: Option<&OsStr>) -> PathBuf {
        self.rel_path(&self.dst_root, name)
    }

    /// The same below another root (the source's).
    fn rel_path(&self, root: &Path, name: Option<&OsStr>) -> PathBuf {
        let mut p = root.to_path_buf();
        p.extend(self.stack.iter().skip(1).map(|f| &f.name));
        if let Some(n) = name {
            p.push(n);
        }
        p
    }

    /// Closes the descriptors of the frame that just left the window.
    fn shrink_window(&mut self) {
        if self.stack.len() > WINDOW {
            let i = self.stack.len() - WINDOW - 1;
            self.stack[i].fds = None;
        }
    }

    /// Creates the copy of directory `sname` (in `s`) as `dname` (in `d`) and returns its
    /// frame.
    fn enter(&self, s: &File, sname: &OsStr, d: &File, dname: &OsStr) -> io::Result<Frame> {
        let sub = open_dir_at(s, sname)?;
        let stat = fstat(&sub)?;
        mkdirat(d, dname, Mode::from_bits_truncate(0o700))?;
        let dsub = open_dir_at(d, dname)?;
        // Owner-writable while filling (an existing mode would be the umask's); the real
        // mode is set after the contents.
        fchmod(&dsub, Mode::from_bits_truncate(0o700))?;
        let ids = [id(&stat), id(&fstat(&dsub)?)];
        let (sub, dsub) = (Arc::new(sub), Arc::new(dsub));
        let mut todo = crate::rootfs::remove::list(sub.as_fd())?;
        // Popped from the end: reversed, so entries are copied in directory order.
        todo.reverse();
        Ok(Frame {
            fds: Some((sub, dsub)),
            ids,
            stat,
            name: dname.to_os_string(),
            todo,
        })
    }

    /// Copies one entry; a directory is created and returned as a frame to fill.
    fn entry(&mut self, s: &Arc<File>, d: &Arc<File>, name: &OsStr) -> io::Result<Option<Frame>> {
        let st = fstatat(s, name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
        let kind = SFlag::from_bits_truncate(st.st_mode as _) & SFlag::S_IFMT;
        if kind == SFlag::S_IFDIR {
            return self.enter(s, name, d, name).map(Some);
        }
        if st.st_nlink > 1 {
            if let Some(first) = self.links.get(&id(&st)) {
                let (parent, last) = first.split_at(first.len() - 1);
                let dir = self.open_dst_path(parent)?;
                linkat(&dir, last[0].as_os_str(), d, name, AtFlags::empty())?;
                return Ok(None);
            }
            let mut rel: Vec<OsString> =
                self.stack.iter().skip(1).map(|f| f.name.clone()).collect();
            rel.push(name.to_os_string());
            self.links.insert(id(&st), rel);
        }
        match kind {
            SFlag::S_IFREG if st.st_nlink <= 1 && self.workers.is_some() => {
                let (s, d, n, root) = (Arc::clone(s), Arc::clone(d), name.to_owned(), self.root);
                let path = self.path(Some(name));
                if let Some(w) = &mut self.workers {
                    w.pending += 1;
                    // Fails only when the workers are gone: drain then reports it.
                    let _ = w
                        .tasks
                        .send(Box::new(move || (path, copy_file(&s, &d, &n, &st, root))));
                }
                Ok(())
            }
            SFlag::S_IFREG => copy_file(s, d, name, &st, self.root),
            SFlag::S_IFLNK => {
                let target = readlinkat(s, name)?;
                symlinkat(target.as_os_str(), d, name)?;
                self.finish_at(s, d, name, &st, false)
            }
            _ => {
                // Devices, fifos, sockets: a new node of the same kind.
                mknodat(
                    d,
                    name,
                    kind,
                    Mode::from_bits_truncate((st.st_mode & 0o777) as _),
                    st.st_rdev as _,
                )?;
                self.finish_at(s, d, name, &st, true)
            }
        }
        .map(|()| None)
    }

    /// The same for a symlink or a special file, which are not opened (opening a device
    /// node may have effects): calls on the name in its directory.
    fn finish_at(
        &self,
        s: &File,
        d: &File,
        name: &OsStr,
        st: &FileStat,
        chmod: bool,
    ) -> io::Result<()> {
        if self.root {
            fchownat(
                d,
                name,
                Some(Uid::from_raw(st.st_uid)),
                Some(Gid::from_raw(st.st_gid)),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )?;
        }
        copy_xattrs_at(
            &fd_path(s, name, self.rel_path(&self.src_root, Some(name))),
            &fd_path(d, name, self.path(Some(name))),
        )?;
        if chmod {
            fchmodat(d, name, mode(st), FchmodatFlags::FollowSymlink)?;
        }
        let t = times(st);
        utimensat(d, name, &t, &t, UtimensatFlags::NoFollowSymlink)?;
        Ok(())
    }

    /// Opens the destination directory at `rel` below the root, one component at a time
    /// (at most two descriptors open), never following a symlink.
    fn open_dst_path(&self, rel: &[OsString]) -> io::Result<File> {
        let mut dir = open_dir_path(&self.dst_root)?;
        for c in rel {
            dir = open_dir_at(&dir, c)?;
        }
        Ok(dir)
    }

    /// Finishes the deepest directory (its contents are done) and pops it, first
    /// reopening its parent if that left the window.
    fn leave(&mut self) -> Result<(), StorageError> {
        // A file made in the directory would change its times after they are set.
        if let Some(w) = &mut self.workers {
            w.drain()?;
        }
        let n = self.stack.len();
        if n >= 2 && self.stack[n - 2].fds.is_none() {
            let child = self.stack[n - 1]
                .fds
                .as_ref()
                .expect("the deepest frame is open");
            let parent = (|| -> io::Result<(Arc<File>, Arc<File>)> {
                let s = open_dir_at(&child.0, OsStr::new(".."))?;
                let d = open_dir_at(&child.1, OsStr::new(".."))?;
                if [id(&fstat(&s)?), id(&fstat(&d)?)] != self.stack[n - 2].ids {
                    return Err(io::Error::other(
                        "the directory changed while it was being copied",
                    ));
                }
                Ok((Arc::new(s), Arc::new(d)))
            })()
            .map_err(|e| {
                StorageError::io(
                    "reopening",
                    self.path(None).parent().unwrap_or(Path::new("")),
                )(e)
            })?;
            self.stack[n - 2].fds = Some(parent);
        }
        let frame = self.stack.last().expect("not empty");
        let (s, d) = frame.fds.as_ref().expect("the deepest frame is open");
        finish_fd(s, d, &frame.stat, self.root)
            .map_err(StorageError::io("finishing", self.path(None)))?;
        self.stack.pop();
        Ok(())
    }
}

/// Copies the regular file `name` of `s` into `d` (where it must not exist yet), with its
/// owner (when `root`), extended attributes, mode and times.
fn copy_file(s: &File, d: &File, name: &OsStr, st: &FileStat, root: bool) -> io::Result<()> {
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mut from = File::from(openat(s, name, flags, Mode::empty())?);
    let create =
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mut to = File::from(openat(d, name, create, Mode::from_bits_truncate(0o600))?);
    io::copy(&mut from, &mut to)?;
    finish_fd(&from, &to, st, root)
}

/// Owner, extended attributes, mode and times of a regular file or directory, through
/// descriptors. The owner first: chown clears set-id bits and `security.capability`.
fn finish_fd(from: &File, to: &File, st: &FileStat, root: bool) -> io::Result<()> {
    if root {
        fchown(
            to,
            Some(Uid::from_raw(st.st_uid)),
            Some(Gid::from_raw(st.st_gid)),
        )?;
    }
    let names = match from.list_xattr() {
        Ok(n) => n,
        Err(e) if unsupported(&e) => return mode_times(to, st),
        Err(e) => return Err(e),
    };
    for n in names {
        let Some(value) = from.get_xattr(&n)? else {
            continue;
        };
        match to.set_xattr(&n, &value) {
            Ok(()) => {}
            Err(e) if unsupported(&e) => break,
            Err(e) => return Err(e),
        }
    }
    mode_times(to, st)
}

fn mode_times(to: &File, st: &FileStat) -> io::Result<()> {
    fchmod(to, mode(st))?;
    let t = times(st);
    futimens(to, &t, &t)?;
    Ok(())
}

/// Copies the extended attributes of the symlink or special file `name` (in `s`) to its
/// copy (in `d`). There are no `*at` calls for extended attributes, so the name is reached
/// through the directory descriptor's `/proc/self/fd` entry on Linux, and on FreeBSD
/// through the full path (which fails past `PATH_MAX`, with that error, rather than
/// silently dropping the attributes). A filesystem without them is not an error: the
/// unpacker applies them "where the filesystem has them" too.
fn copy_xattrs_at(from: &Path, to: &Path) -> io::Result<()> {
    let names = match xattr::list(from) {
        Ok(n) => n,
        Err(e) if unsupported(&e) => return Ok(()),
        Err(e) => return Err(e),
    };
    for n in names {
        let Some(value) = xattr::get(from, &n)? else {
            continue;
        };
        match xattr::set(to, &n, &value) {
            Ok(()) => {}
            Err(e) if unsupported(&e) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Where the xattr calls reach `name` in `dir`: its `/proc/self/fd` entry on Linux.
#[cfg(target_os = "linux")]
fn fd_path(dir: &File, name: &OsStr, _full: PathBuf) -> PathBuf {
    use std::os::fd::AsRawFd;
    Path::new("/proc/self/fd")
        .join(dir.as_fd().as_raw_fd().to_string())
        .join(name)
}

/// Elsewhere the full path (which fails past `PATH_MAX` with that error).
#[cfg(not(target_os = "linux"))]
fn fd_path(_dir: &File, _name: &OsStr, full: PathBuf) -> PathBuf {
    full
}

fn unsupported(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EOPNOTSUPP) || e.kind() == io::ErrorKind::Unsupported
}

#[cfg(test)]
#[path = "copy_tests.rs"]
mod tests;
