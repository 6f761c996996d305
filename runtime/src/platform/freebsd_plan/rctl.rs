//! Resource limits as rctl(8) rules on the jail: one `jail:NAME:RESOURCE:deny=AMOUNT` rule
//! per limit of [`ResourceLimits`](crate::limits::ResourceLimits). Rules name the jail, not
//! a jid, so they are added after `jail_set` and removed by filter after `jail_remove`
//! (docs/freebsd-backend.md, "Resource limits").

use super::Step;
use crate::limits::ResourceLimits;
use crate::platform::{ContainerPlan, PlatformError};

/// The rctl resource that enforces each `linux.resources` field, in the order the rules
/// are added.
pub const RESOURCES: [(&str, &str); 4] = [
    ("memory.limit", "memoryuse"),
    ("memory.swap", "swapuse"),
    ("pids.limit", "maxproc"),
    ("cpu.quota", "pcpu"),
];

/// The largest `pcpu` amount the kernel takes: it stores percent × 1 000 000 in an
/// `int64_t` and refuses more with ERANGE.
pub const MAX_PCPU: u64 = i64::MAX as u64 / 1_000_000;

/// The `rctl_add_rule` steps for `plan.limits`, in the order of [`RESOURCES`]; empty
/// without limits.
///
/// `swapuse` is set to `memory.swap` itself, not to `memory.swap - memory.limit`: the
/// kernel charges `swapuse` with every reservation of anonymous memory (swap_reserve),
/// resident or swapped out, so it measures what the spec's memory-plus-swap measures. A
/// swap-only amount would be 0 for the common `memory.swap == memory.limit` ("no swap"),
/// and a jail with `swapuse:deny=0` cannot even exec its init.
pub fn add_steps(plan: &ContainerPlan) -> Result<Vec<Step>, PlatformError> {
    Ok(rules(plan.jail.name.as_str(), &plan.limits)?
        .into_iter()
        .map(|rule| Step::RctlAddRule { rule })
        .collect())
}

/// The rules for `limits` on jail `name`, in the order of [`RESOURCES`].
fn rules(name: &str, limits: &ResourceLimits) -> Result<Vec<String>, PlatformError> {
    if limits.is_empty() {
        return Ok(Vec::new());
    }
    // Container ids have no ':', but a parent jail's name may.
    if name.contains(':') {
        return Err(PlatformError::Unsupported {
            what: format!("linux.resources for jail {name:?}"),
            os: "FreeBSD",
            hint:
                "rctl(8) rules name the jail and split on ':'; use a parent jail name without ':'"
                    .into(),
        });
    }
    let pcpu = limits.cpu.map(|c| c.percent());
    if let Some(p) = pcpu.filter(|p| *p > MAX_PCPU) {
        return Err(PlatformError::Unsupported {
            what: format!("linux.resources.cpu.quota of {p}% of one CPU"),
            os: "FreeBSD",
            hint: format!("rctl's pcpu takes at most {MAX_PCPU} percent"),
        });
    }
    let amounts = [limits.memory, limits.memory_and_swap, limits.pids, pcpu];
    Ok(RESOURCES
        .iter()
        .zip(amounts)
        .filter_map(|((_, resource), amount)| {
            Some(format!("jail:{name}:{resource}:deny={}", amount?))
        })
        .collect())
}

/// `update` of a live jail's limits: rules for resources `limits` no longer limits are
/// removed; new and changed ones are added. A changed amount is only an addition: the
/// kernel's `rctl_rule_add` replaces a deny rule for the same subject and resource, so the
/// jail is never without the limit in between.
pub fn update_steps(
    name: &str,
    current: &[String],
    limits: &ResourceLimits,
) -> Result<Vec<Step>, PlatformError> {
    let wanted = rules(name, limits)?;
    let mut steps: Vec<Step> = current
        .iter()
        .filter(|r| !wanted.iter().any(|w| filter(w) == filter(r)))
        .map(|r| Step::RctlRemoveRule {
            filter: filter(r).to_string(),
        })
        .collect();
    steps.extend(
        wanted
            .into_iter()
            .filter(|r| !current.contains(r))
            .map(|rule| Step::RctlAddRule { rule }),
    );
    Ok(steps)
}

/// The filter that removes `rule`: the rule without its `=AMOUNT` (the amount is digits,
/// so the last `=` is its start even when a jail name has one).
pub fn filter(rule: &str) -> &str {
    rule.rsplit_once('=').map_or(rule, |(f, _)| f)
}

/// The amount of the `deny` rule for `resource` among `rules` (as recorded, `jail:NAME:
/// RESOURCE:deny=AMOUNT`), `None` when none limits it.
pub fn deny_amount(rules: &[String], resource: &str) -> Option<u64> {
    rules.iter().find_map(|r| {
        let (head, amount) = r.rsplit_once('=')?;
        let mut parts = head.rsplitn(3, ':');
        let action = parts.next()?;
        let res = parts.next()?;
        (action == "deny" && res == resource)
            .then(|| amount.parse().ok())
            .flatten()
    })
}
