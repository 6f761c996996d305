//! nmount(2) and unmount(2) in the model, as sys/kern/vfs_mount.c and each file system's
//! vfsops do them.

use std::path::{Path, PathBuf};

use nix::errno::Errno;

use super::ModelKernel;
use crate::platform::freebsd::kernel::KernelError;
use crate::platform::freebsd_plan::{
    MNT_BYFSID, MNT_FORCE, MNT_NOATIME, MNT_NOEXEC, MNT_NOSUID, MNT_NOSYMFOLLOW, MNT_RDONLY,
};

/// The host's root file system, on which every path no mount covers lies.
pub const ROOT_FSID: &str = "FSID:1:0";

/// One mounted file system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// `FSID:v0:v1`, unique among mounts (vfs_getnewfsid).
    pub fsid: String,
    pub fstype: String,
    pub path: PathBuf,
    pub from: Option<String>,
    pub flags: i32,
    /// devfs: the ruleset the mount applies (devfs_vfsops.c "ruleset").
    pub ruleset: Option<u16>,
    /// Every option as given, flag options with no value.
    pub options: Vec<(String, Option<String>)>,
}

/// vfs_mount.c `global_opts`: taken by every file system.
const GLOBAL_OPTS: &[&str] = &["errmsg", "fstype", "fspath", "ro", "rw", "nosuid", "noexec"];

/// Each file system's own option list: the one it passes to vfs_filteropt.
fn fs_opts(fstype: &str) -> Option<&'static [&'static str]> {
    Some(match fstype {
        // sys/fs/devfs/devfs_vfsops.c devfs_opts.
        "devfs" => &["from", "export", "ruleset"],
        // sys/fs/tmpfs/tmpfs_vfsops.c tmpfs_opts (FreeBSD 14).
        "tmpfs" => &[
            "from",
            "easize",
            "size",
            "maxfilesize",
            "inodes",
            "uid",
            "gid",
            "mode",
            "export",
            "union",
            "nonc",
            "nomtime",
            "nosymfollow",
            "pgread",
        ],
        // sys/fs/nullfs/null_vfsops.c reads "from" (or "target").
        "nullfs" => &["from", "target"],
        // sys/fs/fdescfs/fdesc_vfsops.c reads "linrdlnk" and "nodup".
        "fdescfs" => &["from", "linrdlnk", "nodup"],
        // sys/fs/pseudofs (procfs, linprocfs, linsysfs) takes no option of its own.
        "procfs" | "linprocfs" | "linsysfs" => &["from"],
        _ => return None,
    })
}

/// The flags nmount's `flags` argument may carry here (sys/sys/mount.h MNT_*); the model
/// refuses others rather than guess what they do.
const FLAGS: i32 = MNT_RDONLY | MNT_NOSUID | MNT_NOEXEC | MNT_NOATIME | MNT_NOSYMFOLLOW;

fn text(v: &Option<Vec<u8>>) -> Result<Option<String>, KernelError> {
    match v {
        None => Ok(None),
        Some(b) => {
            // vfs_buildopts: a string value must be NUL-terminated.
            let b = b
                .strip_suffix(&[0])
                .ok_or_else(|| KernelError::with_msg(Errno::EINVAL, "value not NUL-terminated"))?;
            Ok(Some(String::from_utf8_lossy(b).into_owned()))
        }
    }
}

/// vfs_filteropt: an option is known when it, or it without a leading "no", is in the
/// global list or the file system's.
fn option_known(name: &str, own: &[&str]) -> bool {
    let bare = name.strip_prefix("no");
    [GLOBAL_OPTS, own]
        .iter()
        .any(|list| list.iter().any(|o| *o == name || Some(*o) == bare))
}

pub fn nmount(
    k: &mut ModelKernel,
    iov: &[(String, Option<Vec<u8>>)],
    flags: i32,
) -> Result<(), KernelError> {
    if flags & !FLAGS != 0 {
        return Err(KernelError::with_msg(
            Errno::EINVAL,
            format!("the model does not know mount flags {:#x}", flags & !FLAGS),
        ));
    }
    let mut options = Vec::new();
    for (n, v) in iov {
        options.push((n.clone(), text(v)?));
    }
    let get = |name: &str| {
        options
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.clone())
    };
    let fstype = get("fstype").ok_or_else(|| KernelError::with_msg(Errno::EINVAL, "no fstype"))?;
    let fspath = get("fspath").ok_or_else(|| KernelError::with_msg(Errno::EINVAL, "no fspath"))?;
    let own = fs_opts(&fstype)
        .ok_or_else(|| KernelError::with_msg(Errno::ENODEV, format!("Invalid fstype: {fstype}")))?;
    for (n, _) in &options {
        if !option_known(n, own) {
            return Err(KernelError::with_msg(
                Errno::EINVAL,
                format!("mount option <{n}> is unknown"),
            ));
        }
    }
    if !Path::new(&fspath).is_absolute() {
        return Err(KernelError::errno(Errno::EINVAL));
    }
    let from = get("from");
    if fstype == "nullfs" && from.is_none() && get("target").is_none() {
        return Err(KernelError::with_msg(Errno::EINVAL, "missing \"from\""));
    }
    let ruleset =
        match get("ruleset") {
            // devfs_vfsops.c: vfs_scanopt "%d", then 0..65535 ("invalid ruleset specification").
            Some(r) => Some(r.parse::<u16>().map_err(|_| {
                KernelError::with_msg(Errno::EINVAL, "invalid ruleset specification")
            })?),
            None => None,
        };
    let mut flags = flags;
    if options.iter().any(|(n, _)| n == "ro") {
        flags |= MNT_RDONLY;
    }
    if options.iter().any(|(n, _)| n == "nosuid") {
        flags |= MNT_NOSUID;
    }
    if options.iter().any(|(n, _)| n == "noexec") {
        flags |= MNT_NOEXEC;
    }
    k.next_fsid += 1;
    k.mounts.push(Mount {
        fsid: format!("FSID:{}:0", k.next_fsid),
        fstype,
        path: PathBuf::from(fspath),
        from,
        flags,
        ruleset,
        options,
    });
    Ok(())
}

/// `unmount(2)`: EINVAL when `path` is not a mount point; EBUSY while another mount is
/// stacked below it (dounmount: mnt_uppers / covered vnodes) or, without MNT_FORCE, while
/// a live process has its root below it (a jail's processes hold its root vnode).
/// With MNT_BYFSID, `path` is `FSID:v0:v1` (sys_unmount: sscanf "FSID:%d:%d", EINVAL when
/// it does not parse, ENOENT when no mount has it).
pub fn unmount(k: &mut ModelKernel, path: &Path, flags: i32) -> Result<(), KernelError> {
    if flags & !(MNT_FORCE | MNT_BYFSID) != 0 {
        return Err(KernelError::errno(Errno::EINVAL));
    }
    let found = if flags & MNT_BYFSID != 0 {
        let id = path.to_str().unwrap_or_default();
        let parsed = id.strip_prefix("FSID:").and_then(|r| r.split_once(':'));
        if !parsed.is_some_and(|(a, b)| a.parse::<i32>().is_ok() && b.parse::<i32>().is_ok()) {
            return Err(KernelError::errno(Errno::EINVAL));
        }
        match k.mounts.iter().rposition(|m| m.fsid == id) {
            Some(i) => Some(i),
            None => return Err(KernelError::errno(Errno::ENOENT)),
        }
    } else {
        k.mounts.iter().rposition(|m| m.path == path)
    };
    let Some(i) = found else {
        return Err(KernelError::errno(Errno::EINVAL));
    };
    let path = k.mounts[i].path.clone();
    let path = path.as_path();
    if k.mounts[i + 1..]
        .iter()
        .any(|m| m.path.starts_with(path) && m.path != path)
    {
        return Err(KernelError::errno(Errno::EBUSY));
    }
    let busy = k.procs.values().any(|p| {
        !p.zombie
            && k.jails
                .get(&p.jid)
                .is_some_and(|j| j.path.starts_with(path))
    });
    if busy && flags & MNT_FORCE == 0 {
        return Err(KernelError::errno(Errno::EBUSY));
    }
    k.mounts.remove(i);
    Ok(())
}

/// statfs(2) `f_fsid` of `path`: the topmost mount whose mount point is `path` or one of
/// its ancestors; the root file system when none is.
pub fn fsid(k: &ModelKernel, path: &Path) -> String {
    k.mounts
        .iter()
        .rev()
        .find(|m| path.starts_with(&m.path))
        .map_or_else(|| ROOT_FSID.to_string(), |m| m.fsid.clone())
}
