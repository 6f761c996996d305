//! `stockade features`: what this runtime supports, in the runtime-spec 1.3.0 features
//! format, plus a `freebsd` object describing the jail backend.

use serde_json::{json, Value};

use crate::config::freebsd::{ALLOW_FLAGS, JAIL_MOUNTABLE_FS};
use crate::config::SPEC_VERSION;
use crate::mounts::{FLAG_OPTIONS, PROPAGATION_OPTIONS};
use crate::platform::freebsd_plan::rctl;
use crate::target::Target;

/// Mount types the FreeBSD backend mounts.
pub const FREEBSD_MOUNT_TYPES: &[&str] = &[
    "nullfs",
    "bind",
    "rbind",
    "devfs",
    "fdescfs",
    "tmpfs",
    "procfs",
    "linprocfs",
    "linsysfs",
];

/// The features document.
pub fn features() -> Value {
    let mut mount_options: Vec<&str> = FLAG_OPTIONS.to_vec();
    mount_options.extend(["bind", "rbind"]);
    mount_options.push("tmpcopyup");
    // Mount propagation is a Linux mount namespace's; FreeBSD mounts have none.
    if crate::platform::HOST_TARGET == Target::Linux {
        mount_options.extend(PROPAGATION_OPTIONS);
    }
    mount_options.sort_unstable();
    // The linux.resources fields the jail backend enforces, each with its rctl(8) resource.
    let rctl: serde_json::Map<String, Value> = rctl::RESOURCES
        .iter()
        .map(|(field, resource)| (format!("linux.resources.{field}"), json!(resource)))
        .collect();
    let annotations = [
        crate::config::PARENT_JAIL,
        "org.freebsd.jail.vnet",
        "org.freebsd.jail.sysvmsg",
        "org.freebsd.jail.sysvsem",
        "org.freebsd.jail.sysvshm",
        "org.freebsd.jail.ip4.addr",
        "org.freebsd.jail.ip6.addr",
        "org.freebsd.jail.allow.<name>",
    ];
    let mut doc = json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": SPEC_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": mount_options,
        "annotations": {
            "org.opencontainers.runtime.name": "stockade",
            "org.opencontainers.runtime.version": env!("CARGO_PKG_VERSION"),
            "org.freebsd.stockade.annotations": annotations.join(","),
        },
        "potentiallyUnsafeConfigAnnotations": ["org.freebsd.jail.allow.", "org.freebsd.parentJail"],
        "freebsd": {
            "jail": {
                "parameters": ["host", "ip4", "ip4.addr", "ip6", "ip6.addr", "vnet", "sysvmsg", "sysvsem", "sysvshm", "enforce_statfs", "children.max", "persist", "allow.*"],
                "allow": ALLOW_FLAGS,
                "allowMount": JAIL_MOUNTABLE_FS,
                "vnet": true,
                "vnetInterfaces": true,
                "interface": true,
                "parent": true,
            },
            "mountTypes": FREEBSD_MOUNT_TYPES,
            "devices": true,
            "rctl": rctl,
            "rlimits": Target::FreeBsd.rlimits().iter().map(|(name, _)| *name).collect::<Vec<_>>(),
        },
    });
    // What only the running backend can say about this host (Linux: namespaces, cgroup
    // drivers, capabilities, seccomp, LSMs).
    crate::platform::host_features(&mut doc);
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freebsd_lists_its_own_rlimits_on_any_host() {
        let doc = features();
        let names = doc["freebsd"]["rlimits"].as_array().unwrap();
        assert!(names.iter().any(|n| n == "RLIMIT_SWAP"), "{names:?}");
        assert!(!names.iter().any(|n| n == "RLIMIT_RTPRIO"), "{names:?}");
        assert_eq!(names.len(), 17);
    }

    #[test]
    fn freebsd_names_the_rctl_resource_of_each_enforced_limit() {
        let doc = features();
        let rctl = doc["freebsd"]["rctl"].as_object().unwrap();
        let pairs: Vec<(&str, &str)> = rctl
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str().unwrap()))
            .collect();
        for want in [
            ("linux.resources.memory.limit", "memoryuse"),
            ("linux.resources.memory.swap", "swapuse"),
            ("linux.resources.pids.limit", "maxproc"),
            ("linux.resources.cpu.quota", "pcpu"),
        ] {
            assert!(pairs.contains(&want), "{want:?} not in {rctl:?}");
        }
        assert_eq!(pairs.len(), 4);
    }
}
