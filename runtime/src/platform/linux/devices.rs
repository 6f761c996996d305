//! Device rules: which device nodes a container may open or make. `linux.resources.devices`
//! as runc reads it — the config's rules in order, then runc's default allow list (the
//! standard character devices, `/dev/pts/*`, `/dev/net/tun`, and mknod of any node), each
//! later rule overriding earlier ones for the access it names; a rule of type `a` with both
//! numbers wildcard and access `rwm` resets the list to "allow all" or "deny all". A list
//! that does not start with such a reset starts from "deny all", as runc's does.
//!
//! The rules are enforced by the kernel on every container: on cgroup v2 (also the unified
//! mount of a hybrid host) as a `BPF_PROG_TYPE_CGROUP_DEVICE` program ([`super::devfilter`]),
//! on a v1-only host as `devices.allow`/`devices.deny` writes ([`v1_writes`]).

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

/// The kernel's access bits (`BPF_DEVCG_ACC_*`).
pub const MKNOD: u8 = 1;
pub const READ: u8 = 2;
pub const WRITE: u8 = 4;
const ALL_ACCESS: u8 = MKNOD | READ | WRITE;

/// Which nodes a rule is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    All,
    Char,
    Block,
}

impl Kind {
    /// The kernel's `BPF_DEVCG_DEV_*` number; `All` has none.
    pub fn bpf_type(self) -> Option<i32> {
        match self {
            Kind::All => None,
            Kind::Block => Some(1),
            Kind::Char => Some(2),
        }
    }
}

/// One device rule; `None` numbers match any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub allow: bool,
    pub kind: Kind,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    /// [`READ`] | [`WRITE`] | [`MKNOD`].
    pub access: u8,
}

impl Rule {
    const fn allow_char(major: u32, minor: Option<u32>) -> Rule {
        Rule {
            allow: true,
            kind: Kind::Char,
            major: Some(major),
            minor,
            access: ALL_ACCESS,
        }
    }

    /// Whether this rule is a reset: every node, every access.
    fn is_reset(&self) -> bool {
        self.kind == Kind::All
            && self.major.is_none()
            && self.minor.is_none()
            && self.access == ALL_ACCESS
    }
}

/// runc's default allow list, appended after the config's rules.
pub const DEFAULT_ALLOWED: [Rule; 12] = [
    Rule {
        allow: true,
        kind: Kind::Char,
        major: None,
        minor: None,
        access: MKNOD,
    },
    Rule {
        allow: true,
        kind: Kind::Block,
        major: None,
        minor: None,
        access: MKNOD,
    },
    Rule::allow_char(1, Some(3)),    // /dev/null
    Rule::allow_char(1, Some(8)),    // /dev/random
    Rule::allow_char(1, Some(7)),    // /dev/full
    Rule::allow_char(5, Some(0)),    // /dev/tty
    Rule::allow_char(1, Some(5)),    // /dev/zero
    Rule::allow_char(1, Some(9)),    // /dev/urandom
    Rule::allow_char(5, Some(1)),    // /dev/console
    Rule::allow_char(136, None),     // /dev/pts/*
    Rule::allow_char(5, Some(2)),    // /dev/ptmx
    Rule::allow_char(10, Some(200)), // /dev/net/tun
];

/// A `linux.resources.devices` entry stockade cannot enforce.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DeviceRuleError {
    #[error("linux.resources.devices[{index}].type: {value} is not a device rule type; expected \"a\", \"b\" or \"c\"")]
    Type { index: usize, value: String },
    #[error("linux.resources.devices[{index}].access: {value} is not valid; expected a combination of r, w and m")]
    Access { index: usize, value: String },
    #[error("linux.resources.devices[{index}].{field}: {value} is out of range; expected a device number (or -1 for any)")]
    Number {
        index: usize,
        field: &'static str,
        value: i64,
    },
}

fn number(
    index: usize,
    field: &'static str,
    v: Option<i64>,
) -> Result<Option<u32>, DeviceRuleError> {
    match v {
        None => Ok(None),
        Some(v) if v < 0 => Ok(None),
        // The BPF program compares with 32-bit signed immediates; real numbers are 12 bits
        // (major) and 20 bits (minor).
        Some(v) if v <= i64::from(i32::MAX) => Ok(Some(v as u32)),
        Some(value) => Err(DeviceRuleError::Number {
            index,
            field,
            value,
        }),
    }
}

fn access(index: usize, text: Option<&str>) -> Result<u8, DeviceRuleError> {
    let Some(text) = text.filter(|t| !t.is_empty()) else {
        return Ok(ALL_ACCESS);
    };
    let mut bits = 0;
    for c in text.chars() {
        bits |= match c {
            'r' => READ,
            'w' => WRITE,
            'm' => MKNOD,
            _ => {
                return Err(DeviceRuleError::Access {
                    index,
                    value: stockade_quote::quote(text).to_string(),
                })
            }
        };
    }
    Ok(bits)
}

/// The rules in force for `config` (`linux.resources.devices`): its entries, then
/// [`DEFAULT_ALLOWED`].
pub fn rules(config: &[LinuxDeviceCgroup]) -> Result<Vec<Rule>, DeviceRuleError> {
    let mut out = Vec::with_capacity(config.len() + DEFAULT_ALLOWED.len());
    for (index, d) in config.iter().enumerate() {
        let kind = match d.typ().unwrap_or(LinuxDeviceType::A) {
            LinuxDeviceType::A => Kind::All,
            LinuxDeviceType::C => Kind::Char,
            LinuxDeviceType::B => Kind::Block,
            other => {
                return Err(DeviceRuleError::Type {
                    index,
                    value: stockade_quote::quote(other.as_str()).to_string(),
                })
            }
        };
        out.push(Rule {
            allow: d.allow(),
            kind,
            major: number(index, "major", d.major())?,
            minor: number(index, "minor", d.minor())?,
            access: access(index, d.access().as_deref())?,
        });
    }
    out.extend(DEFAULT_ALLOWED);
    Ok(out)
}

/// The rules as the kernel needs them: what applies when no rule matches, and the rules
/// after the last reset, in order (a later one overrides an earlier one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub default_allow: bool,
    pub rules: Vec<Rule>,
}

impl Policy {
    pub fn new(rules: &[Rule]) -> Policy {
        let mut policy = Policy {
            default_allow: false,
            rules: Vec::new(),
        };
        for r in rules {
            if r.is_reset() {
                policy.default_allow = r.allow;
                policy.rules.clear();
            } else {
                policy.rules.push(*r);
            }
        }
        policy
    }

    /// Whether `access` (one or more bits) to a node is allowed: each bit is decided by
    /// the last rule that matches the node and names that bit. The reference the BPF
    /// program is tested against.
    #[cfg(test)]
    pub fn allows(&self, kind: Kind, major: u32, minor: u32, access: u8) -> bool {
        [READ, WRITE, MKNOD]
            .into_iter()
            .filter(|bit| access & bit != 0)
            .all(|bit| {
                self.rules
                    .iter()
                    .rev()
                    .find(|r| {
                        r.access & bit != 0
                            && (r.kind == Kind::All || r.kind == kind)
                            && r.major.is_none_or(|m| m == major)
                            && r.minor.is_none_or(|m| m == minor)
                    })
                    .map_or(self.default_allow, |r| r.allow)
            })
    }
}

/// The cgroup v1 writes for `policy`, in order: `a` to `devices.allow` or `devices.deny`
/// (the reset), then one line per rule; a rule for all types is written once for `c` and
/// once for `b` (the kernel reads a line starting with `a` as a reset).
pub fn v1_writes(policy: &Policy) -> Vec<(&'static str, String)> {
    let file = |allow: bool| {
        if allow {
            "devices.allow"
        } else {
            "devices.deny"
        }
    };
    let mut out = vec![(file(policy.default_allow), "a".to_string())];
    let num = |n: Option<u32>| n.map_or("*".to_string(), |n| n.to_string());
    for r in &policy.rules {
        let mut acc = String::new();
        for (bit, c) in [(READ, 'r'), (WRITE, 'w'), (MKNOD, 'm')] {
            if r.access & bit != 0 {
                acc.push(c);
            }
        }
        let types: &[char] = match r.kind {
            Kind::All => &['c', 'b'],
            Kind::Char => &['c'],
            Kind::Block => &['b'],
        };
        for t in types {
            out.push((
                file(r.allow),
                format!("{t} {}:{} {acc}", num(r.major), num(r.minor)),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn parse(json: &str) -> Result<Vec<Rule>, DeviceRuleError> {
        let list: Vec<LinuxDeviceCgroup> = serde_json::from_str(json).unwrap();
        rules(&list)
    }

    /// What containerd and Podman send: deny all, then their allows.
    pub(crate) const CONTAINERD: &str = r#"[{"allow":false,"access":"rwm"},
        {"allow":true,"type":"c","major":1,"minor":5,"access":"rwm"},
        {"allow":true,"type":"c","major":10,"minor":229,"access":"rw"}]"#;

    #[test]
    fn defaults_follow_the_config_and_deny_the_rest() {
        let p = Policy::new(&parse(CONTAINERD).unwrap());
        assert!(!p.default_allow);
        assert!(
            p.allows(Kind::Char, 1, 3, READ | WRITE),
            "/dev/null by default"
        );
        assert!(p.allows(Kind::Char, 10, 229, READ | WRITE), "config allow");
        assert!(!p.allows(Kind::Char, 10, 230, READ), "another minor");
        assert!(!p.allows(Kind::Char, 1, 11, READ), "/dev/kmsg");
        assert!(
            p.allows(Kind::Char, 1, 11, MKNOD),
            "mknod of any node, as runc"
        );
        assert!(!p.allows(Kind::Block, 8, 0, READ), "a disk");
        assert!(p.allows(Kind::Char, 136, 7, READ | WRITE), "/dev/pts/7");
        let empty = Policy::new(&parse("[]").unwrap());
        assert!(!empty.default_allow && !empty.allows(Kind::Block, 8, 0, WRITE));
    }

    #[test]
    fn a_later_rule_overrides_an_earlier_one_per_access_bit() {
        let p = Policy::new(
            &parse(
                r#"[{"allow":true,"access":"rwm"},
                    {"allow":false,"type":"c","major":1,"minor":11,"access":"w"},
                    {"allow":false,"type":"b","access":"rw"}]"#,
            )
            .unwrap(),
        );
        assert!(p.default_allow);
        assert!(p.allows(Kind::Char, 1, 11, READ));
        assert!(!p.allows(Kind::Char, 1, 11, READ | WRITE), "w denied");
        assert!(!p.allows(Kind::Block, 8, 0, READ));
        assert!(
            p.allows(Kind::Block, 8, 0, MKNOD),
            "the default list's b *:* m"
        );
        assert!(p.allows(Kind::Char, 4, 1, READ | WRITE));
    }

    #[test]
    fn bad_entries_are_errors_naming_the_entry() {
        for (json, want) in [
            (r#"[{"allow":true,"type":"p"}]"#, "devices[0].type"),
            (
                r#"[{"allow":true},{"allow":true,"access":"rx"}]"#,
                "devices[1].access",
            ),
            (r#"[{"allow":true,"major":4294967296}]"#, "devices[0].major"),
        ] {
            let e = parse(json).unwrap_err().to_string();
            assert!(e.contains(want), "{json}: {e}");
        }
        let r = parse(r#"[{"allow":true,"type":"c","major":-1,"minor":-1,"access":""}]"#).unwrap();
        assert_eq!(
            (r[0].major, r[0].minor, r[0].access),
            (None, None, ALL_ACCESS)
        );
    }

    #[test]
    fn v1_lines_reset_then_list_each_rule() {
        let p = Policy::new(&parse(CONTAINERD).unwrap());
        let w = v1_writes(&p);
        assert_eq!(w[0], ("devices.deny", "a".to_string()));
        assert_eq!(w[1], ("devices.allow", "c 1:5 rwm".to_string()));
        assert_eq!(w[2], ("devices.allow", "c 10:229 rw".to_string()));
        assert_eq!(w[3], ("devices.allow", "c *:* m".to_string()));
        assert_eq!(w[4], ("devices.allow", "b *:* m".to_string()));
        assert!(w.contains(&("devices.allow", "c 136:* rwm".to_string())));
        let p = Policy::new(
            &parse(r#"[{"allow":true},{"allow":false,"major":8,"access":"r"}]"#).unwrap(),
        );
        let w = v1_writes(&p);
        assert_eq!(w[0], ("devices.allow", "a".to_string()));
        assert_eq!(w[1], ("devices.deny", "c 8:* r".to_string()));
        assert_eq!(w[2], ("devices.deny", "b 8:* r".to_string()));
    }
}
