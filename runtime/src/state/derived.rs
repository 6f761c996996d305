//! `derived.json`: what the commands after create need of the configuration, derived from
//! the validated [`ContainerConfig`] once, at create, and read typed ever after. Nothing
//! parses the bundle's `config.json` again, and later edits to the bundle have no effect.
//!
//! Who reads what: `exec` the process, rlimits, capabilities and seccomp profile; `start`
//! the poststart hooks; `delete` the poststop hooks. (What `update` needs lives in
//! `state.json`: the limits it compares against change with each update, and the cgroups
//! path is in the Linux backend's record of what create made.)

use oci_spec::runtime::{Hook, Process};
use serde::{Deserialize, Serialize};

use crate::config::{CapabilitySets, ConfigError, ContainerConfig, Rlimit, SeccompProfile};
use crate::hooks::Phase;

/// The file name inside the container's state directory.
pub const DERIVED_FILE: &str = "derived.json";

/// The format version this build writes and reads.
pub const DERIVED_VERSION: u32 = 1;

/// The derived record of one container (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Derived {
    pub version: u32,
    /// The container's process (user defaulted, without rlimits and capabilities, which
    /// follow): the base that `exec` flags modify, as with runc.
    pub process: Process,
    /// `process.rlimits`.
    #[serde(default)]
    pub rlimits: Vec<Rlimit>,
    /// `process.capabilities`.
    #[serde(default)]
    pub capabilities: CapabilitySets,
    /// `linux.seccomp`: it holds for every process in the container, exec'd ones too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seccomp: Option<SeccompProfile>,
    /// The hooks of the phases after create, in order.
    #[serde(default)]
    pub hooks: LaterHooks,
}

/// The hooks that run after create returned.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LaterHooks {
    #[serde(default)]
    pub poststart: Vec<Hook>,
    #[serde(default)]
    pub poststop: Vec<Hook>,
}

impl Derived {
    /// Derives the record from a validated configuration; `process` must be there (create
    /// refuses a configuration without one before this).
    pub fn from_config(cfg: &ContainerConfig) -> Result<Derived, ConfigError> {
        Ok(Derived {
            version: DERIVED_VERSION,
            process: cfg.process()?.clone(),
            rlimits: cfg.rlimits.clone(),
            capabilities: cfg.capabilities.clone(),
            seccomp: cfg.seccomp.clone(),
            hooks: LaterHooks {
                poststart: Phase::Poststart.hooks(&cfg.spec),
                poststop: Phase::Poststop.hooks(&cfg.spec),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn config(extra: serde_json::Value) -> ContainerConfig {
        let mut doc = serde_json::json!({
            "ociVersion": "1.3.0",
            "root": {"path": "rootfs"},
            "process": {
                "args": ["/bin/sh", "-c", "true"],
                "cwd": "/",
                "env": ["PATH=/bin", "A=b"],
                "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 64, "hard": 128}]
            }
        });
        for (k, v) in extra.as_object().unwrap() {
            doc[k] = v.clone();
        }
        ContainerConfig::from_value(doc, std::path::Path::new("/bundle")).unwrap()
    }

    #[test]
    fn the_record_carries_what_later_commands_read_and_round_trips() {
        let cfg = config(serde_json::json!({
            "linux": {"cgroupsPath": "/ns/c1"},
            "hooks": {
                "poststart": [{"path": "/bin/post", "args": ["post", "1"]}],
                "poststop": [{"path": "/bin/stop", "timeout": 5}],
                "prestart": [{"path": "/bin/pre"}]
            }
        }));
        let d = Derived::from_config(&cfg).unwrap();
        assert_eq!(d.version, DERIVED_VERSION);
        assert_eq!(d.rlimits.len(), 1);
        assert_eq!(d.rlimits[0].name, "RLIMIT_NOFILE");
        assert_eq!(d.process.env().as_ref().map(Vec::len), Some(2));
        assert_eq!(d.hooks.poststart.len(), 1);
        assert_eq!(d.hooks.poststart[0].path(), &PathBuf::from("/bin/post"));
        assert_eq!(d.hooks.poststop[0].timeout(), Some(5));
        let json = serde_json::to_vec(&d).unwrap();
        assert_eq!(serde_json::from_slice::<Derived>(&json).unwrap(), d);
    }

    #[test]
    fn no_hooks_are_empty_and_linux_settings_are_not_recorded() {
        let d = Derived::from_config(&config(serde_json::json!({
            "linux": {"cgroupsPath": "/ns/c1"}
        })))
        .unwrap();
        assert_eq!(d.hooks, LaterHooks::default());
        // The cgroups path is the Linux backend's (its record in state.json), not here.
        let json = serde_json::to_value(&d).unwrap();
        assert!(json.get("cgroupsPath").is_none(), "{json}");
    }
}
