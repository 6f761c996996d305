//! The FreeBSD backend as a plan: the exact syscalls and commands (with their arguments)
//! that create, and delete, a container's jail. Pure, so it is golden-tested on any host;
//! `platform::freebsd` only executes the steps and records what each one made.
//!
//! Create, in order (docs/freebsd-backend.md explains each choice):
//! 1. `children.max` of the parent jail raised when it is full (nested containers only);
//! 2. `interface` aliases added (`ifconfig IF inet A/32 alias`), as jail(8) does first;
//! 3. mount points created, then `root.readonly`'s read-only nullfs of the root onto itself;
//! 4. the container's devfs ruleset for `freebsd.devices`, then every mount (`nmount(2)`);
//! 5. `jail_set(JAIL_CREATE)` with `persist`;
//! 6. one rctl(8) rule per `linux.resources` limit (`rctl_add_rule(2)`, see [`rctl`]);
//! 7. `vnetInterfaces` moved in (`ifconfig IF vnet JAIL`).
//!
//! Delete undoes exactly what [`FreeBsdMade`] records, in reverse, except that the rctl rules
//! go after `jail_remove`: they name the jail, not its jid.

mod confinement;
mod devfs;
mod made;
mod mounts;
mod part;
pub mod pod;
#[cfg(test)]
mod pod_tests;
pub mod rctl;
mod render;
#[cfg(test)]
mod tests;

use std::net::IpAddr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub use devfs::{
    default_ruleset_shown, dev_base_ruleset, flatten_default_ruleset, flatten_ruleset,
    DEFAULT_RULESETS,
};
pub use made::FreeBsdMade;
pub use part::{devices, FreeBsdPlan};
pub use render::{mount_flags_text, render};

use super::{ContainerPlan, PlatformError};
use crate::jail::{JailParam, Network, ParamValue};
use crate::mounts::FsType;

/// `JAIL_CREATE` (sys/sys/jail.h).
pub const JAIL_CREATE: i32 = 0x01;
/// `JAIL_UPDATE` (sys/sys/jail.h).
pub const JAIL_UPDATE: i32 = 0x02;
/// The size of the `errmsg` buffer added to every `jail_set`/`jail_get`/`nmount` call
/// (libjail's JAIL_ERRMSGLEN).
pub const ERRMSG_LEN: usize = 1024;
/// ifconfig(8) and devfs(8), by absolute path so `PATH` never decides what runs as root.
pub const IFCONFIG: &str = "/sbin/ifconfig";
/// See [`IFCONFIG`].
pub const DEVFS: &str = "/sbin/devfs";
/// The lowest devfs ruleset number stockade allocates. /etc/defaults/devfs.rules uses 1-4
/// and administrators conventionally number their own sets in the tens or hundreds.
pub const FIRST_DEVFS_RULESET: u16 = 1000;
/// The ruleset jail(8) gives a jail's /dev when none is configured (`devfsrules_jail`).
pub const DEFAULT_DEVFS_RULESET: u16 = 4;
/// How deep `add include` chains are expanded when flattening a ruleset; devfs itself
/// follows only `vfs.devfs.rule_depth` (1) levels, so deeper chains are refused.
pub const MAX_INCLUDE_DEPTH: usize = 8;

/// nmount/unmount flags (sys/sys/mount.h).
pub const MNT_RDONLY: i32 = 0x0000_0001;
/// See [`MNT_RDONLY`].
pub const MNT_NOEXEC: i32 = 0x0000_0004;
/// See [`MNT_RDONLY`].
pub const MNT_NOSUID: i32 = 0x0000_0008;
/// See [`MNT_RDONLY`].
pub const MNT_FORCE: i32 = 0x0008_0000;
/// See [`MNT_RDONLY`].
pub const MNT_NOSYMFOLLOW: i32 = 0x0040_0000;
/// unmount(2) names the file system by its fsid, `FSID:v0:v1`, not by a path.
pub const MNT_BYFSID: i32 = 0x0800_0000;
/// See [`MNT_RDONLY`].
pub const MNT_NOATIME: i32 = 0x1000_0000;

/// One `(name, value)` pair of an `nmount(2)` iovec: the name NUL-terminated, the value as
/// the exact bytes sent (NUL-terminated strings), `None` for a flag option (NULL, 0).
pub type MountOption = (String, Option<Vec<u8>>);

/// What an `ifconfig` step made, for the executor to record in [`FreeBsdMade`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Made {
    /// An address alias on a host interface: `interface_aliases`.
    InterfaceAlias { interface: String, address: String },
    /// An interface moved into the vnet jail: `vnet_interfaces`.
    VnetInterface(String),
}

/// One kernel call or host command. The executor records what each create step made in
/// [`FreeBsdMade`] as soon as it succeeds, so a failure midway is undone by the delete plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nested containers: `jail_get` the parent's `children.max` and `children.cur`; when
    /// `cur >= max` or `max <= at_least` (the container's own `children.max` must stay
    /// below its parent's), `jail_set(JAIL_UPDATE)` it to `max(cur + 1, at_least + 1)` and
    /// record `(parent, old max)` in `raised_children_max`. The executor decides, since
    /// only it can read the live values.
    RaiseChildrenMax { parent: String, at_least: u32 },
    /// Creates what is missing of `target` (an empty file as the last component when
    /// `file`) with `create_mount_point`; records the paths in `mount_points`.
    MountPoint { target: PathBuf, file: bool },
    /// `nmount(iov, niov, flags)` with an `errmsg` buffer appended; records `fspath` in
    /// `mounts`.
    Nmount { iov: Vec<MountOption>, flags: i32 },
    /// `/sbin/devfs rule -s <ruleset> <rule…>`; records `ruleset` in `devfs_rulesets`
    /// before it runs (a half-filled set is still deleted).
    DevfsRule { ruleset: u16, rule: Vec<String> },
    /// `jail_set(iov, niov, flags)` with the parameters' exact encodings and an `errmsg`
    /// buffer; records the returned jid and the name.
    JailSet { params: Vec<JailParam>, flags: i32 },
    /// `rctl_add_rule(2)` of `rule` (`jail:NAME:RESOURCE:deny=AMOUNT`, NUL-terminated, no
    /// output buffer); records `rule` in `rctl_rules` once it is added.
    RctlAddRule { rule: String },
    /// `/sbin/ifconfig <args…>`; records `made` when it succeeds.
    Ifconfig {
        args: Vec<String>,
        made: Option<Made>,
    },
    /// Delete only: `ifconfig IF -vnet JID` before the jail is removed, so the interface is
    /// back on the host when delete returns. A failure is only a warning: the interface
    /// may have been renamed or destroyed inside, and the kernel returns every moved
    /// interface to its home vnet when the jail's vnet is destroyed anyway.
    ReclaimInterface { interface: String, jid: i32 },
    /// `jail_remove(jid)`: the kernel marks the jail dying and SIGKILLs every process in it
    /// and its descendants, without waiting; the executor then waits (briefly) until no
    /// process has `ki_jid == jid`, so the unmounts that follow do not meet EBUSY. Jids are
    /// reused, so the executor first checks (`jail_get`) that `jid` is still called `name`.
    /// With no jid recorded (create died between jail_set and its record) the live jail
    /// called `name` is the one.
    JailRemove {
        jid: Option<i32>,
        name: Option<String>,
    },
    /// Delete only: `rctl_remove_rule(2)` of `filter` (a recorded rule without `=AMOUNT`),
    /// after `jail_remove`. Rules name the jail, so left behind they would apply to the
    /// next jail of that name. No rule matching (ESRCH) and racct off (ENOSYS: no rule can
    /// exist) count as done.
    RctlRemoveRule { filter: String },
    /// `unmount(fsid, MNT_BYFSID | (force ? MNT_FORCE : 0))` of the file system mounted on
    /// `path`: by its recorded fsid, so no path is resolved in a tree the container could
    /// have changed; by `path` only when create was killed before it recorded the fsid.
    /// With `force` false the executor retries a busy file system with MNT_FORCE once the
    /// jail's processes had their chance to exit.
    Unmount {
        path: PathBuf,
        fsid: Option<String>,
        force: bool,
    },
    /// `/sbin/devfs rule -s <ruleset> delset`.
    DevfsDelset { ruleset: u16 },
    /// `jail_set(JAIL_UPDATE)` of the parent's `children.max` back to `previous`, but never
    /// below its live `children.cur` (other containers may have been nested since).
    RestoreChildrenMax { parent: String, previous: i32 },
}

impl Step {
    /// The argv of a step that runs a host command, `None` for a syscall.
    pub fn command(&self) -> Option<Vec<String>> {
        let argv = |prog: &str, rest: &[String]| {
            let mut v = vec![prog.to_string()];
            v.extend(rest.iter().cloned());
            v
        };
        match self {
            Step::Ifconfig { args, .. } => Some(argv(IFCONFIG, args)),
            Step::ReclaimInterface { interface, jid } => Some(argv(
                IFCONFIG,
                &[interface.clone(), "-vnet".into(), jid.to_string()],
            )),
            Step::DevfsRule { ruleset, rule } => {
                let mut v = vec![DEVFS.to_string(), "rule".into(), "-s".into()];
                v.push(ruleset.to_string());
                v.extend(rule.iter().cloned());
                Some(v)
            }
            Step::DevfsDelset { ruleset } => Some(vec![
                DEVFS.into(),
                "rule".into(),
                "-s".into(),
                ruleset.to_string(),
                "delset".into(),
            ]),
            _ => None,
        }
    }
}

/// What the executor looked up on the host before planning.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostInputs {
    /// For each of `plan.mounts`, in order: its destination resolved inside the root with
    /// `resolve_in_root` (a host path under the jail's path).
    pub mount_targets: Vec<PathBuf>,
    /// The devfs ruleset allocated for `freebsd.devices` (see [`devfs_ruleset_candidates`]);
    /// required when there are devices.
    pub devfs_ruleset: Option<u16>,
    /// The rules of the /dev mount's base ruleset with every include expanded
    /// ([`flatten_ruleset`]), each as the words after `devfs rule add`; the container's
    /// ruleset starts with them when there are devices.
    pub devfs_base_rules: Vec<Vec<String>>,
}

/// The create plan, and the warnings to log once for what FreeBSD ignores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatePlan {
    pub steps: Vec<Step>,
    /// One line each: ignored mount options, Linux-only process settings.
    pub warnings: Vec<String>,
}

/// Devfs ruleset numbers to try for jail `name`, best first: a start derived from the
/// name (so concurrent creates of different containers rarely try the same number), then
/// every other number from [`FIRST_DEVFS_RULESET`] to 65535. The executor takes the first
/// one `devfs rule showsets` does not list.
pub fn devfs_ruleset_candidates(name: &str) -> impl Iterator<Item = u16> {
    let digest = Sha256::digest(name.as_bytes());
    let span = u32::from(u16::MAX - FIRST_DEVFS_RULESET) + 1;
    let offset = u32::from(u16::from_be_bytes([digest[0], digest[1]])) % span;
    (0..span).map(move |i| {
        // (offset + i) % span < span <= 64536, so the sum stays within u16.
        (u32::from(FIRST_DEVFS_RULESET) + (offset + i) % span) as u16
    })
}

/// The steps that create `plan`'s jail, checked before anything is made: every error a
/// configuration can cause is found here, not halfway through the executor.
pub fn create_plan(plan: &ContainerPlan, host: &HostInputs) -> Result<CreatePlan, PlatformError> {
    let mut steps = Vec::new();
    let mut warnings = check_warnings(plan);
    let jail = &plan.jail;
    let root = jail.path.as_path();

    if plan.mounts.len() != host.mount_targets.len() {
        return Err(PlatformError::Failed {
            call: "planning mounts".into(),
            detail: format!(
                "{} mounts but {} resolved targets",
                plan.mounts.len(),
                host.mount_targets.len()
            ),
        });
    }

    if let Some(parent) = &jail.parent {
        steps.push(Step::RaiseChildrenMax {
            parent: parent.clone(),
            at_least: jail.children_max.unwrap_or(0),
        });
    }

    if let Network::Shared {
        ip4,
        ip6,
        interface: Some(interface),
    } = &jail.network
    {
        let addrs = restricted(ip4)
            .iter()
            .map(|a| IpAddr::V4(*a))
            .chain(restricted(ip6).iter().map(|a| IpAddr::V6(*a)));
        for address in addrs {
            steps.push(alias_step(interface, address, true));
        }
    }

    let mounts = mounts::translate(plan, host, &mut warnings)?;
    // A mount point below an earlier mount's target has to be made inside that mount, once
    // it is mounted; made earlier it would land on the root file system and be hidden.
    let nested: Vec<bool> = host
        .mount_targets
        .iter()
        .enumerate()
        .map(|(i, t)| {
            host.mount_targets[..i]
                .iter()
                .any(|earlier| t.starts_with(earlier))
        })
        .collect();
    let mount_point = |i: usize| Step::MountPoint {
        target: host.mount_targets[i].clone(),
        file: matches!(plan.mounts[i].fs, FsType::Bind { file: true, .. }),
    };
    if plan.root_readonly {
        // Every mount point on the root file system is made first: once the root is
        // read-only nothing can be created in it. The read-only nullfs goes below every
        // other mount (mounted before them), since mounts stacked on the root's own
        // directories would not be seen through a nullfs mounted over them later; and it
        // comes before jail_set, which takes the jail's root vnode as it is at that moment.
        for i in (0..plan.mounts.len()).filter(|&i| !nested[i]) {
            steps.push(mount_point(i));
        }
        steps.push(Step::Nmount {
            iov: root_readonly_iov(root),
            flags: 0,
        });
    }
    for (i, m) in mounts.into_iter().enumerate() {
        if !plan.root_readonly || nested[i] {
            steps.push(mount_point(i));
        }
        steps.extend(m.devfs_rules);
        steps.push(Step::Nmount {
            iov: m.iov,
            flags: m.flags,
        });
    }

    let mut params = jail.params();
    // Inside a jail every devfs mount uses the jail's devfs_ruleset (devfs_vfsops.c "jails
    // enforce their ruleset"); without it (0) jailed root could mount a full /dev.
    params.push(JailParam::new(
        "devfs_ruleset",
        ParamValue::Int(i32::from(mounts::dev_ruleset(plan, host))),
    ));
    steps.push(Step::JailSet {
        params,
        flags: JAIL_CREATE,
    });
    // The rules come after jail_set, not before (rctl takes rules for a name with no jail
    // yet): JAIL_CREATE fails when the name is taken, so a rule added, and later removed by
    // filter, never belongs to another jail. They come before the vnet interfaces so that a
    // kernel without racct (ENOSYS, the likely failure) stops create before host
    // interfaces are moved in. Either way no process is in the jail yet (the init attaches
    // later), so the limits hold from its first instruction.
    steps.extend(rctl::add_steps(plan)?);

    if let Network::Vnet { interfaces } = &jail.network {
        for interface in interfaces {
            steps.push(Step::Ifconfig {
                args: vec![interface.clone(), "vnet".into(), jail.name.to_string()],
                made: Some(Made::VnetInterface(interface.clone())),
            });
        }
    }
    Ok(CreatePlan { steps, warnings })
}

/// Checks what FreeBSD cannot do in `plan` without looking at the host: the mount types
/// and options (the targets are not needed for that). Returns the warnings to log.
pub fn check(plan: &ContainerPlan) -> Result<Vec<String>, PlatformError> {
    if plan.freebsd().is_none() {
        return Err(PlatformError::Unsupported {
            what: format!("a plan made for {}", plan.backend.target()),
            os: "FreeBSD",
            hint: "plan the container for FreeBSD (ContainerPlan::new with Target::FreeBsd)".into(),
        });
    }
    let host = HostInputs {
        mount_targets: plan.mounts.iter().map(|m| m.destination.clone()).collect(),
        devfs_ruleset: Some(FIRST_DEVFS_RULESET),
        devfs_base_rules: Vec::new(),
    };
    let mut warnings = check_warnings(plan);
    mounts::translate(plan, &host, &mut warnings)?;
    rctl::add_steps(plan)?;
    Ok(warnings)
}

/// Warnings about process and Linux settings FreeBSD does not apply.
fn check_warnings(plan: &ContainerPlan) -> Vec<String> {
    let mut w = Vec::new();
    if plan.process.no_new_privileges {
        w.push("process.noNewPrivileges is Linux-only and is not applied on FreeBSD".to_string());
    }
    w.extend(confinement::warning(&plan.process.confinement));
    if let Some(part) = plan.freebsd() {
        if !part.ignored_linux.is_empty() {
            w.push(format!(
                "linux.{} not applied on FreeBSD (linux.namespaces are translated into jail parameters)",
                part.ignored_linux.join(", linux.")
            ));
        }
    }
    w
}

/// The steps that undo `made`, in reverse order of creation; every step is attempted even
/// when an earlier one fails. The mount points themselves are removed afterwards by the
/// lifecycle (`remove_mount_points`), as on Linux.
pub fn destroy_plan(made: &FreeBsdMade) -> Vec<Step> {
    let mut steps = Vec::new();
    if let Some(jid) = made.jid {
        for interface in made.vnet_interfaces.iter().rev() {
            steps.push(Step::ReclaimInterface {
                interface: interface.clone(),
                jid,
            });
        }
    }
    if made.jid.is_some() || made.jail_name.is_some() {
        steps.push(Step::JailRemove {
            jid: made.jid,
            name: made.jail_name.clone(),
        });
    }
    for rule in made.rctl_rules.iter().rev() {
        steps.push(Step::RctlRemoveRule {
            filter: rctl::filter(rule).to_string(),
        });
    }
    for (interface, address) in made.interface_aliases.iter().rev() {
        match address.parse::<IpAddr>() {
            Ok(a) => steps.push(alias_step(interface, a, false)),
            // Recorded by create from a parsed address; an edited state file is the only
            // way here, and then the best that can be done is to say so.
            Err(_) => steps.push(Step::Ifconfig {
                args: vec![
                    interface.clone(),
                    "inet".into(),
                    address.clone(),
                    "-alias".into(),
                ],
                made: None,
            }),
        }
    }
    let mut fsids = made.mount_fsids.clone();
    for path in made.mounts.iter().rev() {
        let fsid = fsids
            .iter()
            .rposition(|(p, _)| p == path)
            .map(|i| fsids.remove(i).1);
        steps.push(Step::Unmount {
            path: path.clone(),
            fsid,
            force: false,
        });
    }
    for ruleset in made.devfs_rulesets.iter().rev() {
        steps.push(Step::DevfsDelset { ruleset: *ruleset });
    }
    if let Some((parent, previous)) = &made.raised_children_max {
        steps.push(Step::RestoreChildrenMax {
            parent: parent.clone(),
            previous: *previous,
        });
    }
    steps
}

fn restricted<A>(access: &crate::jail::IpAccess<A>) -> &[A] {
    match access {
        crate::jail::IpAccess::Restricted(list) => list,
        _ => &[],
    }
}

/// `ifconfig IF inet A/32 alias` (or `-alias`), `inet6 A/128`: a host route for exactly
/// that address, as jail(8) adds them (netmask 255.255.255.255 / prefixlen 128).
fn alias_step(interface: &str, address: IpAddr, add: bool) -> Step {
    let (family, prefix) = match address {
        IpAddr::V4(_) => ("inet", 32),
        IpAddr::V6(_) => ("inet6", 128),
    };
    Step::Ifconfig {
        args: vec![
            interface.to_string(),
            family.into(),
            format!("{address}/{prefix}"),
            if add { "alias" } else { "-alias" }.into(),
        ],
        made: add.then(|| Made::InterfaceAlias {
            interface: interface.to_string(),
            address: address.to_string(),
        }),
    }
}

/// A NUL-terminated option value.
fn cstr(s: &[u8]) -> Option<Vec<u8>> {
    let mut v = s.to_vec();
    v.push(0);
    Some(v)
}

fn path_value(p: &Path) -> Option<Vec<u8>> {
    cstr(p.as_os_str().as_bytes())
}

/// The read-only nullfs of the root onto itself for `root.readonly`.
fn root_readonly_iov(root: &Path) -> Vec<MountOption> {
    vec![
        ("fstype".into(), cstr(b"nullfs")),
        ("fspath".into(), path_value(root)),
        ("from".into(), path_value(root)),
        ("ro".into(), None),
    ]
}

/// The `fspath` of an `nmount` iovec, as a path.
pub fn fspath(iov: &[MountOption]) -> Option<PathBuf> {
    iov.iter().find(|(n, _)| n == "fspath").and_then(|(_, v)| {
        let v = v.as_deref()?;
        let v = v.strip_suffix(&[0]).unwrap_or(v);
        Some(PathBuf::from(std::ffi::OsStr::from_bytes(v)))
    })
}
