//! Test support: the kernel's jail parameter table (reference/freebsd/jail-params.tsv) and
//! a checker that holds every translated parameter list against it and the kernel's rules.

use std::collections::HashMap;

use super::{JailParam, ParamValue};
use crate::config::SharingMode;

/// One kernel parameter: its type column, split.
struct KernelParam {
    kind: String,
    flags: Vec<String>,
    values: String,
}

/// The table, keyed by parameter name.
pub struct KernelTable(HashMap<String, KernelParam>);

impl KernelTable {
    pub fn load() -> KernelTable {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../reference/freebsd/jail-params.tsv"
        );
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let mut map = HashMap::new();
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split('\t').collect();
            assert!(cols.len() >= 3, "short row in {path}: {line}");
            let mut parts = cols[1].split(',');
            let kind = parts.next().unwrap_or_default().to_string();
            map.insert(
                cols[0].to_string(),
                KernelParam {
                    kind,
                    flags: parts.map(str::to_string).collect(),
                    values: cols[2].to_string(),
                },
            );
        }
        assert!(map.len() > 50, "{path} looks truncated");
        KernelTable(map)
    }

    /// Panics, naming the parameter, unless `params` is a list the kernel would take from
    /// a `jail_set(JAIL_CREATE)` by a host process.
    pub fn check(&self, params: &[JailParam]) {
        let mut seen = std::collections::HashSet::new();
        for p in params {
            assert!(seen.insert(p.name.clone()), "{} set twice", p.name);
            let k = self
                .0
                .get(&p.name)
                .unwrap_or_else(|| panic!("{} is not a kernel jail parameter", p.name));
            assert!(
                !k.kind.starts_with("pseudo")
                    && !k.flags.iter().any(|f| f == "ro" || f == "special"),
                "{} is not settable ({} {:?})",
                p.name,
                k.kind,
                k.flags
            );
            self.check_value(p, k);
            // The kernel reads names and values as NUL-terminated / fixed-size buffers.
            assert_eq!(p.name_bytes().last(), Some(&0));
        }
        let names: HashMap<&str, &ParamValue> =
            params.iter().map(|p| (p.name.as_str(), &p.value)).collect();
        assert!(
            names.get("persist") == Some(&&ParamValue::Bool(true)),
            "a jail created without JAIL_ATTACH must persist"
        );
        if names.get("vnet") == Some(&&ParamValue::JailSys(SharingMode::New)) {
            for ip in ["ip4", "ip6", "ip4.addr", "ip6.addr"] {
                assert!(
                    !names.contains_key(ip),
                    "vnet jails cannot have IP address restrictions ({ip})"
                );
            }
        }
        for (ip, addr) in [("ip4", "ip4.addr"), ("ip6", "ip6.addr")] {
            if names.contains_key(addr) {
                assert_eq!(
                    names.get(ip),
                    Some(&&ParamValue::JailSys(SharingMode::New)),
                    "{addr} needs {ip}=new"
                );
            }
        }
        let mounts_fs = params
            .iter()
            .any(|p| p.name.starts_with("allow.mount.") && p.value == ParamValue::Bool(true));
        if mounts_fs {
            assert_eq!(
                names.get("allow.mount"),
                Some(&&ParamValue::Bool(true)),
                "allow.mount.<fs> needs allow.mount"
            );
            assert!(
                matches!(names.get("enforce_statfs"), Some(ParamValue::Int(0 | 1))),
                "mounting needs enforce_statfs < 2"
            );
        }
    }

    fn check_value(&self, p: &JailParam, k: &KernelParam) {
        let bytes = p.value_bytes();
        match (&p.value, k.kind.as_str()) {
            (ParamValue::Bool(_), "bool") => assert_eq!(bytes, None),
            (ParamValue::JailSys(m), "jailsys") => {
                assert_eq!(bytes.as_deref().map(<[u8]>::len), Some(4), "{}", p.name);
                if *m == SharingMode::Disable {
                    assert!(
                        !k.values.contains("disable -> EINVAL"),
                        "{} cannot be disable (kernel: {})",
                        p.name,
                        k.values
                    );
                }
            }
            (ParamValue::Int(v), "int") => {
                assert_eq!(bytes.as_deref().map(<[u8]>::len), Some(4), "{}", p.name);
                if let Some(range) = k.values.split_whitespace().next().and_then(parse_range) {
                    assert!(
                        range.contains(&i64::from(*v)),
                        "{} = {v} outside {range:?}",
                        p.name
                    );
                }
            }
            (ParamValue::Str(s), kind) if kind.starts_with("string(") => {
                let max: usize = kind["string(".len()..kind.len() - 1].parse().unwrap();
                assert!(
                    s.len() < max,
                    "{} is {} bytes; the kernel takes {}",
                    p.name,
                    s.len(),
                    max - 1
                );
                assert!(!s.contains('\0'), "{} contains NUL", p.name);
            }
            (ParamValue::Ip4(a), "in_addr[]") => {
                assert!(
                    !a.is_empty() && a.len() <= 255,
                    "{}: {} addresses",
                    p.name,
                    a.len()
                );
                assert_eq!(bytes.map(|b| b.len()), Some(a.len() * 4));
            }
            (ParamValue::Ip6(a), "in6_addr[]") => {
                assert!(
                    !a.is_empty() && a.len() <= 255,
                    "{}: {} addresses",
                    p.name,
                    a.len()
                );
                assert_eq!(bytes.map(|b| b.len()), Some(a.len() * 16));
            }
            (v, kind) => panic!(
                "{} has the kernel type {kind} but stockade sends {v:?}",
                p.name
            ),
        }
    }
}

/// "0..2" → 0..=2.
fn parse_range(s: &str) -> Option<std::ops::RangeInclusive<i64>> {
    let (a, b) = s.split_once("..")?;
    let b = b.trim_end_matches(|c: char| !c.is_ascii_digit());
    Some(a.parse().ok()?..=b.parse().ok()?)
}
