//! Jail names for containers.
//!
//! The kernel reads `.` in a jail name as the hierarchy separator and an all-digit name as
//! a jid, but container ids may contain dots or be numbers. The rule (docs/jail-mapping.md):
//! an id becomes one name component with `+` written as `+p` and `.` as `+d`; an all-digit
//! id gets the prefix `+n`; a component that would not fit in 255 bytes together with its
//! parent's name becomes `+h` and the first 32 hex digits of the id's SHA-256. Each rule
//! produces text the others cannot, so two ids never share a name. The id itself is kept in
//! the state directory; the name is only how the kernel knows the jail.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::config::freebsd::Setting;
use crate::id::ContainerId;

/// The longest full jail name (MAXHOSTNAMELEN - 1).
pub const MAX_JAIL_NAME: usize = 255;

/// A full jail name as passed to `jail_set(2)`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JailName(String);

/// Why no jail name could be formed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{from}: parent jail name {parent:?} leaves no room for the container's name within 255 bytes"
)]
pub struct JailNameError {
    pub parent: String,
    pub from: String,
}

impl JailName {
    /// The name of container `id`'s jail, under `parent` when nested.
    pub fn for_container(
        id: &ContainerId,
        parent: Option<&Setting<String>>,
    ) -> Result<JailName, JailNameError> {
        let component = escape(id.as_str());
        let prefix_len = parent.map_or(0, |p| p.value.len() + 1);
        let component = if prefix_len + component.len() <= MAX_JAIL_NAME {
            component
        } else {
            let digest = Sha256::digest(id.as_str().as_bytes());
            let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
            format!("+h{hex}")
        };
        if prefix_len + component.len() > MAX_JAIL_NAME {
            let p = parent
                .map(|p| (p.value.clone(), p.from.clone()))
                .unwrap_or_default();
            return Err(JailNameError {
                parent: p.0,
                from: p.1,
            });
        }
        Ok(JailName(match parent {
            Some(p) => format!("{}.{component}", p.value),
            None => component,
        }))
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JailName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether the kernel would read `s` as a number: on create kern_jail.c runs
/// `strtoul(name, &p, 10)` and refuses a name it parses completely, and strtoul takes
/// leading white space and a sign, so "-1" and "+5" count as numbers.
fn reads_as_number(s: &str) -> bool {
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let t = t.strip_prefix(['+', '-']).unwrap_or(t);
    !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit())
}

fn escape(id: &str) -> String {
    if reads_as_number(id) {
        // '+' is escaped below as well, so "+n" followed by the escaped id stays unique.
        return format!("+n{}", id.replace('+', "+p"));
    }
    let mut out = String::with_capacity(id.len());
    for c in id.chars() {
        match c {
            '+' => out.push_str("+p"),
            '.' => out.push_str("+d"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn name(id: &str) -> String {
        JailName::for_container(&ContainerId::parse(id).unwrap(), None)
            .unwrap()
            .0
    }

    #[test]
    fn plain_ids_are_used_as_they_are() {
        assert_eq!(name("web-1"), "web-1");
        assert_eq!(name("a_b"), "a_b");
        let hex = "3f2a".repeat(16);
        assert_eq!(name(&hex), hex);
    }

    #[test]
    fn dotted_and_numeric_ids_never_read_as_hierarchy_or_jid() {
        assert_eq!(name("a.b"), "a+db");
        assert_eq!(name("42"), "+n42");
        assert_eq!(name("a+db"), "a+pdb");
        for id in ["a.b", "1.2", "...", "x.y.z"] {
            assert!(!name(id).contains('.'), "{id}");
        }
        assert!(!name("007").bytes().all(|b| b.is_ascii_digit()));
    }

    #[test]
    fn signed_numbers_are_escaped_as_strtoul_reads_them() {
        // The kernel refuses any name strtoul(3) parses completely, sign included.
        assert_eq!(name("-1"), "+n-1");
        assert_eq!(name("-007"), "+n-007");
        assert_eq!(name("+1"), "+n+p1");
        for id in ["-1", "+1", "-", "1-", "-a", "--1"] {
            let n = name(id);
            assert!(!reads_as_number(&n), "{id} -> {n}");
            assert!(
                !crate::platform::freebsd::model::strtoul_parses_fully(&n),
                "{id} -> {n}"
            );
        }
        assert!(reads_as_number("-1") && reads_as_number("+12") && !reads_as_number("-"));
        assert_ne!(name("-1"), name("+n-1"));
    }

    #[test]
    fn distinct_ids_get_distinct_names() {
        let ids = [
            "a.b", "a+db", "a+b", "a_b", "ab", "12", "+n12", "n12", "a+pb", "a.+b",
        ];
        let names: HashSet<String> = ids
            .iter()
            .filter_map(|id| ContainerId::parse(id).ok())
            .map(|id| name(id.as_str()))
            .collect();
        let valid = ids.iter().filter(|i| ContainerId::parse(i).is_ok()).count();
        assert_eq!(names.len(), valid);
    }

    #[test]
    fn long_names_are_hashed_to_fit_under_a_parent() {
        let id = ContainerId::parse(&".".repeat(200)).unwrap();
        let parent = Setting::new("pod".to_string(), "annotations");
        let n = JailName::for_container(&id, Some(&parent)).unwrap();
        assert!(n.as_str().starts_with("pod.+h"), "{n}");
        assert!(n.as_str().len() <= MAX_JAIL_NAME);
        let huge = Setting::new("p".repeat(250), "freebsd.jail.parent");
        let err = JailName::for_container(&id, Some(&huge)).unwrap_err();
        assert!(
            err.to_string().starts_with("freebsd.jail.parent: "),
            "{err}"
        );
    }
}
