//! The root filesystem containerd hands over as mounts (a snapshot: overlay, bind): mounted
//! at `<bundle>/rootfs` before create, unmounted at delete, as runc's shim does.

use std::path::{Path, PathBuf};

use containerd_shim_protos::types::mount::Mount;

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("mounting {kind} {src} on {target}: {errno}")]
    Mount {
        kind: String,
        src: String,
        target: PathBuf,
        errno: nix::errno::Errno,
    },
    #[error("unmounting {target}: {errno}")]
    Unmount {
        target: PathBuf,
        errno: nix::errno::Errno,
    },
    #[error("creating {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("containerd sent {n} rootfs mounts; the stockade shim mounts one (a snapshot)")]
    TooMany { n: usize },
    #[cfg(target_os = "freebsd")]
    #[error("containerd's rootfs mount of type {}: the stockade shim mounts bind/nullfs and zfs snapshots on FreeBSD (snapshotter native or zfs)", stockade_quote::quote(.kind))]
    Unsupported { kind: String },
}

/// Mount flags and the filesystem data string from containerd's option list.
#[cfg(target_os = "linux")]
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Options {
    pub readonly: bool,
    pub bind: bool,
    pub recursive: bool,
    pub nosuid: bool,
    pub nodev: bool,
    pub noexec: bool,
    /// Everything else, comma-joined (lowerdir=…, upperdir=…).
    pub data: String,
}

#[cfg(target_os = "linux")]
pub fn parse_options(opts: &[String]) -> Options {
    let mut o = Options::default();
    let mut data = Vec::new();
    for opt in opts {
        match opt.as_str() {
            "ro" => o.readonly = true,
            "rw" => o.readonly = false,
            "bind" => o.bind = true,
            "rbind" => {
                o.bind = true;
                o.recursive = true
            }
            "nosuid" => o.nosuid = true,
            "nodev" => o.nodev = true,
            "noexec" => o.noexec = true,
            "suid" | "dev" | "exec" | "defaults" => {}
            other => data.push(other),
        }
    }
    o.data = data.join(",");
    o
}

/// `<bundle>/rootfs`.
pub fn target(bundle: &Path) -> PathBuf {
    bundle.join("rootfs")
}

/// Mounts `mounts` (zero or one) at `<bundle>/rootfs`; true when something was mounted.
pub fn mount_all(bundle: &Path, mounts: &[Mount]) -> Result<bool, RootfsError> {
    match mounts {
        [] => Ok(false),
        [m] => {
            let t = target(bundle);
            std::fs::create_dir_all(&t).map_err(|source| RootfsError::Dir {
                path: t.clone(),
                source,
            })?;
            sys::mount(m, &t)?;
            Ok(true)
        }
        _ => Err(RootfsError::TooMany { n: mounts.len() }),
    }
}

/// Unmounts `<bundle>/rootfs` (lazily: a process still holding it does not keep it busy);
/// nothing mounted there is not an error.
pub fn unmount(bundle: &Path) -> Result<(), RootfsError> {
    sys::unmount(&target(bundle))
}

#[cfg(target_os = "linux")]
mod sys {
    use super::*;
    use nix::mount::{MntFlags, MsFlags};

    pub fn mount(m: &Mount, t: &Path) -> Result<(), RootfsError> {
        let o = parse_options(&m.options);
        let mut flags = MsFlags::empty();
        flags.set(MsFlags::MS_RDONLY, o.readonly);
        flags.set(MsFlags::MS_BIND, o.bind);
        flags.set(MsFlags::MS_REC, o.recursive);
        flags.set(MsFlags::MS_NOSUID, o.nosuid);
        flags.set(MsFlags::MS_NODEV, o.nodev);
        flags.set(MsFlags::MS_NOEXEC, o.noexec);
        let kind = if o.bind { None } else { Some(m.type_.as_str()) };
        let data = (!o.data.is_empty()).then_some(o.data.as_str());
        let err = |errno| RootfsError::Mount {
            kind: m.type_.clone(),
            src: m.source.clone(),
            target: t.to_path_buf(),
            errno,
        };
        nix::mount::mount(Some(m.source.as_str()), t, kind, flags, data).map_err(err)?;
        // A read-only bind takes a remount to hold.
        if o.bind && o.readonly {
            nix::mount::mount(
                None::<&str>,
                t,
                None::<&str>,
                flags | MsFlags::MS_REMOUNT,
                None::<&str>,
            )
            .map_err(err)?;
        }
        Ok(())
    }

    pub fn unmount(t: &Path) -> Result<(), RootfsError> {
        match nix::mount::umount2(t, MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => Ok(()),
            Err(errno) => Err(RootfsError::Unmount {
                target: t.to_path_buf(),
                errno,
            }),
        }
    }
}

/// FreeBSD: containerd's snapshot mounts are `bind` (the native snapshotter; containerd
/// itself turns it into nullfs on FreeBSD) or `nullfs`, and `zfs` (the zfs snapshotter: a
/// dataset), made with nmount(2). Anything else is refused naming its type.
#[cfg(target_os = "freebsd")]
mod sys {
    use super::*;
    use nix::mount::{MntFlags, Nmount};

    pub fn mount(m: &Mount, t: &Path) -> Result<(), RootfsError> {
        let readonly = m.options.iter().rev().find_map(|o| match o.as_str() {
            "ro" => Some(true),
            "rw" => Some(false),
            _ => None,
        });
        let fstype = match m.type_.as_str() {
            "bind" | "rbind" | "nullfs" => "nullfs",
            "zfs" => "zfs",
            other => {
                return Err(RootfsError::Unsupported {
                    kind: other.to_string(),
                })
            }
        };
        let mut flags = MntFlags::empty();
        flags.set(MntFlags::MNT_RDONLY, readonly.unwrap_or(false));
        Nmount::new()
            .str_opt_owned("fstype", fstype)
            .str_opt_owned("fspath", t)
            .str_opt_owned("from", m.source.as_str())
            .nmount(flags)
            .map_err(|e| RootfsError::Mount {
                kind: m.type_.clone(),
                src: m.source.clone(),
                target: t.to_path_buf(),
                errno: e.error(),
            })
    }

    pub fn unmount(t: &Path) -> Result<(), RootfsError> {
        match nix::mount::unmount(t, MntFlags::empty()) {
            Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => Ok(()),
            // A process the jail left behind still holds it: forced, as delete must finish.
            Err(nix::errno::Errno::EBUSY) => {
                nix::mount::unmount(t, MntFlags::MNT_FORCE).map_err(|errno| RootfsError::Unmount {
                    target: t.to_path_buf(),
                    errno,
                })
            }
            Err(errno) => Err(RootfsError::Unmount {
                target: t.to_path_buf(),
                errno,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn overlay_options_become_data() {
        let o = parse_options(&[
            "index=off".into(),
            "workdir=/w".into(),
            "upperdir=/u".into(),
            "lowerdir=/l1:/l2".into(),
        ]);
        assert_eq!(o.data, "index=off,workdir=/w,upperdir=/u,lowerdir=/l1:/l2");
        assert!(!o.bind && !o.readonly);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn bind_flags() {
        let o = parse_options(&["rbind".into(), "ro".into(), "nosuid".into()]);
        assert!(o.bind && o.recursive && o.readonly && o.nosuid && !o.nodev);
        assert_eq!(o.data, "");
        assert!(!parse_options(&["ro".into(), "rw".into()]).readonly);
    }

    #[test]
    fn more_than_one_mount_is_refused() {
        let m = Mount::new();
        let e = mount_all(Path::new("/nonexistent"), &[m.clone(), m]).unwrap_err();
        assert!(matches!(e, RootfsError::TooMany { n: 2 }));
        assert!(!mount_all(Path::new("/nonexistent"), &[]).unwrap());
    }
}
