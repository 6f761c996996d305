//! Mounts on Linux, made by the init inside its new mount namespace before pivot_root.
//! FreeBSD type names are mapped so that one bundle runs on both: `devfs` → a tmpfs `/dev`
//! with the standard devices, `fdescfs` → a `/dev/fd` link, `procfs`/`linprocfs` → proc,
//! `linsysfs` → sysfs, `nullfs` → bind.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};

use crate::mounts::{create_mount_point_reporting, resolve_in_root, FsType, MountSpec};
use crate::platform::PlatformError;

/// File system types the Linux backend mounts (besides bind mounts).
pub const LINUX_TYPES: &[&str] = &[
    "proc",
    "sysfs",
    "tmpfs",
    "devpts",
    "mqueue",
    "cgroup",
    "cgroup2",
    "devfs",
    "fdescfs",
    "procfs",
    "linprocfs",
    "linsysfs",
];

fn call(what: String, e: nix::errno::Errno) -> PlatformError {
    PlatformError::call(what, e)
}

/// Checks every mount's type before anything is made.
pub fn check(mounts: &[MountSpec]) -> Result<(), PlatformError> {
    for m in mounts {
        if let FsType::Named(t) = &m.fs {
            if !LINUX_TYPES.contains(&t.as_str()) {
                return Err(PlatformError::Unsupported {
                    what: format!("mounts[{}].type {t:?}", m.index),
                    os: "Linux",
                    hint: format!("accepted: bind, {}", LINUX_TYPES.join(", ")),
                });
            }
        }
    }
    Ok(())
}

/// Generic mount flags: (set, clear).
fn flags_of(m: &MountSpec) -> MsFlags {
    let mut f = MsFlags::empty();
    for o in &m.flags {
        match o.as_str() {
            "ro" => f.insert(MsFlags::MS_RDONLY),
            "rw" => f.remove(MsFlags::MS_RDONLY),
            "nosuid" => f.insert(MsFlags::MS_NOSUID),
            "suid" => f.remove(MsFlags::MS_NOSUID),
            "nodev" => f.insert(MsFlags::MS_NODEV),
            "dev" => f.remove(MsFlags::MS_NODEV),
            "noexec" => f.insert(MsFlags::MS_NOEXEC),
            "exec" => f.remove(MsFlags::MS_NOEXEC),
            "noatime" => f.insert(MsFlags::MS_NOATIME),
            "relatime" => f.insert(MsFlags::MS_RELATIME),
            "strictatime" => f.insert(MsFlags::MS_STRICTATIME),
            "nodiratime" => f.insert(MsFlags::MS_NODIRATIME),
            "sync" => f.insert(MsFlags::MS_SYNCHRONOUS),
            "dirsync" => f.insert(MsFlags::MS_DIRSYNC),
            "mand" => f.insert(MsFlags::MS_MANDLOCK),
            "lazytime" => f.insert(MsFlags::MS_LAZYTIME),
            "silent" => f.insert(MsFlags::MS_SILENT),
            _ => {}
        }
    }
    f
}

fn propagation_of(m: &MountSpec) -> Option<MsFlags> {
    m.propagation.last().map(|p| match p.as_str() {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        _ => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
    })
}

/// Makes `m` under `root`; `report` gets each mount point created on the root filesystem.
/// `cgroup_view` is what a mount of type `cgroup`/`cgroup2` shows.
pub fn mount_one(
    root: &Path,
    root_dev: u64,
    m: &MountSpec,
    cgroup_view: Option<&super::cgroups::CgroupView>,
    report: &mut dyn FnMut(&Path),
) -> Result<(), PlatformError> {
    let target = resolve_in_root(root, &m.destination)?;
    let file = matches!(m.fs, FsType::Bind { file: true, .. });
    if m.type_name() == "fdescfs" {
        return link_fd(&target);
    }
    let existed = std::fs::symlink_metadata(&target).is_ok();
    // Only what lands on the root filesystem itself outlives the mount namespace.
    create_mount_point_reporting(root, &target, file, root_dev, report)?;
    let flags = flags_of(m);
    // `tmpcopyup` (runc's extension, which Podman adds to every tmpfs it asks for): the
    // new tmpfs starts with a copy of what the directory it covers held.
    let copy_up = m.type_name() == "tmpfs" && m.data.iter().any(|d| d == TMPCOPYUP);
    let data = m
        .data
        .iter()
        .filter(|d| !(copy_up && *d == TMPCOPYUP))
        .cloned()
        .collect::<Vec<_>>()
        .join(",");
    let data = (!data.is_empty()).then_some(data.as_str());
    // Kept open across the mount so the covered directory can still be read.
    let covered = if copy_up {
        Some(std::fs::File::open(&target).map_err(|e| {
            PlatformError::io(format!("opening {} for tmpcopyup", target.display()), &e)
        })?)
    } else {
        None
    };
    match &m.fs {
        FsType::Bind {
            source, recursive, ..
        } => {
            let mut bind = MsFlags::MS_BIND;
            if *recursive {
                bind |= MsFlags::MS_REC;
            }
            mount(Some(source), &target, None::<&str>, bind, None::<&str>).map_err(|e| {
                call(
                    format!("bind mount of {} on {}", source.display(), target.display()),
                    e,
                )
            })?;
            if !flags.is_empty() {
                mount(
                    None::<&str>,
                    &target,
                    None::<&str>,
                    flags | MsFlags::MS_BIND | MsFlags::MS_REMOUNT,
                    None::<&str>,
                )
                .map_err(|e| {
                    call(
                        format!(
                            "remounting bind mount {} with {:?}",
                            target.display(),
                            m.flags
                        ),
                        e,
                    )
                })?;
            }
        }
        FsType::Named(t) if t == "cgroup" || t == "cgroup2" => {
            super::cgroups::mount_view(&target, t, cgroup_view)?;
        }
        FsType::Named(t) => {
            let (fstype, source) = match t.as_str() {
                "procfs" | "linprocfs" | "proc" => ("proc", "proc"),
                "linsysfs" | "sysfs" => ("sysfs", "sysfs"),
                "devfs" => ("tmpfs", "tmpfs"),
                other => (other, m.source.as_deref().unwrap_or(other)),
            };
            let mut flags = flags;
            let mut data = data.map(str::to_string);
            if t == "devfs" {
                // devfs rulesets have no Linux meaning; the standard device set is made below.
                flags |= MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC;
                data = Some("mode=755".into());
            }
            mount(Some(source), &target, Some(fstype), flags, data.as_deref()).map_err(|e| {
                call(
                    format!(
                        "mounting {fstype} on {} (options {:?})",
                        target.display(),
                        data
                    ),
                    e,
                )
            })?;
            if t == "devfs" {
                populate_dev(&target)?;
            }
            if let Some(dir) = &covered {
                use std::os::fd::AsRawFd;
                let from = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
                // A mount point made just now keeps the tmpfs's own mode (1777).
                let keep_mode = !existed || m.data.iter().any(|d| d.starts_with("mode="));
                copy_tree(&from, &target, keep_mode).map_err(|e| {
                    PlatformError::io(
                        format!("tmpcopyup of {} into its tmpfs", target.display()),
                        &e,
                    )
                })?;
            }
        }
    }
    if let Some(p) = propagation_of(m) {
        mount(None::<&str>, &target, None::<&str>, p, None::<&str>).map_err(|e| {
            call(
                format!(
                    "setting propagation {:?} on {}",
                    m.propagation,
                    target.display()
                ),
                e,
            )
        })?;
    }
    Ok(())
}

/// runc's mount option for a tmpfs that starts with the covered directory's contents.
const TMPCOPYUP: &str = "tmpcopyup";

/// Copies what the directory `from` holds into the existing directory `to`: directories,
/// regular files, symlinks and special files, with their modes and owners. Nothing is
/// followed through a symlink. Like runc, `to` itself takes `from`'s mode unless
/// `keep_mode`.
fn copy_tree(from: &Path, to: &Path, keep_mode: bool) -> std::io::Result<()> {
    use std::os::unix::fs::{symlink, PermissionsExt};
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let m = std::fs::symlink_metadata(&src)?;
        let kind = m.file_type();
        if kind.is_symlink() {
            symlink(std::fs::read_link(&src)?, &dst)?;
        } else if kind.is_dir() {
            std::fs::create_dir(&dst)?;
            copy_tree(&src, &dst, false)?;
        } else if kind.is_file() {
            std::fs::copy(&src, &dst)?;
        } else {
            let kind = SFlag::from_bits_truncate(m.mode() & SFlag::S_IFMT.bits());
            mknod(&dst, kind, Mode::from_bits_truncate(m.mode()), m.rdev())?;
        }
        if !kind.is_symlink() {
            std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(m.mode() & 0o7777))?;
        }
        std::os::unix::fs::lchown(&dst, Some(m.uid()), Some(m.gid()))?;
    }
    if !keep_mode {
        let mode = std::fs::metadata(from)?.mode() & 0o7777;
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

/// The devices every container's `/dev` has (runtime-spec "Default Devices").
const DEFAULT_DEVICES: &[(&str, u64, u64)] = &[
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// A FreeBSD-style `devfs` on Linux: the tmpfs just mounted gets a private devpts and a
/// `shm` directory; the device nodes come from [`default_devices`] like every `/dev`.
pub fn populate_dev(dev: &Path) -> Result<(), PlatformError> {
    let pts = dev.join("pts");
    std::fs::create_dir_all(&pts)
        .map_err(|e| PlatformError::io(format!("creating {}", pts.display()), &e))?;
    mount(
        Some("devpts"),
        &pts,
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620"),
    )
    .map_err(|e| call(format!("mounting devpts on {}", pts.display()), e))?;
    std::fs::create_dir_all(dev.join("shm"))
        .map_err(|e| PlatformError::io(format!("creating {}/shm", dev.display()), &e))
}

/// The runtime-spec's default devices (null, zero, full, random, urandom, tty, ptmx) and
/// the usual `/dev/fd`, `stdin`, `stdout`, `stderr` links, made where missing after all
/// mounts. Whatever lands on the root filesystem itself (no `/dev` mount) is reported so
/// delete removes it.
pub fn default_devices(
    root: &Path,
    root_dev: u64,
    nodes: DeviceNodes,
    report: &mut dyn FnMut(&Path),
) -> Result<(), PlatformError> {
    let dev = resolve_in_root(root, Path::new("/dev"))?;
    create_mount_point_reporting(root, &dev, false, root_dev, report)?;
    let on_root = std::fs::metadata(&dev)
        .map(|m| m.dev() == root_dev)
        .unwrap_or(false);
    for (name, major, minor) in DEFAULT_DEVICES {
        let path = dev.join(name);
        if std::fs::symlink_metadata(&path).is_err() {
            // Reported before (an intent) and after it is made, as mount points are.
            if on_root {
                report(&path);
            }
            match nodes {
                DeviceNodes::Make => {
                    make_device(&path, SFlag::S_IFCHR, *major, *minor, 0o666, 0, 0)?
                }
                DeviceNodes::BindFromHost => {
                    bind_host_device(&Path::new("/dev").join(name), &path)?
                }
            }
            if on_root {
                report(&path);
            }
        }
    }
    let ptmx_target = if dev.join("pts/ptmx").exists() {
        "pts/ptmx"
    } else {
        ""
    };
    let mut links = vec![
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ];
    if !ptmx_target.is_empty() {
        links.push(("ptmx", ptmx_target));
    }
    for (link, to) in links {
        let path = dev.join(link);
        if std::fs::symlink_metadata(&path).is_err() {
            if on_root {
                report(&path);
            }
            symlink_if_missing(to, &path)?;
            if on_root {
                report(&path);
            }
        }
    }
    Ok(())
}

fn symlink_if_missing(to: &str, at: &Path) -> Result<(), PlatformError> {
    match std::os::unix::fs::symlink(to, at) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(PlatformError::io(
            format!("linking {} to {to}", at.display()),
            &e,
        )),
    }
}

fn link_fd(target: &Path) -> Result<(), PlatformError> {
    symlink_if_missing("/proc/self/fd", target)
}

/// How device nodes get into the container's `/dev`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceNodes {
    /// mknod, as real root.
    Make,
    /// In a user namespace mknod is refused (and a node made would not open: its
    /// filesystem is mounted nodev for the namespace), so the host's node of the same path
    /// is bind-mounted onto an empty file, as runc does.
    BindFromHost,
}

/// Bind-mounts the host's device node `host` onto a new empty file `path`.
fn bind_host_device(host: &Path, path: &Path) -> Result<(), PlatformError> {
    let meta = std::fs::metadata(host).map_err(|e| {
        PlatformError::io(
            format!(
                "inspecting the host's {} to bind it into the user namespace",
                host.display()
            ),
            &e,
        )
    })?;
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    if !(meta.file_type().is_char_device() || meta.file_type().is_block_device()) {
        return Err(PlatformError::Failed {
            call: format!("binding the host's {} into the container", host.display()),
            detail: "it is not a device node".into(),
        });
    }
    if path.exists() {
        return Ok(());
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| {
            PlatformError::io(
                format!("creating {} for a device bind mount", path.display()),
                &e,
            )
        })?;
    mount(
        Some(host),
        path,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| {
        call(
            format!(
                "bind mount of the host's {} on {}",
                host.display(),
                path.display()
            ),
            e,
        )
    })
}

/// Makes a device node (replacing nothing: an existing node is left as it is).
pub fn make_device(
    path: &Path,
    kind: SFlag,
    major: u64,
    minor: u64,
    mode: u32,
    uid: u32,
    gid: u32,
) -> Result<(), PlatformError> {
    if path.exists() {
        return Ok(());
    }
    mknod(
        path,
        kind,
        Mode::from_bits_truncate(mode),
        makedev(major, minor),
    )
    .map_err(|e| call(format!("mknod {} ({major}:{minor})", path.display()), e))?;
    // mknod applies the umask; set the mode exactly.
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode))
        .map_err(|e| PlatformError::io(format!("chmod {}", path.display()), &e))?;
    nix::unistd::chown(
        path,
        Some(nix::unistd::Uid::from_raw(uid)),
        Some(nix::unistd::Gid::from_raw(gid)),
    )
    .map_err(|e| call(format!("chown {}", path.display()), e))
}

/// `linux.devices`: nodes made in the container's `/dev`.
pub fn make_linux_devices(
    root: &Path,
    devices: &[oci_spec::runtime::LinuxDevice],
    nodes: DeviceNodes,
) -> Result<(), PlatformError> {
    use oci_spec::runtime::LinuxDeviceType;
    for d in devices {
        let target = resolve_in_root(root, d.path())?;
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| PlatformError::io(format!("creating {}", parent.display()), &e))?;
        }
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            LinuxDeviceType::A => continue,
        };
        if nodes == DeviceNodes::BindFromHost && kind != SFlag::S_IFIFO {
            bind_host_device(d.path(), &target)?;
            continue;
        }
        make_device(
            &target,
            kind,
            d.major() as u64,
            d.minor() as u64,
            d.file_mode().unwrap_or(0o666),
            d.uid().unwrap_or(0),
            d.gid().unwrap_or(0),
        )?;
    }
    Ok(())
}

/// `linux.maskedPaths`, before pivot_root and after the mounts: directories get an empty
/// read-only tmpfs, files the host's `/dev/null`; paths that do not exist are skipped.
pub fn mask_paths(root: &Path, paths: &[String]) -> Result<(), PlatformError> {
    for p in paths {
        let path = resolve_in_root(root, Path::new(p))?;
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        let r = if meta.is_dir() {
            mount(
                Some("tmpfs"),
                &path,
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                Some("size=0k"),
            )
        } else {
            mount(
                Some("/dev/null"),
                &path,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
        };
        r.map_err(|e| call(format!("masking {p}"), e))?;
    }
    Ok(())
}

/// `linux.readonlyPaths`, before pivot_root: bound onto themselves read-only.
pub fn readonly_paths(root: &Path, paths: &[String]) -> Result<(), PlatformError> {
    for p in paths {
        let path = resolve_in_root(root, Path::new(p))?;
        if !path.exists() {
            continue;
        }
        mount(
            Some(&path),
            &path,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| call(format!("binding read-only path {p}"), e))?;
        mount(
            None::<&str>,
            &path,
            None::<&str>,
            MsFlags::MS_BIND
                | MsFlags::MS_REMOUNT
                | MsFlags::MS_RDONLY
                | MsFlags::MS_NOSUID
                | MsFlags::MS_NODEV
                | MsFlags::MS_NOEXEC,
            None::<&str>,
        )
        .or_else(|_| {
            mount(
                None::<&str>,
                &path,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
                None::<&str>,
            )
        })
        .map_err(|e| call(format!("making {p} read-only"), e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
