//! The rules the CNI firewall plugin leaves per bridge. With `ingressPolicy: same-bridge`
//! its ADD puts two rules naming the bridge into the filter table's shared chains
//! `CNI-ISOLATION-STAGE-1` (`-i BR ! -o BR … -j CNI-ISOLATION-STAGE-2`) and
//! `CNI-ISOLATION-STAGE-2` (`-o BR … -j DROP`), and its DEL never removes them (other
//! containers may share the bridge). Once `network rm` has deleted the bridge they belong
//! to no one, so they go with it. The per-container rules (`CNI-FORWARD`) go with DEL.

// Run on Linux only (where `network rm` deletes bridges); the parsing is tested everywhere.
#![cfg_attr(not(target_os = "linux"), allow(dead_code))]

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::NetError;

/// The shared chains the plugin's isolation rules are in.
const ISOLATION_CHAINS: [&str; 2] = ["CNI-ISOLATION-STAGE-1", "CNI-ISOLATION-STAGE-2"];

/// An executable of the usual system directories, or `name` for `PATH`.
pub(crate) fn sbin(name: &str) -> PathBuf {
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// Splits one line of `iptables -S` into words: blanks separate, a double-quoted word
/// (a comment) keeps its blanks, and `\"` or `\\` in it stands for the character.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let (mut quoted, mut any) = (false, false);
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            '\\' if quoted => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            c if c.is_whitespace() && !quoted => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            c => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The isolation rules of `bridge` in `iptables -S` output `listing`: each as the words
/// after `-A` (chain first), ready for `-D`. Only rules whose `-i` or `-o` is exactly the
/// bridge, in the plugin's two chains.
pub(crate) fn isolation_rules(listing: &str, bridge: &str) -> Vec<Vec<String>> {
    listing
        .lines()
        .map(words)
        .filter(|w| w.len() > 2 && w[0] == "-A" && ISOLATION_CHAINS.contains(&w[1].as_str()))
        .filter(|w| {
            w.windows(2)
                .any(|p| (p[0] == "-i" || p[0] == "-o") && p[1] == bridge)
        })
        .map(|w| w[1..].to_vec())
        .collect()
}

/// Deletes `bridge`'s isolation rules from iptables and ip6tables (each one installed).
/// A tool that is missing, or a table it cannot list, had no rules of the plugin's.
pub(crate) fn remove_isolation_rules(bridge: &str) -> Result<(), NetError> {
    for tool in ["iptables", "ip6tables"] {
        let path = sbin(tool);
        if !path.is_absolute() {
            continue;
        }
        let run = |args: &[&str]| {
            Command::new(&path)
                .args(args)
                .output()
                .map_err(|source| NetError::Spawn {
                    path: path.clone(),
                    source,
                })
        };
        let listed = run(&["-w", "-t", "filter", "-S"])?;
        if !listed.status.success() {
            continue;
        }
        for rule in isolation_rules(&String::from_utf8_lossy(&listed.stdout), bridge) {
            let mut args = vec!["-w", "-t", "filter", "-D"];
            args.extend(rule.iter().map(String::as_str));
            let out = run(&args)?;
            if !out.status.success() {
                return Err(NetError::Firewall {
                    bridge: bridge.to_string(),
                    rule: rule.join(" "),
                    msg: stockade_quote::quote(String::from_utf8_lossy(&out.stderr).trim())
                        .to_string(),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTING: &str = r#"-P FORWARD ACCEPT
-N CNI-ISOLATION-STAGE-1
-A FORWARD -m comment --comment "CNI firewall plugin rules (ingressPolicy: same-bridge)" -j CNI-ISOLATION-STAGE-1
-A CNI-ISOLATION-STAGE-1 -i stk-aa ! -o stk-aa -m comment --comment "CNI firewall plugin rules (ingressPolicy: same-bridge)" -j CNI-ISOLATION-STAGE-2
-A CNI-ISOLATION-STAGE-1 -i stk-aab ! -o stk-aab -m comment --comment "CNI firewall plugin rules (ingressPolicy: same-bridge)" -j CNI-ISOLATION-STAGE-2
-A CNI-ISOLATION-STAGE-2 -o stk-aa -m comment --comment "say \"x\"" -j DROP
-A CNI-FORWARD -o stk-aa -j ACCEPT
-A CNI-ISOLATION-STAGE-2 -m comment --comment "CNI firewall plugin rules (ingressPolicy: same-bridge)" -j RETURN
"#;

    #[test]
    fn only_the_bridges_isolation_rules_are_picked() {
        let rules = isolation_rules(LISTING, "stk-aa");
        assert_eq!(rules.len(), 2, "{rules:?}");
        assert_eq!(
            rules[0],
            [
                "CNI-ISOLATION-STAGE-1",
                "-i",
                "stk-aa",
                "!",
                "-o",
                "stk-aa",
                "-m",
                "comment",
                "--comment",
                "CNI firewall plugin rules (ingressPolicy: same-bridge)",
                "-j",
                "CNI-ISOLATION-STAGE-2"
            ]
        );
        assert_eq!(rules[1][0], "CNI-ISOLATION-STAGE-2");
        assert!(
            rules[1].contains(&"say \"x\"".to_string()),
            "{:?}",
            rules[1]
        );
        assert!(isolation_rules(LISTING, "stk-a").is_empty());
        assert_eq!(isolation_rules(LISTING, "stk-aab").len(), 1);
    }

    #[test]
    fn words_keep_quoted_blanks_and_empty_quotes() {
        assert_eq!(words(r#"a  "b c" "" d"#), ["a", "b c", "", "d"]);
    }
}
