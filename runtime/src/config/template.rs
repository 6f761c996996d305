//! The default configuration `stockade spec` writes: a FreeBSD shell container.

use serde_json::{json, Value};

use super::SPEC_VERSION;

/// A runtime-spec 1.3.0 FreeBSD `config.json`: `sh` as root in `/`, the root filesystem in
/// `rootfs`, devfs with ruleset 4 (jail(8)'s `devfsrules_jail`) on `/dev`, fdescfs on
/// `/dev/fd`, the host's network (ip4/ip6 inherit), private SysV IPC. `terminal` is false
/// so the shell works with plain pipes; callers that want a pty set it and pass
/// `--console-socket`.
pub fn default_freebsd_config() -> Value {
    json!({
        "ociVersion": SPEC_VERSION,
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": [
                "PATH=/sbin:/bin:/usr/sbin:/usr/bin:/usr/local/sbin:/usr/local/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "rlimits": [
                {"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}
            ]
        },
        "root": {"path": "rootfs", "readonly": false},
        "hostname": "stockade",
        "mounts": [
            {"destination": "/dev", "type": "devfs", "source": "devfs", "options": ["ruleset=4"]},
            {"destination": "/dev/fd", "type": "fdescfs", "source": "fdescfs", "options": []}
        ],
        "freebsd": {
            "jail": {
                "host": "new",
                "ip4": "inherit",
                "ip6": "inherit",
                "sysvmsg": "new",
                "sysvsem": "new",
                "sysvshm": "new",
                "enforceStatfs": 2,
                "allow": {"setHostname": false, "rawSockets": false}
            }
        }
    })
}

/// The capabilities Podman gives an image's process by default (containers.conf
/// `default_capabilities`): enough for images that change user or own files, nothing that
/// reaches the host (no CAP_SYS_ADMIN, CAP_NET_ADMIN, CAP_SYS_MODULE, CAP_SYS_PTRACE…).
pub const IMAGE_DEFAULT_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_NET_BIND_SERVICE",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
];

/// Adds to `spec` what a container made from an image gets on a Linux host unless the
/// configuration says otherwise, as Podman and `runc spec` give it: the default capability
/// set (all of it in the effective and permitted sets only for uid 0, as Podman does; a
/// non-root user keeps it only as the bounding set), and runc's masked and read-only /proc
/// and /sys paths, so that a root process can neither read host kernel state nor write
/// host-global knobs such as `/proc/sys/kernel/core_pattern`; and, when the configuration
/// has no `linux.seccomp`, Podman's default seccomp profile (see
/// [`super::default_seccomp`]), resolved for the bounding set.
pub fn add_linux_image_defaults(spec: &mut Value) {
    let caps = json!(IMAGE_DEFAULT_CAPABILITIES);
    let root = spec["process"]["user"]["uid"].as_u64().unwrap_or(0) == 0;
    let granted = if root { caps.clone() } else { json!([]) };
    if spec["process"]["capabilities"].is_null() {
        spec["process"]["capabilities"] = json!({
            "bounding": caps,
            "effective": granted,
            "permitted": granted,
        });
    }
    let linux = &mut spec["linux"];
    // A `linux` object without `namespaces` lists none (every namespace the runtime's own,
    // as runc reads it): name the ones the default jail has — a mount and a PID namespace
    // of its own, and the UTS and IPC namespaces its host=new and sysv*=new give it (the
    // freebsd section still decides those).
    if linux["namespaces"].is_null() {
        linux["namespaces"] = json!([
            {"type": "pid"},
            {"type": "mount"},
            {"type": "uts"},
            {"type": "ipc"}
        ]);
    }
    if linux["maskedPaths"].is_null() {
        linux["maskedPaths"] = json!([
            "/proc/acpi",
            "/proc/asound",
            "/proc/kcore",
            "/proc/keys",
            "/proc/latency_stats",
            "/proc/timer_list",
            "/proc/timer_stats",
            "/proc/sched_debug",
            "/proc/scsi",
            "/sys/firmware",
            "/sys/devices/virtual/powercap"
        ]);
    }
    if linux["readonlyPaths"].is_null() {
        linux["readonlyPaths"] = json!([
            "/proc/bus",
            "/proc/fs",
            "/proc/irq",
            "/proc/sys",
            "/proc/sysrq-trigger"
        ]);
    }
    // After the capabilities: the profile's conditional rules follow the bounding set.
    super::default_seccomp::add_default(spec);
}

/// Adds to an image's `spec`, for a rootless runtime (an unprivileged caller with `uid` and
/// `gid`), a user namespace whose root is the caller: the single mapping a process may
/// write for its child without privileges or /etc/subuid ranges (kept when the
/// configuration already has mappings). A sysfs on `/sys` becomes a read-only bind of the
/// host's, as in `runc spec --rootless`: the kernel mounts sysfs only for the owner of the
/// network namespace, and the image's container shares the host's.
pub fn add_rootless_user_namespace(spec: &mut Value, uid: u32, gid: u32) {
    if let Some(mounts) = spec["mounts"].as_array_mut() {
        for m in mounts.iter_mut() {
            let sysfs = matches!(m["type"].as_str(), Some("sysfs" | "linsysfs"));
            if sysfs && m["destination"] == "/sys" {
                *m = json!({"destination": "/sys", "type": "bind", "source": "/sys",
                    "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
            }
        }
    }
    let linux = &mut spec["linux"];
    if !linux["uidMappings"].is_null() || !linux["gidMappings"].is_null() {
        return;
    }
    if let Some(list) = linux["namespaces"].as_array_mut() {
        if !list.iter().any(|n| n["type"] == "user") {
            list.push(json!({"type": "user"}));
        }
    }
    linux["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1}]);
    linux["gidMappings"] = json!([{"containerID": 0, "hostID": gid, "size": 1}]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ContainerConfig;
    use crate::id::ContainerId;
    use crate::jail::JailSpec;

    fn schema_dir() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../reference/runtime-spec-v1.3.0/schema")
    }

    /// A draft-04 validator for one of the official schema files, with every sibling file
    /// registered as a resource. defs.json 1.3.0 has one malformed pointer
    /// (`#definitions/uint32`, missing its slash), repaired here in memory.
    fn validator(file: &str) -> jsonschema::Validator {
        let dir = std::fs::canonicalize(schema_dir()).unwrap();
        let load = |name: &str| -> Value {
            let text = std::fs::read_to_string(dir.join(name)).unwrap();
            serde_json::from_str(&text.replace("\"#definitions/", "\"#/definitions/")).unwrap()
        };
        let mut opts = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft4)
            .with_base_uri(format!("file://{}/{file}", dir.display()));
        for entry in std::fs::read_dir(&dir).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            if name.ends_with(".json") && name != file {
                let resource = jsonschema::Resource::from_contents(load(&name)).unwrap();
                opts = opts.with_resource(format!("file://{}/{name}", dir.display()), resource);
            }
        }
        opts.build(&load(file)).unwrap()
    }

    #[test]
    fn default_config_is_valid_against_the_official_schema() {
        let v = validator("config-schema.json");
        let errors: Vec<String> = v
            .iter_errors(&default_freebsd_config())
            .map(|e| format!("{}: {e}", e.instance_path))
            .collect();
        assert!(errors.is_empty(), "{errors:?}");
    }

    #[test]
    fn schema_check_is_not_vacuous() {
        let v = validator("config-schema.json");
        let mut bad = default_freebsd_config();
        bad["freebsd"]["jail"]["vnet"] = json!("disable");
        assert!(!v.is_valid(&bad));
        let mut bad = default_freebsd_config();
        bad["process"]["args"] = json!("sh");
        assert!(!v.is_valid(&bad));
    }

    #[test]
    fn default_config_loads_and_translates() {
        let cfg = ContainerConfig::from_value(default_freebsd_config(), std::path::Path::new("/b"))
            .unwrap();
        let spec = JailSpec::from_config(&cfg, &ContainerId::parse("c").unwrap()).unwrap();
        assert_eq!(spec.enforce_statfs, 2);
        assert_eq!(cfg.spec.mounts().as_ref().map(Vec::len), Some(2));
    }

    #[test]
    fn image_defaults_make_proc_sys_read_only_and_grant_capabilities_only_to_root() {
        let mut root_spec = default_freebsd_config();
        add_linux_image_defaults(&mut root_spec);
        assert_eq!(root_spec["linux"]["readonlyPaths"][3], "/proc/sys");
        assert_eq!(
            root_spec["process"]["capabilities"]["effective"],
            json!(IMAGE_DEFAULT_CAPABILITIES)
        );
        let cfg = ContainerConfig::from_value(root_spec, std::path::Path::new("/b")).unwrap();
        assert_eq!(
            cfg.capabilities.bounding.len(),
            IMAGE_DEFAULT_CAPABILITIES.len()
        );

        let mut user_spec = default_freebsd_config();
        user_spec["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        add_linux_image_defaults(&mut user_spec);
        assert_eq!(user_spec["process"]["capabilities"]["effective"], json!([]));
        assert_eq!(
            user_spec["process"]["capabilities"]["bounding"],
            json!(IMAGE_DEFAULT_CAPABILITIES)
        );
    }

    #[test]
    fn image_defaults_name_the_namespaces_of_the_default_jail() {
        let mut spec = default_freebsd_config();
        add_linux_image_defaults(&mut spec);
        let types: Vec<_> = spec["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert_eq!(types, ["pid", "mount", "uts", "ipc"]);
        let cfg = ContainerConfig::from_value(spec.clone(), std::path::Path::new("/b")).unwrap();
        let mode = |s: &Option<crate::config::Setting<crate::config::SharingMode>>| {
            s.as_ref().map(|s| s.value)
        };
        assert_eq!(mode(&cfg.jail.host), Some(crate::config::SharingMode::New));
        assert_eq!(
            mode(&cfg.jail.sysvshm),
            Some(crate::config::SharingMode::New)
        );
        // What the configuration lists is kept.
        spec["linux"]["namespaces"] = json!([{"type": "mount"}]);
        add_linux_image_defaults(&mut spec);
        assert_eq!(spec["linux"]["namespaces"], json!([{"type": "mount"}]));
    }

    #[test]
    fn a_rootless_image_gets_a_user_namespace_whose_root_is_the_caller() {
        let mut spec = default_freebsd_config();
        add_linux_image_defaults(&mut spec);
        add_rootless_user_namespace(&mut spec, 1000, 1001);
        assert_eq!(spec["linux"]["namespaces"][4], json!({"type": "user"}));
        assert_eq!(
            spec["linux"]["gidMappings"],
            json!([{"containerID": 0, "hostID": 1001, "size": 1}])
        );
        let cfg = ContainerConfig::from_value(spec.clone(), std::path::Path::new("/b"));
        assert!(cfg.is_ok());
        let mut with_sys =
            json!({"mounts": [{"destination": "/sys", "type": "linsysfs", "source": "linsysfs"}]});
        add_rootless_user_namespace(&mut with_sys, 1000, 1001);
        assert_eq!(with_sys["mounts"][0]["type"], "bind");
        assert_eq!(with_sys["mounts"][0]["options"][0], "rbind");
        // Mappings already given are the configuration's.
        spec["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 5, "size": 1}]);
        add_rootless_user_namespace(&mut spec, 1000, 1001);
        assert_eq!(spec["linux"]["uidMappings"][0]["hostID"], 5);
    }

    #[test]
    fn image_defaults_keep_what_the_configuration_already_says() {
        let mut spec = default_freebsd_config();
        spec["process"]["capabilities"] = json!({"bounding": ["CAP_KILL"]});
        spec["linux"] = json!({"maskedPaths": [], "readonlyPaths": ["/x"]});
        add_linux_image_defaults(&mut spec);
        assert_eq!(
            spec["process"]["capabilities"],
            json!({"bounding": ["CAP_KILL"]})
        );
        assert_eq!(spec["linux"]["maskedPaths"], json!([]));
        assert_eq!(spec["linux"]["readonlyPaths"], json!(["/x"]));
    }
}
