//! Plans as text: one line per step, the call and its arguments as the kernel or the
//! command gets them (golden files, `stockade explain`, debug logs).

use std::fmt;

use super::{
    MountOption, Step, ERRMSG_LEN, JAIL_CREATE, JAIL_UPDATE, MNT_FORCE, MNT_NOATIME, MNT_NOEXEC,
    MNT_NOSUID, MNT_NOSYMFOLLOW, MNT_RDONLY,
};
use crate::jail::{JailParam, ParamValue};

/// A readable rendering of a parameter value, for plans and messages.
fn param_text(p: &JailParam) -> String {
    match &p.value {
        ParamValue::Bool(_) => p.kernel_name(),
        ParamValue::Int(i) => format!("{}={i}", p.name),
        ParamValue::Str(s) => format!("{}={s:?}", p.name),
        ParamValue::JailSys(m) => format!("{}={}({})", p.name, m.as_str(), m.jailsys()),
        v @ (ParamValue::Ip4(_) | ParamValue::Ip6(_)) => {
            format!("{}={}", p.name, v.addresses().unwrap_or_default().join(","))
        }
    }
}

fn option_text((name, value): &MountOption) -> String {
    match value {
        None => name.clone(),
        Some(v) => {
            let v = v.strip_suffix(&[0]).unwrap_or(v);
            format!("{name}={}", String::from_utf8_lossy(v))
        }
    }
}

/// nmount flags by name (`0` for none).
pub fn mount_flags_text(flags: i32) -> String {
    let names: Vec<&str> = [
        (MNT_RDONLY, "MNT_RDONLY"),
        (MNT_NOEXEC, "MNT_NOEXEC"),
        (MNT_NOSUID, "MNT_NOSUID"),
        (MNT_NOSYMFOLLOW, "MNT_NOSYMFOLLOW"),
        (MNT_NOATIME, "MNT_NOATIME"),
        (MNT_FORCE, "MNT_FORCE"),
    ]
    .iter()
    .filter(|(bit, _)| flags & bit != 0)
    .map(|(_, n)| *n)
    .collect();
    if names.is_empty() {
        "0".into()
    } else {
        names.join("|")
    }
}

fn jail_flags_text(flags: i32) -> String {
    let mut names = Vec::new();
    if flags & JAIL_CREATE != 0 {
        names.push("JAIL_CREATE");
    }
    if flags & JAIL_UPDATE != 0 {
        names.push("JAIL_UPDATE");
    }
    names.join("|")
}

/// One line per step: the call and its arguments as the kernel or the command gets them.
impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(argv) = self.command() {
            return f.write_str(&argv.join(" "));
        }
        match self {
            Step::RaiseChildrenMax { parent, at_least } => write!(
                f,
                "jail_get(name={parent:?} children.max children.cur); if full: \
                 jail_set(name={parent:?} children.max=max(cur+1,{}), JAIL_UPDATE)",
                at_least + 1
            ),
            Step::MountPoint { target, file } => write!(
                f,
                "mount point {} ({})",
                target.display(),
                if *file { "file" } else { "directory" }
            ),
            Step::Nmount { iov, flags } => {
                let opts: Vec<String> = iov.iter().map(option_text).collect();
                write!(
                    f,
                    "nmount({} errmsg[{ERRMSG_LEN}], {})",
                    opts.join(" "),
                    mount_flags_text(*flags)
                )
            }
            Step::JailSet { params, flags } => {
                let ps: Vec<String> = params.iter().map(param_text).collect();
                write!(
                    f,
                    "jail_set({} errmsg[{ERRMSG_LEN}], {})",
                    ps.join(" "),
                    jail_flags_text(*flags)
                )
            }
            Step::RctlAddRule { rule } => write!(f, "rctl_add_rule({rule:?})"),
            Step::RctlRemoveRule { filter } => write!(f, "rctl_remove_rule({filter:?})"),
            Step::JailRemove { jid, name } => match (jid, name) {
                (Some(jid), Some(n)) => {
                    write!(f, "jail_get(jid={jid} name) == {n:?}: jail_remove({jid})")
                }
                (Some(jid), None) => write!(f, "jail_remove({jid})"),
                (None, Some(n)) => write!(f, "jail_get(name={n:?} jid): jail_remove(jid)"),
                (None, None) => Ok(()),
            },
            Step::Unmount { path, fsid, force } => match fsid {
                Some(id) => write!(
                    f,
                    "unmount({id}, MNT_BYFSID{}) of {}",
                    if *force { "|MNT_FORCE" } else { "" },
                    path.display()
                ),
                None => write!(
                    f,
                    "unmount({}, {})",
                    path.display(),
                    if *force { "MNT_FORCE" } else { "0" }
                ),
            },
            Step::RestoreChildrenMax { parent, previous } => write!(
                f,
                "jail_set(name={parent:?} children.max=max({previous},children.cur-dying), \
                 JAIL_UPDATE)"
            ),
            Step::Ifconfig { .. }
            | Step::ReclaimInterface { .. }
            | Step::DevfsRule { .. }
            | Step::DevfsDelset { .. } => Ok(()),
        }
    }
}

/// The plan as text, one step a line.
pub fn render(steps: &[Step]) -> String {
    steps.iter().map(|s| format!("{s}\n")).collect()
}
