//! Jails in the model: jail_set, jail_get, jail_remove as sys/kern/kern_jail.c does them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use nix::errno::Errno;

use super::ModelKernel;
use crate::jail::{JailParam, ParamValue};
use crate::platform::freebsd::kernel::{JailInfo, KernelError};
use crate::platform::freebsd_plan::{JAIL_CREATE, JAIL_UPDATE};

/// `JAIL_ATTACH` and `JAIL_DYING` (sys/sys/jail.h).
const JAIL_ATTACH: i32 = 0x04;
const JAIL_DYING: i32 = 0x08;

/// One jail (struct prison).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jail {
    pub jid: i32,
    /// The full, dotted name.
    pub name: String,
    pub parent: Option<i32>,
    pub path: PathBuf,
    pub persist: bool,
    pub dying: bool,
    pub vnet: bool,
    pub children_max: i32,
    /// `enforce_statfs`: never below the parent's.
    pub enforce_statfs: i32,
    /// `devfs_ruleset` (pr_devfs_rsnum): what every devfs mount made inside must use.
    pub devfs_ruleset: i32,
    /// Every other parameter as last set.
    pub params: BTreeMap<String, ParamValue>,
    /// Made by the test as the host's own (a parent jail), not by the executor.
    pub preexisting: bool,
}

impl Jail {
    pub fn info(&self) -> JailInfo {
        JailInfo {
            jid: self.jid,
            name: self.name.clone(),
            dying: self.dying,
        }
    }
}

/// The parameters the model knows (a subset of jail-params.tsv; an unknown one is ENOENT
/// "unknown parameter", as kern_jail.c's vfs_getopt loop over the known list reports).
fn known(name: &str) -> bool {
    const KNOWN: &[&str] = &[
        "jid",
        "name",
        "path",
        "persist",
        "host",
        "host.hostname",
        "host.domainname",
        "vnet",
        "ip4",
        "ip4.addr",
        "ip6",
        "ip6.addr",
        "sysvmsg",
        "sysvsem",
        "sysvshm",
        "enforce_statfs",
        "children.max",
        "devfs_ruleset",
        "securelevel",
        "linux",
    ];
    KNOWN.contains(&name) || name.starts_with("allow.")
}

fn msg(errno: Errno, m: impl Into<String>) -> KernelError {
    KernelError::with_msg(errno, m)
}

/// Whether `s` is a name strtoul(3) parses completely in base 10: optional white space,
/// an optional sign, at least one digit, nothing after. kern_jail.c refuses such names on
/// create ("name cannot be numeric"): a sign does not save "-1".
pub fn strtoul_parses_fully(s: &str) -> bool {
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let t = t.strip_prefix(['+', '-']).unwrap_or(t);
    !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit())
}

/// The live jail called `name` (full name).
pub fn live_by_name(k: &ModelKernel, name: &str) -> Option<i32> {
    k.jails
        .values()
        .find(|j| j.name == name && !j.dying)
        .map(|j| j.jid)
}

/// `children.cur`: every descendant, dying ones included (prison_deref decrements
/// pr_childcount only when the last reference goes).
pub fn child_count(k: &ModelKernel, jid: i32) -> i32 {
    k.jails
        .values()
        .filter(|j| j.parent == Some(jid))
        .map(|j| 1 + child_count(k, j.jid))
        .sum()
}

/// The dying jails among `jid`'s descendants.
pub fn dying_descendants(k: &ModelKernel, jid: i32) -> u32 {
    k.jails
        .values()
        .filter(|j| j.parent == Some(jid))
        .map(|j| u32::from(j.dying) + dying_descendants(k, j.jid))
        .sum()
}

fn children_max_of(k: &ModelKernel, parent: Option<i32>) -> i32 {
    parent.map_or(k.prison0_children_max, |p| k.jails[&p].children_max)
}

/// `jail_set(2)`.
pub fn set(k: &mut ModelKernel, params: &[JailParam], flags: i32) -> Result<i32, KernelError> {
    if flags & !(JAIL_CREATE | JAIL_UPDATE | JAIL_ATTACH | JAIL_DYING) != 0
        || flags & (JAIL_CREATE | JAIL_UPDATE) == 0
    {
        return Err(KernelError::errno(Errno::EINVAL));
    }
    if flags & JAIL_ATTACH != 0 {
        return Err(msg(
            Errno::EINVAL,
            "the model does not attach through jail_set",
        ));
    }
    let mut by_name: BTreeMap<&str, &ParamValue> = BTreeMap::new();
    for p in params {
        if !known(&p.name) {
            return Err(msg(Errno::ENOENT, format!("unknown parameter: {}", p.name)));
        }
        by_name.insert(p.name.as_str(), &p.value);
    }
    let name = match by_name.get("name") {
        Some(ParamValue::Str(s)) => Some(s.clone()),
        Some(_) => return Err(KernelError::errno(Errno::EINVAL)),
        None => None,
    };
    let jid_param = match by_name.get("jid") {
        Some(ParamValue::Int(j)) => Some(*j),
        Some(_) => return Err(KernelError::errno(Errno::EINVAL)),
        None => None,
    };
    let existing = match (jid_param, &name) {
        (Some(j), _) => k
            .jails
            .get(&j)
            .filter(|p| !p.dying || flags & JAIL_DYING != 0)
            .map(|p| p.jid),
        (None, Some(n)) => live_by_name(k, n),
        (None, None) => return Err(msg(Errno::EINVAL, "no jail name or jid")),
    };
    match existing {
        Some(jid) if flags & JAIL_UPDATE != 0 => update(k, jid, &by_name),
        Some(_) => Err(msg(
            Errno::EEXIST,
            format!("jail {:?} already exists", name.unwrap_or_default()),
        )),
        None if flags & JAIL_CREATE == 0 => Err(msg(
            Errno::ENOENT,
            format!("jail {:?} not found", name.unwrap_or_default()),
        )),
        None => create(k, name.as_deref(), &by_name),
    }
}

fn int(v: Option<&&ParamValue>) -> Result<Option<i32>, KernelError> {
    match v {
        None => Ok(None),
        Some(ParamValue::Int(i)) => Ok(Some(*i)),
        Some(_) => Err(KernelError::errno(Errno::EINVAL)),
    }
}

/// The final checks of kern_jail_set ("Do final error checking before setting anything"):
/// children.max at or above the parent's is EPERM; enforce_statfs outside 0..2 is EINVAL
/// and below the parent's EPERM; devfs_ruleset outside 0..65535 is EINVAL.
fn check_limits(
    k: &ModelKernel,
    parent: Option<i32>,
    p: &BTreeMap<&str, &ParamValue>,
) -> Result<Limits, KernelError> {
    let childmax = int(p.get("children.max"))?;
    if let Some(c) = childmax {
        if c >= children_max_of(k, parent) {
            return Err(KernelError::errno(Errno::EPERM));
        }
    }
    let enforce = int(p.get("enforce_statfs"))?;
    if let Some(e) = enforce {
        if !(0..=2).contains(&e) {
            return Err(KernelError::errno(Errno::EINVAL));
        }
        if e < parent.map_or(0, |pj| k.jails[&pj].enforce_statfs) {
            return Err(KernelError::errno(Errno::EPERM));
        }
    }
    let rsnum = int(p.get("devfs_ruleset"))?;
    if rsnum.is_some_and(|r| !(0..=65535).contains(&r)) {
        return Err(KernelError::errno(Errno::EINVAL));
    }
    Ok(Limits {
        childmax,
        enforce,
        rsnum,
    })
}

/// A child cannot have addresses its parent lacks: with `ip4.addr` set on a parent that
/// is itself restricted, every new address must be one of the parent's, else EPERM
/// (kern_jail.c kern_jail_set, "Make sure the new set of IP addresses is a subset of the
/// parent's list"; likewise ip6). A parent with its own vnet is not restricted, so its
/// children may use any address of that stack.
fn check_addresses_within(
    parent: &Jail,
    p: &BTreeMap<&str, &ParamValue>,
) -> Result<(), KernelError> {
    let within = match (p.get("ip4.addr"), parent.params.get("ip4.addr")) {
        (Some(ParamValue::Ip4(mine)), Some(ParamValue::Ip4(theirs))) if !parent.vnet => {
            mine.iter().all(|a| theirs.contains(a))
        }
        _ => true,
    } && match (p.get("ip6.addr"), parent.params.get("ip6.addr")) {
        (Some(ParamValue::Ip6(mine)), Some(ParamValue::Ip6(theirs))) if !parent.vnet => {
            mine.iter().all(|a| theirs.contains(a))
        }
        _ => true,
    };
    if within {
        Ok(())
    } else {
        Err(KernelError::errno(Errno::EPERM))
    }
}

/// The jail whose network stack `jid` uses, 0 for the host's: a jail made with
/// `vnet=new` gets its own (`vnet_alloc()`), any other shares its parent's `pr_vnet`
/// (kern_jail.c kern_jail_set), so a pod container with `ip4=inherit` below a vnet
/// sandbox is on the sandbox's stack.
pub fn network_stack(k: &ModelKernel, jid: i32) -> i32 {
    let mut at = Some(jid);
    while let Some(j) = at.and_then(|j| k.jails.get(&j)) {
        if j.vnet {
            return j.jid;
        }
        at = j.parent;
    }
    0
}

struct Limits {
    childmax: Option<i32>,
    enforce: Option<i32>,
    rsnum: Option<i32>,
}

fn create(
    k: &mut ModelKernel,
    name: Option<&str>,
    p: &BTreeMap<&str, &ParamValue>,
) -> Result<i32, KernelError> {
    let full = name.ok_or_else(|| msg(Errno::EINVAL, "a new jail needs a name"))?;
    let (parent, component) = match full.rsplit_once('.') {
        Some((parent, c)) => {
            let pj = live_by_name(k, parent)
                .ok_or_else(|| msg(Errno::ENOENT, format!("jail {parent:?} not found")))?;
            (Some(pj), c)
        }
        None => (None, full),
    };
    if component.is_empty() {
        return Err(msg(Errno::EINVAL, "empty name component"));
    }
    if strtoul_parses_fully(component) {
        return Err(msg(Errno::EINVAL, "name cannot be numeric"));
    }
    if full.len() > 255 {
        return Err(msg(Errno::ENAMETOOLONG, "name too long"));
    }
    // The *caller's* jail and its ancestors (not the new jail's parent) must each have
    // children.cur (dying children included) below children.max: kern_jail.c walks
    // `for (tpr = mypr; tpr != NULL; tpr = tpr->pr_parent)`, "prison limit exceeded". A
    // host process is in prison0, whose limit is JAIL_MAX.
    let mut up = Some(k.proc_jid(k.current)).filter(|j| *j != 0);
    loop {
        let (cur, max) = match up {
            Some(a) => (child_count(k, a), k.jails[&a].children_max),
            None => (k.jails.len() as i32, k.prison0_children_max),
        };
        if cur >= max {
            return Err(msg(Errno::EPERM, "prison limit exceeded"));
        }
        match up {
            Some(a) => up = k.jails[&a].parent,
            None => break,
        }
    }
    let limits = check_limits(k, parent, p)?;
    if let Some(pj) = parent {
        check_addresses_within(&k.jails[&pj], p)?;
    }
    let persist = matches!(p.get("persist"), Some(ParamValue::Bool(true)));
    let vnet = matches!(
        p.get("vnet"),
        Some(ParamValue::JailSys(crate::config::SharingMode::New))
    );
    let path = match p.get("path") {
        Some(ParamValue::Str(s)) => PathBuf::from(s),
        Some(_) => return Err(KernelError::errno(Errno::EINVAL)),
        None => PathBuf::from("/"),
    };
    let mut jid = k.next_jid;
    while k.jails.contains_key(&jid) {
        jid += 1;
    }
    k.next_jid = jid + 1;
    let inherited_rs = parent.map_or(0, |pj| k.jails[&pj].devfs_ruleset);
    let jail = Jail {
        jid,
        name: full.to_string(),
        parent,
        path,
        persist,
        dying: false,
        vnet,
        children_max: limits.childmax.unwrap_or(0),
        // A new jail starts with its parent's enforce_statfs, 2 at the top level
        // (jail_default_enforce_statfs).
        enforce_statfs: limits
            .enforce
            .unwrap_or_else(|| parent.map_or(2, |pj| k.jails[&pj].enforce_statfs)),
        devfs_ruleset: limits.rsnum.unwrap_or(inherited_rs),
        params: p
            .iter()
            .map(|(n, v)| (n.to_string(), (*v).clone()))
            .collect(),
        preexisting: false,
    };
    k.jails.insert(jid, jail);
    if !persist {
        // No persist and no process: the last reference goes at once (prison_deref).
        k.jails.remove(&jid);
    }
    Ok(jid)
}

fn update(
    k: &mut ModelKernel,
    jid: i32,
    p: &BTreeMap<&str, &ParamValue>,
) -> Result<i32, KernelError> {
    let parent = k.jails[&jid].parent;
    let limits = check_limits(k, parent, p)?;
    let j = k.jails.get_mut(&jid).expect("found above");
    if let Some(c) = limits.childmax {
        j.children_max = c;
    }
    if let Some(e) = limits.enforce {
        j.enforce_statfs = e;
    }
    if let Some(r) = limits.rsnum {
        j.devfs_ruleset = r;
    }
    if let Some(ParamValue::Bool(b)) = p.get("persist") {
        j.persist = *b;
    }
    for (n, v) in p {
        j.params.insert(n.to_string(), (*v).clone());
    }
    Ok(jid)
}

/// `jail_remove(2)`: EINVAL unless the jail is alive; it and its descendants become
/// dying and every process in them is killed, without waiting (kern_jail.c
/// sys_jail_remove, prison_remove, prison_deref_kill).
pub fn remove(k: &mut ModelKernel, jid: i32) -> Result<(), KernelError> {
    if k.jails.get(&jid).is_none_or(|j| j.dying) {
        return Err(KernelError::errno(Errno::EINVAL));
    }
    let mut doomed = vec![jid];
    let mut i = 0;
    while i < doomed.len() {
        let d = doomed[i];
        doomed.extend(
            k.jails
                .values()
                .filter(|j| j.parent == Some(d))
                .map(|j| j.jid),
        );
        i += 1;
    }
    for p in k.procs.values_mut() {
        if doomed.contains(&p.jid) {
            p.zombie = true;
        }
    }
    for d in &doomed {
        if let Some(j) = k.jails.get_mut(d) {
            j.dying = true;
            j.persist = false;
        }
    }
    if !k.linger_on_remove {
        for d in doomed {
            k.jails.remove(&d);
        }
    }
    Ok(())
}

/// A jail made by the test as the host's own: a parent for nested containers.
pub fn add_host_jail(k: &mut ModelKernel, name: &str, children_max: i32) -> i32 {
    let jid = k.next_jid;
    k.next_jid += 1;
    k.jails.insert(
        jid,
        Jail {
            jid,
            name: name.to_string(),
            parent: None,
            path: PathBuf::from("/"),
            persist: true,
            dying: false,
            vnet: false,
            children_max,
            enforce_statfs: 2,
            devfs_ruleset: 4,
            params: BTreeMap::new(),
            preexisting: true,
        },
    );
    jid
}
