//! TaskOOM: the kernel's out-of-memory kills in a container's memory cgroup, published to
//! containerd as `/tasks/oom` (CRI turns it into the container's `OOMKilled` reason).
//!
//! Linux only. Which hierarchy carries `memory` decides how the kills are seen:
//! - cgroup v1 (hybrid hosts like this project's CI): an eventfd registered for the
//!   cgroup's `memory.oom_control` through `cgroup.event_control`; the kernel signals it on
//!   every OOM in the cgroup (before it kills, so each signal counts as one), and once more
//!   when the cgroup is removed.
//! - cgroup v2: inotify on the cgroup's `memory.events`, whose `oom_kill` counter is compared
//!   with the last value seen (the file is modified for other events too).
//!
//! A container without a memory cgroup of its own (no memory limit) has nothing to watch:
//! the kernel's OOM killer then acts for the host or a parent cgroup, not the container.

// The watcher is Linux's; elsewhere only the parsing is compiled (and tested).
#![cfg_attr(not(target_os = "linux"), allow(dead_code))]

use std::path::{Path, PathBuf};

/// The `oom_kill` counter of a v2 `memory.events` or a v1 `memory.oom_control` (both are
/// `key value` lines); None when the kernel does not report it (v1 before Linux 4.13).
pub fn oom_kills(text: &str) -> Option<u64> {
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .find(|(k, _)| *k == "oom_kill")
        .and_then(|(_, v)| v.trim().parse().ok())
}

/// Whether a change of v2's `memory.events` means a new kill: the counter went up (from
/// nothing read before: above zero). Without a counter now, the caller decides.
pub fn is_new_kill(before: Option<u64>, now: Option<u64>) -> bool {
    match (before, now) {
        (Some(b), Some(n)) => n > b,
        (_, None) => true,
        (None, Some(n)) => n > 0,
    }
}

/// Which memory cgroup to watch, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    V1(PathBuf),
    V2(PathBuf),
}

/// The container's memory cgroup among the cgroups stockade made for it: the innermost v1
/// directory under a hierarchy carrying `memory`, else the innermost v2 one whose
/// `memory.events` exists (the controller is enabled there).
pub fn source(cgroups: &[PathBuf]) -> Option<Source> {
    let dirs: Vec<String> = cgroups
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if let Some(d) = crate::stats::innermost(&dirs, Some("memory")) {
        let d = PathBuf::from(d);
        if d.join("memory.oom_control").exists() {
            return Some(Source::V1(d));
        }
    }
    cgroups
        .iter()
        .filter(|d| d.join("memory.events").exists())
        .max_by_key(|d| d.components().count())
        .map(|d| Source::V2(d.clone()))
}

fn read_kills(file: &Path) -> Option<u64> {
    oom_kills(&std::fs::read_to_string(file).ok()?)
}

#[cfg(target_os = "linux")]
pub use linux::spawn;

#[cfg(target_os = "linux")]
mod linux {
    use std::os::fd::{AsRawFd, OwnedFd};

    use nix::sys::eventfd::{EfdFlags, EventFd};
    use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
    use tokio::io::AsyncReadExt;
    use tokio::net::unix::pipe::Receiver;

    use super::{is_new_kill, read_kills, Source};

    fn io(e: nix::errno::Errno) -> std::io::Error {
        std::io::Error::from_raw_os_error(e as i32)
    }

    /// An eventfd or inotify descriptor as something tokio reads when it is readable (the
    /// same registration a pipe gets; the `unchecked` is about it not being a FIFO).
    fn reader(fd: OwnedFd) -> std::io::Result<Receiver> {
        Receiver::from_owned_fd_unchecked(fd)
    }

    /// Starts watching; `on_oom` runs once per kill seen. The watch ends by itself when the
    /// cgroup goes (delete removes it); the handle lets delete end it at once.
    pub fn spawn(
        src: Source,
        on_oom: impl Fn() + Send + 'static,
    ) -> std::io::Result<tokio::task::JoinHandle<()>> {
        let (dir, file, fd) = match &src {
            Source::V1(dir) => {
                let efd = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
                    .map_err(io)?;
                let control = std::fs::File::open(dir.join("memory.oom_control"))?;
                // The kernel holds what it needs from both descriptors once registered.
                std::fs::write(
                    dir.join("cgroup.event_control"),
                    format!("{} {}", efd.as_raw_fd(), control.as_raw_fd()),
                )?;
                (
                    dir.clone(),
                    dir.join("memory.oom_control"),
                    OwnedFd::from(efd),
                )
            }
            Source::V2(dir) => {
                let file = dir.join("memory.events");
                let ino =
                    Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK).map_err(io)?;
                ino.add_watch(&file, AddWatchFlags::IN_MODIFY).map_err(io)?;
                (dir.clone(), file, OwnedFd::from(ino))
            }
        };
        let v1 = matches!(src, Source::V1(_));
        let mut rx = reader(fd)?;
        // Read now, at create: the task below first runs later, maybe after a kill.
        let mut seen = read_kills(&file);
        Ok(tokio::spawn(async move {
            // An eventfd read is one 8-byte counter; an inotify read, whole events.
            let mut buf = vec![0u8; 4096];
            loop {
                match rx.read(&mut buf).await {
                    Ok(n) if n > 0 => {}
                    _ => return,
                }
                // Both are signalled when the cgroup is removed too.
                if !dir.exists() || !file.exists() {
                    return;
                }
                // v1 signals before the kernel picks and kills a process (the counter has
                // not moved yet): every notification is one OOM, as runc's shim counts it.
                // v2's file changes for other events as well: only a rise of the counter.
                let now = read_kills(&file);
                if v1 || (now.is_some() && is_new_kill(seen, now)) {
                    on_oom();
                }
                seen = now;
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_from_v2_memory_events() {
        let t = "low 0\nhigh 0\nmax 12\noom 2\noom_kill 2\noom_group_kill 0\n";
        assert_eq!(oom_kills(t), Some(2));
    }

    #[test]
    fn counter_from_v1_oom_control() {
        let t = "oom_kill_disable 0\nunder_oom 0\noom_kill 5\n";
        assert_eq!(oom_kills(t), Some(5));
        // Before Linux 4.13 there is no counter.
        assert_eq!(oom_kills("oom_kill_disable 0\nunder_oom 1\n"), None);
        // oom_kill_disable is not the counter.
        assert_eq!(oom_kills("oom_kill_disable 1\n"), None);
    }

    #[test]
    fn new_kill_decisions() {
        assert!(is_new_kill(Some(1), Some(2)));
        assert!(!is_new_kill(Some(2), Some(2)));
        assert!(is_new_kill(None, None));
        assert!(is_new_kill(Some(3), None));
        assert!(!is_new_kill(None, Some(0)));
        assert!(is_new_kill(None, Some(1)));
    }

    #[test]
    fn picks_the_memory_cgroup() {
        let d = tempfile::tempdir().unwrap();
        let v2 = d.path().join("unified/stockade/c");
        std::fs::create_dir_all(&v2).unwrap();
        std::fs::write(v2.join("memory.events"), "oom_kill 0\n").unwrap();
        assert_eq!(
            source(std::slice::from_ref(&v2)),
            Some(Source::V2(v2.clone()))
        );
        let pids = d.path().join("pids/c");
        std::fs::create_dir_all(&pids).unwrap();
        assert_eq!(source(&[pids]), None);
    }
}
