//! `mounts` as `nmount(2)` option lists (reference/freebsd/jail-notes.md, "Mounting").
//!
//! Every option a FreeBSD file system would refuse is an error here, naming the mount and
//! what is accepted, so create fails before anything is mounted. Linux-only generic flags
//! and propagation options, which containerd and Podman send routinely, are collected into
//! one warning instead.

use std::path::Path;

use super::{cstr, path_value, HostInputs, MountOption, Step};
use crate::config::DeviceRule;
use crate::mounts::{FsType, MountError, MountSpec};
use crate::platform::{ContainerPlan, PlatformError};

/// One mount, translated: its devfs rules (for `freebsd.devices`) and its iovec.
pub(super) struct Translated {
    pub devfs_rules: Vec<Step>,
    pub iov: Vec<MountOption>,
    /// nmount's flags argument.
    pub flags: i32,
}

/// Generic flags FreeBSD has, as (the flag, its opposite, how nmount takes it). The last
/// of a pair wins; only the `no`/`ro` side is ever sent, the other is the default.
/// vfs_mount.c `global_opts` has only ro, rw, nosuid and noexec; any other option must be
/// in the file system's own list (tmpfs's has no atime, devfs's only from, export and
/// ruleset), so noatime and nosymfollow go in the flags argument.
const GENERIC: &[(&str, &str, Generic)] = &[
    ("ro", "rw", Generic::Option),
    ("nosuid", "suid", Generic::Option),
    ("noexec", "exec", Generic::Option),
    ("noatime", "atime", Generic::Flag(super::MNT_NOATIME)),
    (
        "nosymfollow",
        "symfollow",
        Generic::Flag(super::MNT_NOSYMFOLLOW),
    ),
];

#[derive(Clone, Copy)]
enum Generic {
    /// A flag option in the iovec (name, NULL).
    Option,
    /// A bit of nmount's flags.
    Flag(i32),
}

/// The ruleset of the container's /dev: the one allocated for `freebsd.devices`, else the
/// `/dev` devfs mount's `ruleset=N`, else jail(8)'s default, 4. It is also the jail's
/// `devfs_ruleset`.
pub(super) fn dev_ruleset(plan: &ContainerPlan, host: &HostInputs) -> u16 {
    if !super::devices(plan).is_empty() {
        if let Some(own) = host.devfs_ruleset {
            return own;
        }
    }
    plan.mounts
        .iter()
        .find(|m| is_dev(m))
        .and_then(explicit_ruleset)
        .unwrap_or(super::DEFAULT_DEVFS_RULESET)
}

fn is_dev(m: &MountSpec) -> bool {
    m.type_name() == "devfs"
        && m.destination
            .components()
            .eq(Path::new("/dev").components())
}

/// A devfs mount's `ruleset=N`, when valid.
pub(super) fn explicit_ruleset(m: &MountSpec) -> Option<u16> {
    m.data.iter().rev().find_map(|d| {
        d.strip_prefix("ruleset=")
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|n| n.parse::<u16>().ok())
    })
}

/// tmpfs options with a value (vfs_filteropt list in sys/fs/tmpfs/tmpfs_vfsops.c).
const TMPFS_VALUES: &[&str] = &[
    "size",
    "maxfilesize",
    "inodes",
    "easize",
    "mode",
    "uid",
    "gid",
];
/// tmpfs flag options.
const TMPFS_FLAGS: &[&str] = &["nonc", "nomtime", "nosymfollow", "pgread"];
const TMPFS_ACCEPTED: &str = "size=N[k|m|g|t], maxfilesize=N[k|m|g|t], inodes=N[k|m|g|t], \
    easize=N[k|m|g|t], mode=OCTAL, uid=N, gid=N, nonc, nomtime, nosymfollow, pgread \
    (and the generic ro, nosuid, noexec, noatime)";
/// fdescfs flag options.
const FDESCFS_FLAGS: &[&str] = &["linrdlnk", "nodup"];
const SUPPORTED_TYPES: &str =
    "nullfs (or bind/rbind), devfs, fdescfs, tmpfs, procfs, linprocfs, linsysfs";

pub(super) fn translate(
    plan: &ContainerPlan,
    host: &HostInputs,
    warnings: &mut Vec<String>,
) -> Result<Vec<Translated>, PlatformError> {
    let dev_mount = plan.mounts.iter().position(is_dev);
    if !super::devices(plan).is_empty() && dev_mount.is_none() {
        return Err(PlatformError::Unsupported {
            what: "freebsd.devices without a devfs mount at /dev".into(),
            os: "FreeBSD",
            hint: "add the mount {\"destination\": \"/dev\", \"type\": \"devfs\", \
                   \"options\": [\"ruleset=4\"]}; the devices are unhidden in it"
                .into(),
        });
    }
    let mut ignored: Vec<String> = Vec::new();
    let mut out = Vec::with_capacity(plan.mounts.len());
    for (i, m) in plan.mounts.iter().enumerate() {
        let target = &host.mount_targets[i];
        let devices = if dev_mount == Some(i) && !super::devices(plan).is_empty() {
            Some(super::devices(plan))
        } else {
            None
        };
        let (mut iov, devfs_rules) = fs_options(m, target, devices, host)?;
        if let FsType::Bind {
            recursive: true, ..
        } = m.fs
        {
            note(
                &mut ignored,
                "rbind (nullfs does not show mounts below its source)",
            );
        }
        let (generic, flags) = generic_flags(m, &mut ignored);
        iov.extend(generic);
        if m.type_name() == "tmpfs" && m.data.iter().any(|d| d == "tmpcopyup") {
            // Podman adds runc's tmpcopyup to every --tmpfs; the FreeBSD backend mounts
            // tmpfs empty.
            note(&mut ignored, "tmpcopyup (the tmpfs starts empty)");
        }
        for p in &m.propagation {
            note(&mut ignored, p);
        }
        out.push(Translated {
            devfs_rules,
            iov,
            flags,
        });
    }
    if !ignored.is_empty() {
        warnings.push(format!(
            "mount options not applied on FreeBSD: {}",
            ignored.join(", ")
        ));
    }
    Ok(out)
}

fn note(ignored: &mut Vec<String>, what: &str) {
    if !ignored.iter().any(|i| i == what) {
        ignored.push(what.to_string());
    }
}

fn invalid(m: &MountSpec, field: &'static str, value: &str, expected: String) -> PlatformError {
    PlatformError::Mount(MountError::Invalid {
        index: m.index,
        field,
        value: value.to_string(),
        expected,
    })
}

/// The generic flags: those nmount takes as options (name, NULL value), and the bits of
/// its flags argument; the rest are noted.
fn generic_flags(m: &MountSpec, ignored: &mut Vec<String>) -> (Vec<MountOption>, i32) {
    for f in &m.flags {
        if !GENERIC.iter().any(|(on, off, _)| f == on || f == off) {
            note(ignored, f);
        }
    }
    let mut options = Vec::new();
    let mut flags = 0;
    for (on, off, how) in GENERIC {
        let set = m
            .flags
            .iter()
            .rev()
            .find(|f| f == on || f == off)
            .is_some_and(|f| f == on);
        match (set, how) {
            (true, Generic::Option) => options.push((on.to_string(), None)),
            (true, Generic::Flag(bit)) => flags |= bit,
            (false, _) => {}
        }
    }
    (options, flags)
}

/// fstype, fspath, from and the file-system specific options; plus, for the `/dev` devfs
/// mount when there are `devices`, the rules of the container's own ruleset.
fn fs_options(
    m: &MountSpec,
    target: &Path,
    devices: Option<&[DeviceRule]>,
    host: &HostInputs,
) -> Result<(Vec<MountOption>, Vec<Step>), PlatformError> {
    let base = |fstype: &str, from: Option<Vec<u8>>| -> Vec<MountOption> {
        vec![
            ("fstype".into(), cstr(fstype.as_bytes())),
            ("fspath".into(), path_value(target)),
            ("from".into(), from),
        ]
    };
    // mount(8) passes the source as "from" for every file system; the pseudo file systems
    // ignore it.
    let source =
        |m: &MountSpec, fstype: &str| cstr(m.source.as_deref().unwrap_or(fstype).as_bytes());
    let fstype = match &m.fs {
        FsType::Bind { source, .. } => {
            if let Some(d) = m.data.first() {
                return Err(invalid(
                    m,
                    "options",
                    d,
                    "no file-system options for a bind (nullfs) mount on FreeBSD; \
                     generic: ro, nosuid, noexec, noatime"
                        .into(),
                ));
            }
            return Ok((base("nullfs", path_value(source)), Vec::new()));
        }
        FsType::Named(t) => t.as_str(),
    };
    match fstype {
        "devfs" => {
            let mut ruleset = None;
            for d in &m.data {
                let n = d.strip_prefix("ruleset=").and_then(|n| {
                    n.parse::<u16>()
                        .ok()
                        .filter(|_| n.bytes().all(|b| b.is_ascii_digit()))
                });
                match n {
                    Some(n) => ruleset = Some(n),
                    None => {
                        return Err(invalid(
                            m,
                            "options",
                            d,
                            "for devfs only ruleset=N with N from 0 to 65535 (and the generic \
                             ro, nosuid, noexec, noatime)"
                                .into(),
                        ))
                    }
                }
            }
            let mut iov = base("devfs", source(m, "devfs"));
            let mut rules = Vec::new();
            match (devices, host.devfs_ruleset) {
                (Some(devices), Some(own)) => {
                    rules = devfs_rules(own, &host.devfs_base_rules, devices);
                    iov.push(("ruleset".into(), cstr(own.to_string().as_bytes())));
                }
                (Some(_), None) => {
                    return Err(PlatformError::Failed {
                        call: "planning freebsd.devices".into(),
                        detail: "no devfs ruleset was allocated for the container".into(),
                    })
                }
                (None, _) => {
                    // Without a ruleset the host-side mount would show every device: use
                    // jail(8)'s default.
                    let n = ruleset.unwrap_or(super::DEFAULT_DEVFS_RULESET);
                    iov.push(("ruleset".into(), cstr(n.to_string().as_bytes())));
                }
            }
            Ok((iov, rules))
        }
        "fdescfs" => {
            let mut iov = base("fdescfs", source(m, "fdescfs"));
            for d in &m.data {
                if !FDESCFS_FLAGS.contains(&d.as_str()) {
                    return Err(invalid(
                        m,
                        "options",
                        d,
                        "for fdescfs only linrdlnk and nodup (and the generic ro, nosuid, \
                         noexec, noatime)"
                            .into(),
                    ));
                }
                iov.push((d.clone(), None));
            }
            Ok((iov, Vec::new()))
        }
        "tmpfs" => {
            let mut iov = base("tmpfs", source(m, "tmpfs"));
            for d in m.data.iter().filter(|d| *d != "tmpcopyup") {
                iov.push(tmpfs_option(m, d)?);
            }
            Ok((iov, Vec::new()))
        }
        "procfs" | "linprocfs" | "linsysfs" => {
            if let Some(d) = m.data.first() {
                return Err(invalid(
                    m,
                    "options",
                    d,
                    format!("no file-system options for {fstype} (generic: ro, nosuid, noexec, noatime)"),
                ));
            }
            Ok((base(fstype, source(m, fstype)), Vec::new()))
        }
        other => {
            let hint = match other {
                "proc" => Some("procfs (FreeBSD's) or linprocfs (Linux-compatible)"),
                "sysfs" => Some("linsysfs"),
                "devpts" => Some("a devfs mount at /dev: FreeBSD's ptys live in devfs"),
                "mqueue" => Some("nothing stockade mounts (FreeBSD's mqueuefs is not supported)"),
                "cgroup" | "cgroup2" => Some("nothing: FreeBSD has no cgroups; linux.resources limits become rctl(8) rules on the jail"),
                _ => None,
            };
            let expected = match hint {
                Some(h) => format!(
                    "a FreeBSD file system ({SUPPORTED_TYPES}); instead of Linux's {other} use {h}"
                ),
                None => format!("a file system stockade mounts on FreeBSD: {SUPPORTED_TYPES}"),
            };
            Err(invalid(m, "type", other, expected))
        }
    }
}

/// One tmpfs option, checked the way tmpfs parses it: sizes through vfs_getopt_size
/// (decimal with an optional k/m/g/t/p/e suffix), mode in octal, uid and gid in decimal.
fn tmpfs_option(m: &MountSpec, d: &str) -> Result<MountOption, PlatformError> {
    let bad = |expected: String| Err(invalid(m, "options", d, expected));
    let Some((key, value)) = d.split_once('=') else {
        if TMPFS_FLAGS.contains(&d) {
            return Ok((d.to_string(), None));
        }
        return bad(format!("a tmpfs option; accepted: {TMPFS_ACCEPTED}"));
    };
    if !TMPFS_VALUES.contains(&key) {
        let hint = match key {
            "nr_inodes" => " (Linux's nr_inodes is inodes)",
            "nr_blocks" => " (Linux's nr_blocks: use size)",
            _ => "",
        };
        return bad(format!("a tmpfs option{hint}; accepted: {TMPFS_ACCEPTED}"));
    }
    let ok = match key {
        "mode" => u32::from_str_radix(value, 8).is_ok_and(|m| m <= 0o7777) && !value.is_empty(),
        "uid" | "gid" => value.parse::<u32>().is_ok(),
        _ => {
            let digits = value.trim_end_matches(|c: char| "kmgtpeKMGTPE".contains(c));
            value.len() - digits.len() <= 1 && !digits.is_empty() && digits.parse::<u64>().is_ok()
        }
    };
    if !ok {
        let what = match key {
            "mode" => "an octal mode up to 7777",
            "uid" | "gid" => "a decimal id",
            _ => "a decimal number with an optional k, m, g or t suffix",
        };
        return bad(format!("for tmpfs {key}: {what}"));
    }
    Ok((key.to_string(), cstr(value.as_bytes())))
}

/// The container's devfs ruleset: the base ruleset's rules flattened first (so everything
/// it hides stays hidden; an `include` would be followed only one level deep), then one
/// rule per device that unhides it and sets its mode. Rules run in order, so the later
/// unhide wins. A ruleset, unlike `devfs -m DIR rule apply`, also covers device nodes
/// created after the mount (cloning devices such as tun or bpf).
fn devfs_rules(own: u16, base: &[Vec<String>], devices: &[DeviceRule]) -> Vec<Step> {
    let mut rules = Vec::new();
    for words in base {
        let mut rule = vec!["add".to_string()];
        rule.extend(words.iter().cloned());
        rules.push(Step::DevfsRule { ruleset: own, rule });
    }
    for d in devices {
        let mut rule = vec!["add".into(), "path".into(), d.path.clone(), "unhide".into()];
        if let Some(mode) = d.mode {
            rule.extend(["mode".to_string(), format!("{mode:04o}")]);
        }
        rules.push(Step::DevfsRule { ruleset: own, rule });
    }
    rules
}
