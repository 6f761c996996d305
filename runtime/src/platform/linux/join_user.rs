//! Joining a user namespace by path. Namespaces the container makes new must be owned by
//! the joined user namespace (else the init, root only there, could not mount in its own
//! mount namespace or mount /proc for its PID namespace), so they are made after joining
//! it: a first stage, cloned with no new namespace, joins every namespace given by path
//! (the user namespace first), becomes the namespace's root, and clones the init with the
//! new ones and `CLONE_PARENT` (so the init is the runtime's child, as without this stage);
//! it reports the init's pid to the runtime and exits. runc's nsexec does the same in its
//! stage 1 and 2 children.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};

use nix::sched::CloneFlags;
use nix::unistd::{Gid, Pid, Uid};

use super::join::Join;
use super::sys;
use crate::platform::PlatformError;

/// The host uid and gid of root in the user namespace of `join`, read from its maps by a
/// short-lived child that joins it (the runtime's own view of a namespace given only by a
/// path). The start fifo is given to that root, which the init is when it opens it.
pub fn host_root(join: &Join) -> Result<(u32, u32), PlatformError> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| PlatformError::call("pipe (user namespace maps)", e))?;
    let raw_r = r.as_raw_fd();
    let mut w = Some(w);
    let child = sys::fork_child(Box::new(move || {
        sys::close_fd(raw_r);
        let Some(w) = w.take() else { return 1 };
        let read = |name: &str| std::fs::read_to_string(format!("/proc/self/{name}"));
        let text = match join.enter().map(|()| (read("uid_map"), read("gid_map"))) {
            Ok((Ok(uid), Ok(gid))) => format!("{uid}\n--\n{gid}"),
            _ => String::new(),
        };
        let _ = std::fs::File::from(w).write_all(text.as_bytes());
        0
    }))
    .map_err(|e| PlatformError::call("fork (reading a joined user namespace's maps)", e))?;
    let mut text = String::new();
    let read = std::fs::File::from(r).read_to_string(&mut text);
    let _ = nix::sys::wait::waitpid(child, None);
    let failed = |detail: &str| PlatformError::Failed {
        call: format!(
            "reading the id maps of the user namespace {}",
            stockade_quote::quote_os(&join.path)
        ),
        detail: detail.into(),
    };
    read.map_err(|e| failed(&e.to_string()))?;
    let (uid, gid) = text
        .split_once("\n--\n")
        .ok_or_else(|| failed("it could not be joined"))?;
    match (root_of(uid), root_of(gid)) {
        (Some(u), Some(g)) => Ok((u, g)),
        _ => Err(failed(
            "its root (id 0) is not mapped; it would own the container's init",
        )),
    }
}

/// The outside id of inside id 0 in the text of a map file.
fn root_of(map: &str) -> Option<u32> {
    map.lines().find_map(|l| {
        let f: Vec<u32> = l
            .split_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect();
        match f[..] {
            [inside, outside, size] if inside == 0 && size > 0 => Some(outside),
            _ => None,
        }
    })
}

/// The first stage, in the child cloned without new namespaces once it is in the
/// container's cgroups: joins `joins` (in order: user first), becomes uid/gid 0 of the
/// user namespace, clones the init with `flags` (the new namespaces), and writes `P<pid>`
/// (or `E<error>`) to `report`. Returns its exit code.
pub fn first_stage(
    joins: &[Join],
    flags: CloneFlags,
    report: OwnedFd,
    init: Box<dyn FnMut() -> isize + '_>,
) -> isize {
    let mut report = std::fs::File::from(report);
    let cloned = joins
        .iter()
        .try_for_each(Join::enter)
        .and_then(|()| {
            let zero = (Gid::from_raw(0), Uid::from_raw(0));
            nix::unistd::setresgid(zero.0, zero.0, zero.0)
                .and_then(|()| nix::unistd::setresuid(zero.1, zero.1, zero.1))
                .map_err(|e| PlatformError::call("becoming root in the joined user namespace", e))
        })
        .and_then(|()| {
            sys::clone_child(flags | CloneFlags::CLONE_PARENT, init).map_err(|e| {
                PlatformError::call("clone (the init, in the joined user namespace)", e)
            })
        });
    // One write, under PIPE_BUF: the runtime reads it whole.
    let (msg, code) = match cloned {
        Ok(pid) => (format!("P{pid}"), 0),
        Err(e) => (format!("E{e}"), 1),
    };
    let _ = report.write_all(msg.as_bytes());
    code
}

/// In the runtime: the init's pid from the first stage `first` (then reaped), or its error.
pub fn init_pid(first: Pid, report: OwnedFd) -> Result<Pid, PlatformError> {
    let mut buf = [0u8; 4096];
    let n = std::fs::File::from(report).read(&mut buf);
    let _ = nix::sys::wait::waitpid(first, None);
    let text = String::from_utf8_lossy(&buf[..n.unwrap_or(0)]).into_owned();
    let failed = |detail: String| PlatformError::Failed {
        call: "joining the container's namespaces (the init's first stage)".into(),
        detail,
    };
    match text.split_at_checked(1) {
        Some(("P", pid)) => pid
            .parse()
            .map(Pid::from_raw)
            .map_err(|_| failed(format!("reported {text:?}"))),
        Some(("E", e)) => Err(failed(e.to_string())),
        _ => Err(failed("it exited before cloning the init".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_of_a_map_is_its_inside_0() {
        assert_eq!(root_of("         0     100000      65536\n"), Some(100000));
        assert_eq!(root_of("1 5 10\n0 7 1\n"), Some(7));
        assert_eq!(root_of("1 5 10\n"), None);
        assert_eq!(root_of(""), None);
    }

    #[test]
    fn the_hosts_user_namespace_has_root_0() {
        let j = Join {
            index: 0,
            flag: CloneFlags::CLONE_NEWUSER,
            path: "/proc/self/ns/user".into(),
        };
        assert_eq!(host_root(&j).unwrap(), (0, 0));
    }
}
