//! rctl(2) in the model, as sys/kern/kern_rctl.c parses and keeps rules.

use nix::errno::Errno;

use super::ModelKernel;
use crate::platform::freebsd::kernel::KernelError;

/// kern_rctl.c `subjectnames`.
const SUBJECTS: &[&str] = &["process", "user", "loginclass", "jail"];
/// kern_rctl.c `resourcenames` (sys/sys/racct.h RACCT_*).
const RESOURCES: &[&str] = &[
    "cputime",
    "datasize",
    "stacksize",
    "coredumpsize",
    "memoryuse",
    "memorylocked",
    "maxproc",
    "openfiles",
    "vmemoryuse",
    "pseudoterminals",
    "swapuse",
    "nthr",
    "msgqqueued",
    "msgqsize",
    "nmsgq",
    "nsem",
    "nsemop",
    "nshm",
    "shmsize",
    "wallclock",
    "pcpu",
    "readbps",
    "writebps",
    "readiops",
    "writeiops",
];
/// kern_rctl.c `actionnames` (the signal actions collapsed to their common prefix).
const ACTIONS: &[&str] = &["deny", "log", "devctl", "throttle"];

/// A parsed rule: subject, id, resource, action, amount (None in a filter).
struct Rule<'a> {
    subject: &'a str,
    id: &'a str,
    resource: &'a str,
    action: &'a str,
    amount: Option<i64>,
}

fn einval() -> KernelError {
    KernelError::errno(Errno::EINVAL)
}

/// rctl_string_to_rule: `subject:id:resource:action=amount[/per]`; in a filter trailing
/// parts may be empty or missing.
fn parse(s: &str, filter: bool) -> Result<Rule<'_>, KernelError> {
    let (head, amount) = match s.split_once('=') {
        Some((h, a)) => (h, Some(a)),
        None => (s, None),
    };
    let mut parts = head.split(':');
    let subject = parts.next().unwrap_or("");
    let id = parts.next().unwrap_or("");
    let resource = parts.next().unwrap_or("");
    let action = parts.next().unwrap_or("");
    if parts.next().is_some() {
        return Err(einval());
    }
    let known = |v: &str, list: &[&str]| (filter && v.is_empty()) || list.contains(&v);
    if !known(subject, SUBJECTS) || !known(resource, RESOURCES) {
        return Err(einval());
    }
    let action_ok =
        (filter && action.is_empty()) || ACTIONS.contains(&action) || action.starts_with("sig");
    if !action_ok {
        return Err(einval());
    }
    let amount = match amount {
        None if filter => None,
        None => return Err(einval()),
        Some(a) => {
            // str2int64, then resources kept in millions (pcpu) are multiplied: ERANGE
            // on overflow.
            let n: i64 = a.parse().map_err(|_| einval())?;
            if n < 0 {
                return Err(einval());
            }
            if resource == "pcpu" && n.checked_mul(1_000_000).is_none() {
                return Err(KernelError::errno(Errno::ERANGE));
            }
            Some(n)
        }
    };
    if !filter && (id.is_empty() || subject.is_empty()) {
        return Err(einval());
    }
    Ok(Rule {
        subject,
        id,
        resource,
        action,
        amount,
    })
}

fn matches(filter: &Rule<'_>, rule: &Rule<'_>) -> bool {
    let eq = |f: &str, r: &str| f.is_empty() || f == r;
    eq(filter.subject, rule.subject)
        && eq(filter.id, rule.id)
        && eq(filter.resource, rule.resource)
        && eq(filter.action, rule.action)
        && filter.amount.is_none_or(|a| Some(a) == rule.amount)
}

/// `rctl_add_rule(2)`: ENOSYS with racct off; a deny rule replaces the deny rule for the
/// same subject and resource (rctl_rule_add). Rules for a jail name with no jail yet are
/// accepted (prison_racct_find makes the accounting entry).
pub fn add(k: &mut ModelKernel, rule: &str) -> Result<(), KernelError> {
    if !k.racct {
        return Err(KernelError::errno(Errno::ENOSYS));
    }
    let new = parse(rule, false)?;
    if new.action == "deny" {
        k.rctl_rules.retain(|r| match parse(r, false) {
            Ok(old) => {
                !(old.subject == new.subject
                    && old.id == new.id
                    && old.resource == new.resource
                    && old.action == "deny")
            }
            Err(_) => true,
        });
    }
    k.rctl_rules.push(rule.to_string());
    Ok(())
}

/// `rctl_remove_rule(2)`: every rule matching the filter; ESRCH when none does.
pub fn remove(k: &mut ModelKernel, filter: &str) -> Result<(), KernelError> {
    if !k.racct {
        return Err(KernelError::errno(Errno::ENOSYS));
    }
    let f = parse(filter, true)?;
    let before = k.rctl_rules.len();
    k.rctl_rules
        .retain(|r| parse(r, false).map_or(true, |r| !matches(&f, &r)));
    if k.rctl_rules.len() == before {
        return Err(KernelError::errno(Errno::ESRCH));
    }
    Ok(())
}

/// `rctl_get_racct(2)` of `jail:NAME`: the live jail's usage (the model counts only
/// processes); ESRCH when there is no such jail.
pub fn usage(k: &mut ModelKernel, filter: &str) -> Result<Vec<(String, u64)>, KernelError> {
    if !k.racct {
        return Err(KernelError::errno(Errno::ENOSYS));
    }
    let f = parse(filter, true)?;
    if f.subject != "jail" {
        return Err(einval());
    }
    let jid =
        super::jails::live_by_name(k, f.id).ok_or_else(|| KernelError::errno(Errno::ESRCH))?;
    let procs = k
        .procs
        .values()
        .filter(|p| p.jid == jid && !p.zombie)
        .count() as u64;
    Ok(RESOURCES
        .iter()
        .map(|r| (r.to_string(), if *r == "maxproc" { procs } else { 0 }))
        .collect())
}
