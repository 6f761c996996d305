//! `process.capabilities` on Linux, in the order that survives the uid change (as runc):
//! keep-caps and the bounding set before setuid/setgid ([`before_user`]), then the
//! inheritable, effective and permitted sets, the ambient set last, and keep-caps cleared
//! ([`after_user`]).

use caps::{CapSet, Capability, CapsHashSet};

use crate::config::capabilities::name_of;
use crate::config::CapabilitySets;
use crate::platform::PlatformError;

fn failed(what: String, e: caps::errors::CapsError) -> PlatformError {
    PlatformError::Failed {
        call: what,
        detail: e.to_string(),
    }
}

/// The capabilities of `numbers` that this kernel knows (the others were warned about at
/// create, see [`unknown_to_kernel`]).
fn known(numbers: &[u8], supported: &CapsHashSet) -> CapsHashSet {
    numbers
        .iter()
        .filter_map(|n| name_of(*n).parse::<Capability>().ok())
        .filter(|c| supported.contains(c))
        .collect()
}

/// The names in `sets` that the running kernel does not know (newer than it), for the one
/// warning at create.
pub fn unknown_to_kernel(sets: &CapabilitySets) -> Vec<&'static str> {
    let supported = caps::runtime::thread_all_supported();
    let mut out: Vec<&'static str> = sets
        .sets()
        .iter()
        .flat_map(|(_, s)| s.iter())
        .map(|n| name_of(*n))
        .filter(|name| {
            name.parse::<Capability>()
                .map_or(true, |c| !supported.contains(&c))
        })
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// The names in `process.capabilities.ambient` that the kernel would refuse to raise
/// because the permitted or the inheritable set lacks them. runc skips these with a warning
/// (`runc spec`'s own config asks for ambient capabilities without inheritable ones), so
/// stockade does too, and names them once at create.
pub fn ambient_unraisable(sets: &CapabilitySets) -> Vec<&'static str> {
    sets.ambient
        .iter()
        .filter(|n| !sets.permitted.contains(n) || !sets.inheritable.contains(n))
        .map(|n| name_of(*n))
        .collect()
}

/// Before the uid changes: keep the permitted set across setuid, and shrink the bounding
/// set (which needs CAP_SETPCAP, still held here).
pub fn before_user(sets: &CapabilitySets) -> Result<(), PlatformError> {
    caps::securebits::set_keepcaps(true)
        .map_err(|e| failed("prctl(PR_SET_KEEPCAPS, 1)".into(), e))?;
    let supported = caps::runtime::thread_all_supported();
    let keep = known(&sets.bounding, &supported);
    let mut all: Vec<Capability> = supported.iter().copied().collect();
    all.sort_unstable_by_key(|c| c.index());
    for c in all.into_iter().filter(|c| !keep.contains(c)) {
        caps::drop(None, CapSet::Bounding, c).map_err(|e| {
            failed(
                format!("dropping {c} from the bounding set (process.capabilities.bounding)"),
                e,
            )
        })?;
    }
    Ok(())
}

/// After the uid changed: the inheritable set first (the permitted set still holds
/// everything it may draw from), then effective, then permitted (which may only shrink and
/// must hold the effective set), the ambient set last (only what permitted and inheritable
/// both hold, see [`ambient_unraisable`]), then keep-caps off again.
pub fn after_user(sets: &CapabilitySets) -> Result<(), PlatformError> {
    let supported = caps::runtime::thread_all_supported();
    for (set, key, numbers) in [
        (CapSet::Inheritable, "inheritable", &sets.inheritable),
        (CapSet::Effective, "effective", &sets.effective),
        (CapSet::Permitted, "permitted", &sets.permitted),
    ] {
        caps::set(None, set, &known(numbers, &supported)).map_err(|e| {
            failed(
                format!("capset of process.capabilities.{key} (effective must be within permitted, inheritable within bounding)"),
                e,
            )
        })?;
    }
    let raisable: Vec<u8> = sets
        .ambient
        .iter()
        .copied()
        .filter(|n| sets.permitted.contains(n) && sets.inheritable.contains(n))
        .collect();
    let ambient = known(&raisable, &supported);
    if !ambient.is_empty() || caps::runtime::ambient_set_supported().is_ok() {
        caps::clear(None, CapSet::Ambient)
            .map_err(|e| failed("clearing the ambient set".into(), e))?;
    }
    let mut ambient: Vec<Capability> = ambient.into_iter().collect();
    ambient.sort_unstable_by_key(|c| c.index());
    for c in ambient {
        caps::raise(None, CapSet::Ambient, c).map_err(|e| {
            failed(
                format!(
                    "raising {c} in the ambient set (process.capabilities.ambient needs it in permitted and inheritable)"
                ),
                e,
            )
        })?;
    }
    caps::securebits::set_keepcaps(false).map_err(|e| failed("prctl(PR_SET_KEEPCAPS, 0)".into(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ambient_without_inheritable_is_named_as_unraisable() {
        // runc spec's default: ambient = permitted = {AUDIT_WRITE, KILL, NET_BIND_SERVICE},
        // inheritable empty. CAP_CHOWN (0) is in both sets, so it alone can be raised.
        let sets = CapabilitySets {
            permitted: vec![0, 5, 10, 29],
            inheritable: vec![0],
            ambient: vec![0, 5, 10, 29],
            ..CapabilitySets::default()
        };
        assert_eq!(
            ambient_unraisable(&sets),
            ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_AUDIT_WRITE"]
        );
        let none = CapabilitySets {
            permitted: vec![5],
            inheritable: vec![5],
            ambient: vec![5],
            ..CapabilitySets::default()
        };
        assert!(ambient_unraisable(&none).is_empty());
    }
}
