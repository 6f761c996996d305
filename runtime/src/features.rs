//! `stockade features`: what this runtime supports, in the runtime-spec 1.3.0 features
//! format, plus a `freebsd` object describing the jail backend.

use serde_json::{json, Value};

use crate::config::freebsd::{ALLOW_FLAGS, JAIL_MOUNTABLE_FS};
use crate::config::SPEC_VERSION;
use crate::mounts::{FLAG_OPTIONS, PROPAGATION_OPTIONS};
use crate::platform::freebsd_plan::rctl;

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
    if cfg!(target_os = "linux") {
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
            "rlimits": ["RLIMIT_AS", "RLIMIT_CORE", "RLIMIT_CPU", "RLIMIT_DATA", "RLIMIT_FSIZE", "RLIMIT_KQUEUES", "RLIMIT_MEMLOCK", "RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_NPTS", "RLIMIT_PIPEBUF", "RLIMIT_RSS", "RLIMIT_SBSIZE", "RLIMIT_STACK", "RLIMIT_SWAP", "RLIMIT_UMTXP", "RLIMIT_VMEM"],
        },
    });
    if cfg!(target_os = "linux") {
        doc["linux"] = json!({
            "namespaces": ["mount", "pid", "uts", "ipc", "network", "cgroup", "user"],
            // cgroupfs only (no systemd): the resource limits of crate::limits.
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": false},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": false}},
        });
    }
    // capabilities, seccomp, apparmor, selinux: what this host applies.
    #[cfg(target_os = "linux")]
    crate::platform::confinement_features(&mut doc["linux"]);
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn linux_reports_the_confinement_it_applies() {
        let doc = features();
        let l = &doc["linux"];
        let caps: Vec<&str> = l["capabilities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(caps.contains(&"CAP_SYS_ADMIN") && caps.contains(&"CAP_CHOWN"));
        let last: usize = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(caps.len(), (last + 1).min(41));
        let s = &l["seccomp"];
        assert_eq!(s["enabled"], true);
        for (key, want) in [
            ("actions", "SCMP_ACT_NOTIFY"),
            ("operators", "SCMP_CMP_MASKED_EQ"),
            ("archs", "SCMP_ARCH_X86_64"),
            ("knownFlags", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"),
            ("supportedFlags", "SECCOMP_FILTER_FLAG_TSYNC"),
        ] {
            assert!(
                s[key].as_array().unwrap().iter().any(|v| v == want),
                "{key} lacks {want}: {s}"
            );
        }
        assert_eq!(
            l["apparmor"]["enabled"],
            std::path::Path::new("/sys/module/apparmor/parameters/enabled").exists()
                && std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
                    .unwrap()
                    .starts_with('Y')
        );
        assert!(l["selinux"]["enabled"].is_boolean());
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

    #[cfg(target_os = "linux")]
    #[test]
    fn linux_reports_the_namespaces_and_cgroup_drivers_it_applies() {
        let doc = features();
        let ns: Vec<&str> = doc["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(
            ns,
            ["mount", "pid", "uts", "ipc", "network", "cgroup", "user"]
        );
        let cg = &doc["linux"]["cgroup"];
        assert_eq!(
            (cg["v1"].as_bool(), cg["v2"].as_bool()),
            (Some(true), Some(true))
        );
        assert_eq!(cg["systemd"].as_bool(), Some(false), "cgroupfs only");
        let opts = doc["mountOptions"].as_array().unwrap();
        for p in ["rslave", "rshared", "rprivate", "runbindable"] {
            assert!(opts.iter().any(|o| o == p), "{p} in mountOptions");
        }
    }
}
