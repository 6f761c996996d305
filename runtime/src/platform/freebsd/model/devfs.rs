//! devfs rulesets in the model: devfs(8)'s rule grammar (sbin/devfs/rule.c) and the
//! kernel's rule run (sys/fs/devfs/devfs_rule.c), includes followed only
//! `vfs.devfs.rule_depth` levels deep (devfs_rule_run: an include runs only while
//! depth > 0, with depth - 1).

use std::collections::BTreeMap;

use super::ModelKernel;
use crate::platform::freebsd::kernel::KernelError;

/// One rule: conditions (type, path pattern) and actions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DevfsRule {
    pub number: u32,
    pub dev_type: Option<String>,
    pub path: Option<String>,
    /// Some(true) hide, Some(false) unhide.
    pub hide: Option<bool>,
    pub user: Option<String>,
    pub group: Option<String>,
    pub mode: Option<u32>,
    pub include: Option<u16>,
}

impl DevfsRule {
    /// As `devfs rule show` prints it (rule.c rulespec_outfp).
    pub fn show(&self) -> String {
        let mut s = self.number.to_string();
        if let Some(t) = &self.dev_type {
            s += &format!(" type {t}");
        }
        if let Some(p) = &self.path {
            s += &format!(" path {p}");
        }
        match self.hide {
            Some(true) => s += " hide",
            Some(false) => s += " unhide",
            None => {}
        }
        if let Some(u) = &self.user {
            s += &format!(" user {u}");
        }
        if let Some(g) = &self.group {
            s += &format!(" group {g}");
        }
        if let Some(m) = self.mode {
            s += &format!(" mode {m:o}");
        }
        if let Some(i) = self.include {
            s += &format!(" include {i}");
        }
        s
    }
}

fn bad(what: String) -> KernelError {
    KernelError::Command {
        status: "exit status: 1".into(),
        stderr: format!("devfs rule: {what}"),
    }
}

/// rule.c rulespec_intok: the words of one rule (without `add` and the number).
pub fn parse(words: &[String]) -> Result<DevfsRule, KernelError> {
    let mut r = DevfsRule::default();
    let mut it = words.iter();
    while let Some(w) = it.next() {
        let mut arg = |what: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| bad(format!("{what} takes an argument")))
        };
        match w.as_str() {
            "type" => {
                let t = arg("type")?;
                if !["disk", "mem", "tape", "tty"].contains(&t.as_str()) {
                    return Err(bad(format!("unknown type: {t}")));
                }
                r.dev_type = Some(t);
            }
            "path" => r.path = Some(arg("path")?),
            "user" => r.user = Some(arg("user")?),
            "group" => r.group = Some(arg("group")?),
            "hide" => r.hide = Some(true),
            "unhide" => r.hide = Some(false),
            "mode" => {
                let m = arg("mode")?;
                r.mode = Some(
                    u32::from_str_radix(&m, 8)
                        .ok()
                        .filter(|m| *m <= 0o7777)
                        .ok_or_else(|| bad(format!("invalid mode: {m}")))?,
                );
            }
            "include" => {
                let n = arg("include")?;
                r.include = Some(
                    n.parse()
                        .map_err(|_| bad(format!("invalid ruleset: {n}")))?,
                );
            }
            other => return Err(bad(format!("unknown argument: {other}"))),
        }
    }
    Ok(r)
}

/// `devfs rule -s N add …`: ruleset 0 is reserved; a ruleset may not include itself
/// (devfs_rule.c devfs_rule_insert refuses an include loop); rules are numbered by 100.
pub fn add(k: &mut ModelKernel, ruleset: u16, words: &[String]) -> Result<(), KernelError> {
    if ruleset == 0 {
        return Err(bad("ruleset 0 is reserved".into()));
    }
    let mut rule = parse(words)?;
    if rule.include == Some(ruleset) {
        return Err(bad("a ruleset cannot include itself".into()));
    }
    let set = k.rulesets.entry(ruleset).or_default();
    rule.number = set.last().map_or(100, |l| l.number + 100);
    set.push(rule);
    Ok(())
}

/// fnmatch(3) with FNM_PATHNAME for `*` and `?` (devfs_rule.c devfs_rule_matchpath).
fn fnmatch(pattern: &[u8], name: &[u8]) -> bool {
    match (pattern.first(), name.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            fnmatch(&pattern[1..], name)
                || (name.first().is_some_and(|c| *c != b'/') && fnmatch(pattern, &name[1..]))
        }
        (Some(b'?'), Some(c)) if *c != b'/' => fnmatch(&pattern[1..], &name[1..]),
        (Some(p), Some(c)) if p == c => fnmatch(&pattern[1..], &name[1..]),
        _ => false,
    }
}

/// The device nodes of the model's host (name, devsw type).
pub const DEFAULT_DEVICES: &[(&str, Option<&str>)] = &[
    ("null", None),
    ("zero", None),
    ("random", None),
    ("urandom", None),
    ("crypto", None),
    ("log", None),
    ("mem", Some("mem")),
    ("kmem", Some("mem")),
    ("io", None),
    ("klog", None),
    ("console", Some("tty")),
    ("ctty", None),
    ("ada0", Some("disk")),
    ("ada0p1", Some("disk")),
    ("ada0p2", Some("disk")),
    ("da0", Some("disk")),
    ("bpf", None),
    ("bpf0", None),
    ("pf", None),
    ("tun0", None),
    ("fuse", None),
    ("zfs", None),
    ("mdctl", None),
    ("devctl", None),
    ("pci", None),
    ("ttyv0", Some("tty")),
    ("ttyu0", Some("tty")),
    ("ptmx", None),
    ("pts", None),
    ("pts/0", Some("tty")),
    ("fd", None),
    ("fd/0", None),
    ("fd/1", None),
    ("fd/2", None),
    ("stdin", None),
    ("stdout", None),
    ("stderr", None),
    ("dri", None),
    ("dri/card0", None),
];

fn run(
    sets: &BTreeMap<u16, Vec<DevfsRule>>,
    set: u16,
    depth: u32,
    dev: (&str, Option<&str>),
    hidden: &mut bool,
) {
    for r in sets.get(&set).into_iter().flatten() {
        let path_ok = r
            .path
            .as_ref()
            .is_none_or(|p| fnmatch(p.as_bytes(), dev.0.as_bytes()));
        let type_ok = r
            .dev_type
            .as_ref()
            .is_none_or(|t| Some(t.as_str()) == dev.1);
        if !(path_ok && type_ok) {
            continue;
        }
        if let Some(inc) = r.include {
            if depth > 0 {
                run(sets, inc, depth - 1, dev, hidden);
            }
        }
        if let Some(h) = r.hide {
            *hidden = h;
        }
    }
}

/// The nodes of [`DEFAULT_DEVICES`] a devfs mount with `ruleset` shows, in that order
/// (devfs_rules_apply runs the mount's ruleset at `vfs.devfs.rule_depth`).
pub fn visible(sets: &BTreeMap<u16, Vec<DevfsRule>>, ruleset: u16, depth: u32) -> Vec<String> {
    DEFAULT_DEVICES
        .iter()
        .filter(|dev| {
            let mut hidden = false;
            if ruleset != 0 {
                run(sets, ruleset, depth, **dev, &mut hidden);
            }
            !hidden
        })
        .map(|(n, _)| n.to_string())
        .collect()
}

/// The rulesets of FreeBSD 14's /etc/defaults/devfs.rules (the plan's
/// [`DEFAULT_RULESETS`](crate::platform::freebsd_plan::DEFAULT_RULESETS)), parsed as the
/// kernel holds them.
pub fn default_rulesets() -> BTreeMap<u16, Vec<DevfsRule>> {
    crate::platform::freebsd_plan::DEFAULT_RULESETS
        .iter()
        .map(|(n, rules)| {
            let rules = rules
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let words: Vec<String> = r.split_whitespace().map(String::from).collect();
                    let mut rule = parse(&words).expect("the defaults parse");
                    rule.number = (i as u32 + 1) * 100;
                    rule
                })
                .collect();
            (*n, rules)
        })
        .collect()
}
