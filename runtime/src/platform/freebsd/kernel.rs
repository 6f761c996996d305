//! The seam between the FreeBSD executor and the kernel: every call the executor makes,
//! as one trait. `host::HostKernel` (FreeBSD only) makes the real calls through `sys`;
//! [`super::model::ModelKernel`] (every host) enforces the rules the FreeBSD source
//! lays down, so the executor's create, delete and update run, and are fault-tested, on
//! any machine (docs/freebsd-backend.md, "The kernel seam").

use std::path::Path;

use nix::errno::Errno;

use crate::jail::JailParam;

/// A kernel call that failed: its errno and the kernel's `errmsg` text (empty when it gave
/// none), or a host command (devfs, ifconfig) that exited unsuccessfully.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KernelError {
    #[error("{}", errno_detail(*errno, errmsg))]
    Errno { errno: Errno, errmsg: String },
    #[error("{status}: {stderr}")]
    Command { status: String, stderr: String },
}

fn errno_detail(errno: Errno, errmsg: &str) -> String {
    if errmsg.is_empty() {
        errno.desc().to_string()
    } else {
        format!("{errmsg} ({})", errno.desc())
    }
}

impl KernelError {
    /// A failure with an errno and no kernel text.
    pub fn errno(errno: Errno) -> Self {
        KernelError::Errno {
            errno,
            errmsg: String::new(),
        }
    }

    /// A failure with an errno and the kernel's `errmsg`.
    pub fn with_msg(errno: Errno, errmsg: impl Into<String>) -> Self {
        KernelError::Errno {
            errno,
            errmsg: errmsg.into(),
        }
    }

    /// The errno of a failed call; `None` for a failed command.
    pub fn code(&self) -> Option<Errno> {
        match self {
            KernelError::Errno { errno, .. } => Some(*errno),
            KernelError::Command { .. } => None,
        }
    }
}

/// One process as `kern.proc.proc` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcInfo {
    pub pid: i32,
    /// `ki_jid`: 0 on the host.
    pub jid: i32,
    /// `ki_stat == SZOMB`.
    pub zombie: bool,
    /// `ki_start` in microseconds.
    pub start: u64,
}

/// What `fork` returned in this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forked {
    Child,
    Parent(i32),
}

/// `jail_get`'s view of one jail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JailInfo {
    pub jid: i32,
    pub name: String,
    pub dying: bool,
}

/// Every kernel call and host command the FreeBSD executor makes.
pub trait Kernel {
    /// `jail_set(2)` with `params` (encoded as `JailParam::name_bytes`/`value_bytes`) and
    /// `flags` (`JAIL_CREATE`, `JAIL_UPDATE`); returns the jid.
    fn jail_set(&mut self, params: &[JailParam], flags: i32) -> Result<i32, KernelError>;
    /// `jail_get(2)` by jid (`dying`: with `JAIL_DYING`, so a dying jail is found too);
    /// `None` for ENOENT.
    fn jail_by_jid(&mut self, jid: i32, dying: bool) -> Result<Option<JailInfo>, KernelError>;
    /// `jail_get(2)` of the live jail called `name`; `None` for ENOENT.
    fn jail_by_name(&mut self, name: &str) -> Result<Option<JailInfo>, KernelError>;
    /// `(children.max, children.cur)` of the jail called `name` (`jail_get`).
    fn children(&mut self, name: &str) -> Result<(i32, i32), KernelError>;
    /// How many dying jails are below `name` (`jail_get` with `lastjid` and `JAIL_DYING`,
    /// walking every jail): `children.cur` still counts them.
    fn dying_children(&mut self, name: &str) -> Result<u32, KernelError>;
    /// `jail_attach(2)` of the calling process, then `chdir("/")`.
    fn jail_attach(&mut self, jid: i32) -> Result<(), KernelError>;
    /// `jail_remove(2)`.
    fn jail_remove(&mut self, jid: i32) -> Result<(), KernelError>;
    /// `nmount(2)` of `iov` ((name, NUL-terminated value or `None`) pairs) with `flags`.
    fn nmount(&mut self, iov: &[(String, Option<Vec<u8>>)], flags: i32) -> Result<(), KernelError>;
    /// `unmount(2)`; with `MNT_BYFSID` in `flags`, `path` is `FSID:v0:v1`.
    fn unmount(&mut self, path: &Path, flags: i32) -> Result<(), KernelError>;
    /// The fsid of the file system `path` is on, as `FSID:v0:v1` (statfs(2) `f_fsid`).
    fn fsid(&mut self, path: &Path) -> Result<String, KernelError>;
    /// The rulesets in use (`devfs rule showsets`).
    fn devfs_showsets(&mut self) -> Result<Vec<u16>, KernelError>;
    /// The rules of `ruleset` as `devfs rule -s N show` prints them, one a line, each
    /// starting with its rule number.
    fn devfs_show(&mut self, ruleset: u16) -> Result<Vec<String>, KernelError>;
    /// `devfs rule -s N add …` of `rule` (the words after `add`).
    fn devfs_add(&mut self, ruleset: u16, rule: &[String]) -> Result<(), KernelError>;
    /// `devfs rule -s N delset`.
    fn devfs_delset(&mut self, ruleset: u16) -> Result<(), KernelError>;
    /// `rctl_add_rule(2)`.
    fn rctl_add_rule(&mut self, rule: &str) -> Result<(), KernelError>;
    /// `rctl_remove_rule(2)` of `filter`; ESRCH when no rule matches.
    fn rctl_remove_rule(&mut self, filter: &str) -> Result<(), KernelError>;
    /// `rctl_get_racct(2)` of `filter` (`jail:NAME`): the `resource=amount` pairs
    /// (`racct::parse_racct`); ENOSYS while racct is off, ESRCH without such a jail.
    fn rctl_usage(&mut self, filter: &str) -> Result<Vec<(String, u64)>, KernelError>;
    /// `ifconfig` with `args` (aliases and vnet moves).
    fn ifconfig(&mut self, args: &[String]) -> Result<(), KernelError>;
    /// Every process (`kern.proc.proc`).
    fn processes(&mut self) -> Result<Vec<ProcInfo>, KernelError>;
    /// `fork(2)`.
    fn fork(&mut self) -> Result<Forked, KernelError>;
}

/// `devfs rule showsets` output: one ruleset number a line. Anything else is an error, never
/// skipped: a set missed here could be allocated again and get another container's rules.
pub fn parse_showsets(text: &str) -> Result<Vec<u16>, KernelError> {
    text.split_whitespace()
        .map(|n| {
            n.parse::<u16>().map_err(|_| KernelError::Command {
                status: "devfs rule showsets".into(),
                stderr: format!("unexpected output {}", stockade_quote::quote(n)),
            })
        })
        .collect()
}

/// statfs(2) `f_fsid` as unmount(2) with MNT_BYFSID takes it.
pub fn fsid_text([a, b]: [i32; 2]) -> String {
    format!("FSID:{a}:{b}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn showsets_are_numbers_and_anything_else_is_an_error() {
        assert_eq!(parse_showsets("1\n2\n4\n1000\n").unwrap(), [1, 2, 4, 1000]);
        assert_eq!(parse_showsets("").unwrap(), Vec::<u16>::new());
        assert!(parse_showsets("1\nruleset 2\n").is_err());
        assert!(parse_showsets("70000").is_err());
    }

    #[test]
    fn fsid_text_is_what_unmount_takes() {
        assert_eq!(fsid_text([-5, 7]), "FSID:-5:7");
    }
}
