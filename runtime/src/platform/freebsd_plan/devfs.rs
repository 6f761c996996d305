//! The container's devfs ruleset: which base ruleset its /dev starts from, and that
//! ruleset flattened, since devfs follows `include` only `vfs.devfs.rule_depth` (1) levels
//! deep.

use std::path::Path;

use super::{mounts, DEFAULT_DEVFS_RULESET, MAX_INCLUDE_DEPTH};
use crate::platform::{ContainerPlan, PlatformError};

/// The base ruleset of the container's /dev: the `/dev` devfs mount's `ruleset=N`, else
/// jail(8)'s default 4. The executor flattens it into [`HostInputs::devfs_base_rules`].
pub fn dev_base_ruleset(plan: &ContainerPlan) -> u16 {
    plan.mounts
        .iter()
        .find(|m| {
            m.type_name() == "devfs"
                && m.destination
                    .components()
                    .eq(Path::new("/dev").components())
        })
        .and_then(mounts::explicit_ruleset)
        .unwrap_or(DEFAULT_DEVFS_RULESET)
}

/// The rulesets of FreeBSD 14's /etc/defaults/devfs.rules, loaded at boot by
/// /etc/rc.d/devfs: 1 hide_all, 2 unhide_basic, 3 unhide_login, 4 jail, 5 jail_vnet. Each
/// rule as the words `devfs rule show` prints after its number (rules are numbered 100,
/// 200, … in order).
pub const DEFAULT_RULESETS: &[(u16, &[&str])] = &[
    (1, &["hide"]),
    (
        2,
        &[
            "path log unhide",
            "path null unhide",
            "path zero unhide",
            "path crypto unhide",
            "path random unhide",
            "path urandom unhide",
        ],
    ),
    (
        3,
        &[
            "path ptyp* unhide",
            "path ptyq* unhide",
            "path ptyr* unhide",
            "path ptys* unhide",
            "path ptyP* unhide",
            "path ptyQ* unhide",
            "path ptyR* unhide",
            "path ptyS* unhide",
            "path ttyp* unhide",
            "path ttyq* unhide",
            "path ttyr* unhide",
            "path ttys* unhide",
            "path ttyP* unhide",
            "path ttyQ* unhide",
            "path ttyR* unhide",
            "path ttyS* unhide",
            "path fd unhide",
            "path fd/* unhide",
            "path stdin unhide",
            "path stdout unhide",
            "path stderr unhide",
            "path pts unhide",
            "path pts/* unhide",
        ],
    ),
    (
        4,
        &[
            "include 1",
            "include 2",
            "include 3",
            "path fuse unhide",
            "path zfs unhide",
        ],
    ),
    (
        5,
        &[
            "include 1",
            "include 2",
            "include 3",
            "include 4",
            "path pf unhide",
        ],
    ),
];

/// Ruleset `n` of [`DEFAULT_RULESETS`] as `devfs rule -s n show` prints it.
pub fn default_ruleset_shown(n: u16) -> Vec<String> {
    DEFAULT_RULESETS
        .iter()
        .filter(|(set, _)| *set == n)
        .flat_map(|(_, rules)| rules.iter().enumerate())
        .map(|(i, rule)| format!("{} {rule}", (i + 1) * 100))
        .collect()
}

/// [`flatten_ruleset`] of `base` as a freshly booted FreeBSD 14 has it
/// (/etc/defaults/devfs.rules), for plans made without a host (`check`, `explain`).
pub fn flatten_default_ruleset(base: u16) -> Result<Vec<Vec<String>>, PlatformError> {
    if base == 0 {
        return Ok(Vec::new());
    }
    flatten_ruleset(base, &mut |n| Ok(default_ruleset_shown(n)))
}

/// Expands ruleset `base` into the rules it applies, every `include` replaced by the
/// included ruleset's own rules, recursively: devfs follows includes only
/// `vfs.devfs.rule_depth` (1) levels deep (sys/fs/devfs/devfs_rule.c devfs_rule_run), so a
/// container ruleset that did `add include 4` would skip 4's own includes of 1, 2 and 3
/// and hide nothing. `show(n)` returns ruleset n as `devfs rule -s n show` prints it.
/// An include with a condition (`path X include N`) cannot be flattened and is refused.
pub fn flatten_ruleset(
    base: u16,
    show: &mut dyn FnMut(u16) -> Result<Vec<String>, PlatformError>,
) -> Result<Vec<Vec<String>>, PlatformError> {
    fn walk(
        set: u16,
        stack: &mut Vec<u16>,
        show: &mut dyn FnMut(u16) -> Result<Vec<String>, PlatformError>,
        out: &mut Vec<Vec<String>>,
    ) -> Result<(), PlatformError> {
        let top = stack.first().copied().unwrap_or(set);
        let refuse = move |detail: String| PlatformError::Failed {
            call: format!("flattening devfs ruleset {top}"),
            detail,
        };
        if stack.contains(&set) || stack.len() >= MAX_INCLUDE_DEPTH {
            return Err(refuse(format!(
                "include chain {stack:?} -> {set} loops or is too deep"
            )));
        }
        stack.push(set);
        for line in show(set)? {
            // "NUMBER word…": the rule number first (sbin/devfs/rule.c rulespec_outfp).
            let mut tokens = line.split_whitespace();
            match tokens.next() {
                None => continue,
                Some(n) if n.bytes().all(|b| b.is_ascii_digit()) => {}
                Some(_) => {
                    return Err(refuse(format!(
                        "ruleset {set}: a line without a rule number: {line:?}"
                    )))
                }
            }
            let words: Vec<String> = tokens.map(String::from).collect();
            match words.iter().position(|w| w == "include") {
                Some(0) if words.len() == 2 => {
                    let n = words[1]
                        .parse::<u16>()
                        .map_err(|_| refuse(format!("ruleset {set}: bad include in {line:?}")))?;
                    walk(n, stack, show, out)?;
                }
                Some(_) => {
                    return Err(refuse(format!(
                        "ruleset {set}: a conditional include cannot be flattened: {line:?}"
                    )))
                }
                None if !words.is_empty() => out.push(words),
                None => return Err(refuse(format!("ruleset {set}: an empty rule: {line:?}"))),
            }
        }
        stack.pop();
        Ok(())
    }
    let mut out = Vec::new();
    walk(base, &mut Vec::new(), show, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show_of<'a>(
        sets: &'a [(u16, &'a [&'a str])],
    ) -> impl FnMut(u16) -> Result<Vec<String>, PlatformError> + 'a {
        move |n| {
            Ok(sets
                .iter()
                .find(|(s, _)| *s == n)
                .map(|(_, l)| l.iter().map(|x| x.to_string()).collect())
                .unwrap_or_default())
        }
    }

    #[test]
    fn includes_are_expanded_in_place_and_bad_output_is_refused() {
        let sets: &[(u16, &[&str])] = &[
            (1, &["100 hide"]),
            (2, &["100 path null unhide"]),
            (
                4,
                &["100 include 1", "200 include 2", "300 path fuse unhide"],
            ),
            (7, &["100 path x include 1"]),
            (8, &["100 include 9"]),
            (9, &["100 include 8"]),
            (10, &["hide"]),
        ];
        let mut show = show_of(sets);
        let flat = flatten_ruleset(4, &mut show).unwrap();
        assert_eq!(
            flat,
            [
                vec!["hide"],
                vec!["path", "null", "unhide"],
                vec!["path", "fuse", "unhide"]
            ]
        );
        for bad in [7, 8, 10] {
            assert!(flatten_ruleset(bad, &mut show).is_err(), "{bad}");
        }
        assert_eq!(
            flatten_default_ruleset(0).unwrap(),
            Vec::<Vec<String>>::new()
        );
        let four = flatten_default_ruleset(4).unwrap();
        assert_eq!(four[0], ["hide"]);
        assert!(four.iter().all(|r| !r.contains(&"include".to_string())));
    }
}
