//! The Linux part of `stockade features`: the `linux` object, with what this host applies.

use serde_json::json;

/// Adds the `linux` object to the features document `doc`: the namespaces and cgroup
/// drivers the backend applies, and the confinement this host supports.
pub fn host_features(doc: &mut serde_json::Value) {
    doc["linux"] = json!({
        "namespaces": ["mount", "pid", "uts", "ipc", "network", "cgroup", "user"],
        // cgroupfs only (no systemd): the resource limits of crate::limits.
        "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": false},
        "intelRdt": {"enabled": false},
        "mountExtensions": {"idmap": {"enabled": false}},
    });
    super::confine::confinement_features(&mut doc["linux"]);
}

#[cfg(test)]
mod tests {
    use crate::features::features;

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
