//! `linux.rootfsPropagation`: the propagation of the container's root mount, applied as
//! runc does — to `/` of the new mount namespace before the root is bound, and to the new
//! `/` again after `pivot_root`. Without it the whole tree is made private (runc makes it
//! `rslave`; stockade keeps the stricter choice: nothing from the host propagates in).

use std::path::Path;

use nix::mount::{mount, MsFlags};

use crate::platform::PlatformError;

/// The flags for a propagation name (`shared`, `rslave`…).
pub fn parse(value: Option<&str>) -> Result<Option<MsFlags>, PlatformError> {
    let Some(v) = value.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let (rec, base) = match v.strip_prefix('r') {
        Some(rest) if !rest.is_empty() => (MsFlags::MS_REC, rest),
        _ => (MsFlags::empty(), v),
    };
    let kind = match base {
        "shared" => MsFlags::MS_SHARED,
        "slave" => MsFlags::MS_SLAVE,
        "private" => MsFlags::MS_PRIVATE,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        _ => {
            return Err(PlatformError::Failed {
                call: format!("linux.rootfsPropagation {}", stockade_quote::quote(v)),
                detail: "expected shared, slave, private or unbindable, or one of them with an r prefix (rshared…)".into(),
            })
        }
    };
    Ok(Some(kind | rec))
}

fn call(what: String, e: nix::errno::Errno) -> PlatformError {
    PlatformError::call(what, e)
}

/// Sets the propagation of `/` in the new mount namespace, first thing in it: `flags`, or
/// recursively private. A shared `/` would make `pivot_root` fail (and the root's parent
/// mount shared), so then the mount holding the root's parent is made private.
pub fn prepare(root: &Path, flags: Option<MsFlags>) -> Result<(), PlatformError> {
    let f = flags.unwrap_or(MsFlags::MS_REC | MsFlags::MS_PRIVATE);
    mount(None::<&str>, "/", None::<&str>, f, None::<&str>)
        .map_err(|e| call(format!("setting the propagation of / to {f:?}"), e))?;
    if flags.is_some_and(|f| f.contains(MsFlags::MS_SHARED)) {
        let parent = root.parent().unwrap_or(root);
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| PlatformError::io("reading /proc/self/mountinfo", &e))?;
        let holder = super::mountinfo::mount_points(&mountinfo)
            .into_iter()
            .filter(|m| parent.starts_with(m))
            .max_by_key(|m| m.components().count())
            .unwrap_or_else(|| "/".into());
        mount(
            None::<&str>,
            &holder,
            None::<&str>,
            MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .map_err(|e| {
            call(
                format!("making {} private for pivot_root", holder.display()),
                e,
            )
        })?;
    }
    Ok(())
}

/// After `pivot_root`: the old root (at `.`) is made a recursive slave, so detaching it
/// cannot unmount anything on the host through a shared peer group.
pub fn before_detaching_old_root() -> Result<(), PlatformError> {
    mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| call("making the old root a slave before detaching it".into(), e))
}

/// After `pivot_root`: the configured propagation, on the new `/`.
pub fn finish(flags: Option<MsFlags>) -> Result<(), PlatformError> {
    match flags {
        Some(f) => mount(None::<&str>, "/", None::<&str>, f, None::<&str>)
            .map_err(|e| call(format!("setting the propagation of the new / to {f:?}"), e)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_name_and_its_recursive_form() {
        let p = |v: &str| parse(Some(v)).unwrap().unwrap();
        assert_eq!(p("shared"), MsFlags::MS_SHARED);
        assert_eq!(p("rshared"), MsFlags::MS_SHARED | MsFlags::MS_REC);
        assert_eq!(p("slave"), MsFlags::MS_SLAVE);
        assert_eq!(p("rslave"), MsFlags::MS_SLAVE | MsFlags::MS_REC);
        assert_eq!(p("private"), MsFlags::MS_PRIVATE);
        assert_eq!(p("rprivate"), MsFlags::MS_PRIVATE | MsFlags::MS_REC);
        assert_eq!(p("unbindable"), MsFlags::MS_UNBINDABLE);
        assert_eq!(p("runbindable"), MsFlags::MS_UNBINDABLE | MsFlags::MS_REC);
        assert_eq!(parse(None).unwrap(), None);
        assert_eq!(parse(Some("")).unwrap(), None);
        for bad in ["r", "rr", "Shared", "rbind"] {
            let e = parse(Some(bad)).unwrap_err().to_string();
            assert!(e.contains("linux.rootfsPropagation"), "{bad}: {e}");
        }
    }
}
