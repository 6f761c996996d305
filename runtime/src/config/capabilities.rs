//! `process.capabilities`: the five Linux capability sets, read from the raw document so that
//! an unknown name is an error naming its exact JSON path (the `oci-spec` type keeps the
//! names in a hash set and loses their positions), and a name newer than `oci-spec` still
//! reaches the backend, which skips what the running kernel does not know.

use serde_json::Value;

use super::{json, ConfigError};

/// Every capability name the runtime-spec knows, at its kernel number (`linux/capability.h`).
/// The position is the number: CAP_CHOWN is 0, CAP_CHECKPOINT_RESTORE 40.
pub const CAPABILITY_NAMES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The five sets, each a list of kernel capability numbers in the order given (duplicates
/// removed). A process without `process.capabilities` gets five empty sets, as with runc.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CapabilitySets {
    pub bounding: Vec<u8>,
    pub effective: Vec<u8>,
    pub permitted: Vec<u8>,
    pub inheritable: Vec<u8>,
    pub ambient: Vec<u8>,
}

/// The JSON keys of the sets, in the order of [`CapabilitySets::sets`].
pub const SET_NAMES: [&str; 5] = [
    "bounding",
    "effective",
    "permitted",
    "inheritable",
    "ambient",
];

impl CapabilitySets {
    /// (JSON key, numbers) for each set.
    pub fn sets(&self) -> [(&'static str, &[u8]); 5] {
        [
            (SET_NAMES[0], &self.bounding),
            (SET_NAMES[1], &self.effective),
            (SET_NAMES[2], &self.permitted),
            (SET_NAMES[3], &self.inheritable),
            (SET_NAMES[4], &self.ambient),
        ]
    }

    /// Whether any set holds a capability.
    pub fn is_empty(&self) -> bool {
        self.sets().iter().all(|(_, s)| s.is_empty())
    }

    /// Adds the names given to `exec --cap` as runc does: to the bounding, effective and
    /// permitted sets, and to the ambient set only where the inheritable set already holds
    /// the capability (the kernel refuses an ambient capability that is not inheritable).
    pub fn add_from_flags(&mut self, names: &[String]) -> Result<(), ConfigError> {
        for (i, name) in names.iter().enumerate() {
            let n = number(name, &format!("--cap[{i}]"))?;
            let inheritable = self.inheritable.contains(&n);
            for set in [&mut self.bounding, &mut self.effective, &mut self.permitted] {
                if !set.contains(&n) {
                    set.push(n);
                }
            }
            if inheritable && !self.ambient.contains(&n) {
                self.ambient.push(n);
            }
        }
        Ok(())
    }
}

/// The name of capability number `n`.
pub fn name_of(n: u8) -> &'static str {
    CAPABILITY_NAMES
        .get(n as usize)
        .copied()
        .unwrap_or("CAP_UNKNOWN")
}

/// The number of a capability name (`CAP_CHOWN`); `path` is the JSON path for the error.
pub fn number(name: &str, path: &str) -> Result<u8, ConfigError> {
    CAPABILITY_NAMES
        .iter()
        .position(|n| *n == name)
        .map(|i| i as u8)
        .ok_or_else(|| {
            ConfigError::untrusted(
                path,
                stockade_quote::quote(name).to_string(),
                "CAP_* names such as CAP_CHOWN",
            )
        })
}

/// Removes `process.capabilities` from a raw `process` object and parses it.
pub(crate) fn take(
    process: &mut serde_json::Map<String, Value>,
) -> Result<CapabilitySets, ConfigError> {
    let raw = match process.remove("capabilities") {
        None | Some(Value::Null) => return Ok(CapabilitySets::default()),
        Some(Value::Object(m)) => m,
        Some(other) => {
            return Err(ConfigError::untrusted(
                "process.capabilities",
                json::compact(&other),
                "an object with bounding, effective, permitted, inheritable and ambient lists",
            ))
        }
    };
    let mut sets = CapabilitySets::default();
    for key in raw.keys() {
        if !SET_NAMES.contains(&key.as_str()) {
            return Err(ConfigError::untrusted(
                format!("process.capabilities.{key}"),
                stockade_quote::quote(key).to_string(),
                "one of bounding, effective, permitted, inheritable, ambient",
            ));
        }
    }
    for (key, out) in SET_NAMES.iter().zip([
        &mut sets.bounding,
        &mut sets.effective,
        &mut sets.permitted,
        &mut sets.inheritable,
        &mut sets.ambient,
    ]) {
        let path = format!("process.capabilities.{key}");
        let items = match raw.get(*key) {
            None | Some(Value::Null) => continue,
            Some(Value::Array(a)) => a,
            Some(other) => {
                return Err(ConfigError::untrusted(
                    path,
                    json::compact(other),
                    "an array of CAP_* names",
                ))
            }
        };
        for (i, item) in items.iter().enumerate() {
            let item_path = format!("{path}[{i}]");
            let Value::String(name) = item else {
                return Err(ConfigError::untrusted(
                    item_path,
                    json::compact(item),
                    "a CAP_* name such as CAP_CHOWN",
                ));
            };
            let n = number(name, &item_path)?;
            if !out.contains(&n) {
                out.push(n);
            }
        }
    }
    Ok(sets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<CapabilitySets, ConfigError> {
        let Value::Object(mut m) = json!({ "capabilities": v }) else {
            unreachable!()
        };
        take(&mut m)
    }

    #[test]
    fn names_map_to_kernel_numbers_in_order_without_duplicates() {
        let s = parse(json!({
            "bounding": ["CAP_KILL", "CAP_CHOWN", "CAP_KILL"],
            "ambient": ["CAP_CHECKPOINT_RESTORE"],
        }))
        .unwrap();
        assert_eq!(s.bounding, vec![5, 0]);
        assert_eq!(s.ambient, vec![40]);
        assert!(s.effective.is_empty() && s.permitted.is_empty() && s.inheritable.is_empty());
        assert_eq!(name_of(21), "CAP_SYS_ADMIN");
        assert_eq!(CAPABILITY_NAMES.len(), 41);
    }

    #[test]
    fn absent_capabilities_are_five_empty_sets() {
        let Value::Object(mut m) = json!({}) else {
            unreachable!()
        };
        assert!(take(&mut m).unwrap().is_empty());
        assert!(parse(Value::Null).unwrap().is_empty());
    }

    #[test]
    fn unknown_names_are_errors_naming_the_json_path() {
        let err = parse(json!({"bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_FOO"]}))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("process.capabilities.bounding[3]")
                && err.contains("\"CAP_FOO\"")
                && err.contains("CAP_CHOWN"),
            "{err}"
        );
        let err = parse(json!({"effective": "CAP_CHOWN"}))
            .unwrap_err()
            .to_string();
        assert!(err.contains("process.capabilities.effective"), "{err}");
        let err = parse(json!({"ambiant": []})).unwrap_err().to_string();
        assert!(err.contains("process.capabilities.ambiant"), "{err}");
        let err = parse(json!({"permitted": [7]})).unwrap_err().to_string();
        assert!(err.contains("process.capabilities.permitted[0]"), "{err}");
    }

    #[test]
    fn exec_cap_flags_add_as_runc_does() {
        let mut s = CapabilitySets {
            inheritable: vec![5],
            ..CapabilitySets::default()
        };
        s.add_from_flags(&["CAP_NET_ADMIN".into(), "CAP_KILL".into()])
            .unwrap();
        assert_eq!(s.bounding, vec![12, 5]);
        assert_eq!(s.effective, vec![12, 5]);
        assert_eq!(s.permitted, vec![12, 5]);
        assert_eq!(s.ambient, vec![5]);
        assert_eq!(s.inheritable, vec![5]);
        let err = s.add_from_flags(&["NET_ADMIN".into()]).unwrap_err();
        assert!(err.to_string().contains("--cap[0]"), "{err}");
    }
}
