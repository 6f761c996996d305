//! `linux.sysctl`: kernel parameters set for the container. Only parameters the kernel
//! keeps per namespace are accepted, and only when the container has that namespace of
//! its own — otherwise the write would change the host — as runc decides: SysV IPC and
//! POSIX message queue parameters need an IPC namespace, `net.*` a network namespace,
//! `kernel.hostname`/`kernel.domainname` a UTS namespace. They are written by the init
//! through `/proc/sys` once it is in its namespaces, before anything of the container runs.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use nix::sched::CloneFlags;

use crate::platform::PlatformError;

/// The SysV IPC parameters the IPC namespace carries.
const IPC_KEYS: [&str; 8] = [
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// The namespace a parameter belongs to, or `None` for a host-wide one.
pub fn namespace_of(key: &str) -> Option<CloneFlags> {
    if IPC_KEYS.contains(&key) || key.starts_with("fs.mqueue.") {
        Some(CloneFlags::CLONE_NEWIPC)
    } else if key.starts_with("net.") {
        Some(CloneFlags::CLONE_NEWNET)
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        Some(CloneFlags::CLONE_NEWUTS)
    } else {
        None
    }
}

fn refuse(key: &str, why: String) -> PlatformError {
    PlatformError::Failed {
        call: format!("linux.sysctl[{}]", stockade_quote::quote(key)),
        detail: why,
    }
}

/// The file under `/proc/sys` for `key` (`a.b.c` or `a/b/c`); no component may be empty,
/// `.` or `..`.
fn path_of(key: &str) -> Result<PathBuf, PlatformError> {
    let sep = if key.contains('/') { '/' } else { '.' };
    let mut path = PathBuf::from("/proc/sys");
    for part in key.split(sep) {
        if part.is_empty() || part == "." || part == ".." || part.contains('\0') {
            return Err(refuse(
                key,
                "not a kernel parameter name (expected names such as net.ipv4.ip_forward)".into(),
            ));
        }
        path.push(part);
    }
    Ok(path)
}

/// The parameters to write, checked: each is namespaced, and its namespace is the
/// container's own (`own`: the namespaces made new or joined by path).
pub fn plan(
    sysctl: Option<&std::collections::HashMap<String, String>>,
    own: CloneFlags,
) -> Result<Vec<(PathBuf, String)>, PlatformError> {
    let mut keys: Vec<(&String, &String)> = sysctl.into_iter().flatten().collect();
    // A stable order: the same config writes the same way.
    keys.sort();
    let mut out = Vec::with_capacity(keys.len());
    for (key, value) in keys {
        // runc accepts the slash form too.
        let dotted = key.replace('/', ".");
        let Some(ns) = namespace_of(&dotted) else {
            return Err(refuse(
                key,
                "not a namespaced kernel parameter; a container may only set SysV IPC \
                 (kernel.msg*, kernel.sem, kernel.shm*), fs.mqueue.*, net.* and \
                 kernel.hostname/domainname parameters"
                    .into(),
            ));
        };
        if !own.contains(ns) {
            let which = match ns {
                CloneFlags::CLONE_NEWIPC => "ipc",
                CloneFlags::CLONE_NEWNET => "network",
                _ => "uts",
            };
            return Err(refuse(
                key,
                format!("the container shares the host's {which} namespace, so this would change the host; add a {which} namespace to linux.namespaces"),
            ));
        }
        out.push((path_of(key)?, value.clone()));
    }
    Ok(out)
}

/// Writes each parameter (in the init, inside its namespaces).
pub fn apply(params: &[(PathBuf, String)]) -> Result<(), PlatformError> {
    for (path, value) in params {
        std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(path)
            .and_then(|mut f| f.write_all(value.as_bytes()))
            .map_err(|e| {
                PlatformError::io(
                    format!(
                        "writing {} to {}",
                        stockade_quote::quote(value),
                        path.display()
                    ),
                    &e,
                )
            })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_classified_by_namespace() {
        assert_eq!(
            namespace_of("kernel.shmmax"),
            Some(CloneFlags::CLONE_NEWIPC)
        );
        assert_eq!(
            namespace_of("fs.mqueue.queues_max"),
            Some(CloneFlags::CLONE_NEWIPC)
        );
        assert_eq!(
            namespace_of("net.ipv4.ip_forward"),
            Some(CloneFlags::CLONE_NEWNET)
        );
        assert_eq!(
            namespace_of("kernel.domainname"),
            Some(CloneFlags::CLONE_NEWUTS)
        );
        assert_eq!(namespace_of("kernel.core_pattern"), None);
        assert_eq!(namespace_of("kernel.shm"), None);
        assert_eq!(namespace_of("vm.overcommit_memory"), None);
    }

    fn map(pairs: &[(&str, &str)]) -> std::collections::HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_parameter_of_a_shared_namespace_or_the_host_is_refused_by_name() {
        let all = CloneFlags::CLONE_NEWIPC | CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWUTS;
        let ok = plan(
            Some(&map(&[
                ("net.ipv4.ip_forward", "1"),
                ("kernel.shmmni", "8"),
            ])),
            all,
        )
        .unwrap();
        assert_eq!(
            ok,
            vec![
                (PathBuf::from("/proc/sys/kernel/shmmni"), "8".to_string()),
                (
                    PathBuf::from("/proc/sys/net/ipv4/ip_forward"),
                    "1".to_string()
                ),
            ]
        );
        for (key, own, want) in [
            (
                "net.ipv4.ip_forward",
                CloneFlags::CLONE_NEWIPC,
                "network namespace",
            ),
            ("kernel.msgmax", CloneFlags::CLONE_NEWNET, "ipc namespace"),
            ("kernel.hostname", CloneFlags::CLONE_NEWNET, "uts namespace"),
            ("kernel.core_pattern", all, "not a namespaced"),
            (
                "net...kernel.core_pattern",
                all,
                "not a kernel parameter name",
            ),
            (
                "net/../kernel/core_pattern",
                all,
                "not a kernel parameter name",
            ),
        ] {
            let e = plan(Some(&map(&[(key, "1")])), own)
                .unwrap_err()
                .to_string();
            assert!(e.contains(want) && e.contains("linux.sysctl"), "{key}: {e}");
        }
        assert!(plan(None, CloneFlags::empty()).unwrap().is_empty());
    }
}
