//! A busybox root filesystem, built at test time from the host's static busybox (Debian's
//! busybox-static): /bin/busybox plus a symlink per applet, /etc/passwd and /etc/group with
//! root, a user 1000 and extra groups, and the usual empty mount points.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

/// uid/gid of the unprivileged user in /etc/passwd.
pub const USER_UID: u32 = 1000;
pub const USER_GID: u32 = 1000;
/// Extra groups the user is a member of in /etc/group.
pub const EXTRA_GIDS: [u32; 2] = [1001, 1002];
/// A file that exists only inside the test root filesystems, never on the host.
pub const MARKER_FILE: &str = "etc/stockade-spec-rootfs";
pub const MARKER_TEXT: &str = "inside-the-container-rootfs";

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
user:x:1000:1000:user:/home/user:/bin/sh\n\
nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";

const GROUP: &str = "root:x:0:\n\
user:x:1000:\n\
extra1:x:1001:user\n\
extra2:x:1002:user\n\
nogroup:x:65534:\n";

fn err(what: &str, path: &Path, e: std::io::Error) -> String {
    format!("{what} {}: {e}", path.display())
}

fn mkdir(path: &Path, mode: u32) -> Result<(), String> {
    fs::create_dir_all(path).map_err(|e| err("mkdir", path, e))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(|e| err("chmod", path, e))
}

fn write(path: &Path, text: &str, mode: u32) -> Result<(), String> {
    fs::write(path, text).map_err(|e| err("write", path, e))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(|e| err("chmod", path, e))
}

/// Builds the root filesystem in `dir` (created if missing).
pub fn build(dir: &Path, busybox: &Path, applets: &[String]) -> Result<(), String> {
    mkdir(dir, 0o755)?;
    for (d, mode) in [
        ("bin", 0o755),
        ("sbin", 0o755),
        ("usr/bin", 0o755),
        ("usr/sbin", 0o755),
        ("usr/local/bin", 0o755),
        ("etc", 0o755),
        ("proc", 0o555),
        ("dev", 0o755),
        ("sys", 0o555),
        ("tmp", 0o1777),
        ("root", 0o700),
        ("home/user", 0o755),
        ("var/run", 0o755),
    ] {
        mkdir(&dir.join(d), mode)?;
    }
    let home = dir.join("home/user");
    std::os::unix::fs::chown(&home, Some(USER_UID), Some(USER_GID))
        .map_err(|e| err("chown", &home, e))?;

    let bb = dir.join("bin/busybox");
    fs::copy(busybox, &bb)
        .map_err(|e| format!("copying {} to {}: {e}", busybox.display(), bb.display()))?;
    fs::set_permissions(&bb, fs::Permissions::from_mode(0o755))
        .map_err(|e| err("chmod", &bb, e))?;
    for applet in applets {
        if applet == "busybox" || applet.is_empty() || applet.contains('/') {
            continue;
        }
        let link = dir.join("bin").join(applet);
        if !link.exists() {
            symlink("busybox", &link).map_err(|e| err("symlink", &link, e))?;
        }
    }

    write(&dir.join("etc/passwd"), PASSWD, 0o644)?;
    write(&dir.join("etc/group"), GROUP, 0o644)?;
    write(&dir.join("etc/hostname"), "rootfs-hostname\n", 0o644)?;
    write(&dir.join(MARKER_FILE), &format!("{MARKER_TEXT}\n"), 0o644)?;
    Ok(())
}

/// Writes an executable shell script into the root filesystem (path relative to it).
pub fn script(rootfs: &Path, rel: &str, body: &str) -> Result<(), String> {
    let path = rootfs.join(rel.trim_start_matches('/'));
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| err("mkdir", parent, e))?;
    }
    write(&path, &format!("#!/bin/sh\n{body}\n"), 0o755)
}
