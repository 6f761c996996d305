//! Which processes are the container's. With a PID namespace of its own (the init is its
//! pid 1), every process of that namespace; otherwise (the runtime's PID namespace, or one
//! joined by path, which other processes share) the processes in the container's cgroups,
//! as runc lists them: listing the whole namespace would make `kill --all` and `delete`
//! signal processes that are not the container's.

use std::path::{Path, PathBuf};

use super::procfs;

/// How deep under a container cgroup its processes are looked for (a container that may
/// write its cgroup can make children; nothing legitimate nests this deep).
const MAX_DEPTH: usize = 16;

/// Whether `pid` is pid 1 of the innermost PID namespace it is in (the last `NSpid` field
/// of its status).
pub fn is_namespace_init(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("NSpid:"))
                .and_then(|l| l.split_whitespace().last().map(|f| f == "1"))
        })
        .unwrap_or(false)
}

fn members(dir: &Path, depth: usize, out: &mut Vec<i32>) {
    if let Ok(text) = std::fs::read_to_string(dir.join("cgroup.procs")) {
        out.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    }
    if depth >= MAX_DEPTH {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        // Cgroup directories are never links; file_type does not follow one.
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            members(&e.path(), depth + 1, out);
        }
    }
}

/// The live processes in `cgroups` (and their descendants), `init` first when among them.
pub fn in_cgroups(cgroups: &[PathBuf], init: i32) -> Vec<i32> {
    let mut pids = Vec::new();
    for dir in cgroups {
        members(dir, 0, &mut pids);
    }
    pids.sort_unstable_by_key(|p| (*p != init, *p));
    pids.dedup();
    pids.retain(|p| procfs::start_time(*p).is_some());
    pids
}

/// The container's processes, `init` first: its PID namespace's when it has its own, its
/// cgroups' otherwise (only the init when it has no cgroups).
pub fn of_container(cgroups: &[PathBuf], init: i32) -> Vec<i32> {
    if is_namespace_init(init) {
        return procfs::pids_in_namespace_of(init);
    }
    let mut pids = in_cgroups(cgroups, init);
    if !pids.contains(&init) && procfs::start_time(init).is_some() {
        pids.insert(0, init);
    }
    pids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_of_the_hosts_namespace_is_no_namespace_init_unless_pid_1() {
        let me = std::process::id() as i32;
        assert!(!is_namespace_init(me));
        assert!(is_namespace_init(1) || !std::path::Path::new("/proc/1/status").exists());
    }

    #[test]
    fn without_a_pid_namespace_only_cgroup_members_are_listed() {
        let me = std::process::id() as i32;
        // No cgroups: the init alone, never the whole host namespace.
        assert_eq!(of_container(&[], me), vec![me]);
        let dir = std::env::temp_dir().join(format!("stockade-pids-{me}"));
        std::fs::create_dir_all(dir.join("child")).unwrap();
        std::fs::write(dir.join("cgroup.procs"), format!("{me}\n")).unwrap();
        std::fs::write(dir.join("child/cgroup.procs"), "1\n999999999\n").unwrap();
        let listed = in_cgroups(std::slice::from_ref(&dir), me);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(listed, vec![me, 1]);
    }
}
