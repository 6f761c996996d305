//! `process.apparmorProfile`, `process.selinuxLabel` and `linux.mountLabel`, as runc treats
//! them: an AppArmor profile or SELinux label is set for the next exec through the
//! process's own attr files (taking effect at execve); asking for one on a host without that
//! LSM is a create error. `linux.mountLabel` only means something with SELinux, where
//! stockade does not yet relabel mounts: refused there, warned about and ignored elsewhere
//! (runc ignores it when SELinux is off).

use crate::platform::PlatformError;
use crate::process::Confinement;

/// Whether AppArmor is enabled on this host.
pub fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.starts_with('Y'))
}

/// Whether SELinux is enabled on this host (selinuxfs is mounted).
pub fn selinux_enabled() -> bool {
    std::path::Path::new("/sys/fs/selinux/enforce").exists()
}

fn refused(field: &str, detail: impl Into<String>) -> PlatformError {
    PlatformError::Failed {
        call: field.to_string(),
        detail: detail.into(),
    }
}

/// At create: refuses labels the host cannot apply.
pub fn check(c: &Confinement, mount_label: Option<&str>) -> Result<(), PlatformError> {
    if let Some(p) = c.apparmor_profile.as_deref().filter(|p| !p.is_empty()) {
        if !apparmor_enabled() {
            return Err(refused(
                "process.apparmorProfile",
                format!(
                    "{} is set but AppArmor is not enabled on this host; remove the field or enable AppArmor",
                    stockade_quote::quote(p)
                ),
            ));
        }
    }
    if let Some(l) = c.selinux_label.as_deref().filter(|l| !l.is_empty()) {
        if !selinux_enabled() {
            return Err(refused(
                "process.selinuxLabel",
                format!(
                    "{} is set, but SELinux is disabled or not supported on this host",
                    stockade_quote::quote(l)
                ),
            ));
        }
    }
    if let Some(l) = mount_label.filter(|l| !l.is_empty()) {
        if selinux_enabled() {
            return Err(refused(
                "linux.mountLabel",
                format!(
                    "{}: stockade does not relabel mounts (context=) yet; remove the field",
                    stockade_quote::quote(l)
                ),
            ));
        }
        tracing::warn!(
            "linux.mountLabel {} is ignored: SELinux is not enabled on this host",
            stockade_quote::quote(l)
        );
    }
    Ok(())
}

/// Writes `value` to this thread's LSM attribute file for the next exec. The file must be
/// on procfs: the container's `/proc` may be its image's own directory, with links planted.
fn write_attr(paths: &[&str], value: &str, field: &str) -> Result<(), PlatformError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut last = None;
    for p in paths {
        match std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(p)
        {
            Ok(mut f) => {
                use std::io::Write;
                let on_proc = nix::sys::statfs::fstatfs(&f)
                    .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC);
                if !on_proc {
                    return Err(refused(
                        field,
                        format!("{p} is not on procfs; mount proc at /proc in the container"),
                    ));
                }
                return f
                    .write_all(value.as_bytes())
                    .map_err(|e| refused(field, format!("writing {p}: {e}")));
            }
            Err(e) => last = Some(format!("opening {p}: {e}")),
        }
    }
    Err(refused(field, last.unwrap_or_default()))
}

/// In the process, before its capabilities are dropped: the labels for the exec.
pub fn apply(c: &Confinement) -> Result<(), PlatformError> {
    if let Some(p) = c.apparmor_profile.as_deref().filter(|p| !p.is_empty()) {
        write_attr(
            &[
                "/proc/thread-self/attr/apparmor/exec",
                "/proc/thread-self/attr/exec",
            ],
            &format!("exec {p}"),
            "process.apparmorProfile",
        )?;
    }
    if let Some(l) = c.selinux_label.as_deref().filter(|l| !l.is_empty()) {
        write_attr(&["/proc/thread-self/attr/exec"], l, "process.selinuxLabel")?;
    }
    Ok(())
}
