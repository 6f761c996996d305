//! The seccomp profile a container made from an image gets on Linux when its configuration
//! has none: Podman's default.
//!
//! `default_seccomp.json` is `/usr/share/containers/seccomp.json` of Debian 12's
//! `golang-github-containers-common` 0.50.1+ds1-4, the file Podman and Buildah load by
//! default (upstream: github.com/containers/common, `pkg/seccomp/seccomp.json`; Copyright
//! 2018 the containers/common authors; Apache License 2.0). It is kept byte for byte.
//!
//! That file is not an OCI `linux.seccomp` object: it lists architectures per host
//! architecture (`archMap`), and rules that apply only on some architectures or only when
//! the process holds (or lacks) some capabilities (`includes`/`excludes`, `minKernel`).
//! [`for_process`] resolves those the way Podman does when it writes a container's
//! config.json: the host's architecture and its sub-architectures, the rules for this
//! architecture, and each capability condition checked against the bounding set.

use serde_json::{json, Map, Value};

const PROFILE: &str = include_str!("default_seccomp.json");

/// The host architecture's libseccomp name and Go name (the names `archMap` and
/// `includes.arches` use).
fn native_arch() -> (&'static str, &'static str) {
    match std::env::consts::ARCH {
        "x86_64" => ("SCMP_ARCH_X86_64", "amd64"),
        "x86" => ("SCMP_ARCH_X86", "386"),
        "aarch64" => ("SCMP_ARCH_AARCH64", "arm64"),
        "arm" => ("SCMP_ARCH_ARM", "arm"),
        "powerpc64" => ("SCMP_ARCH_PPC64LE", "ppc64le"),
        "s390x" => ("SCMP_ARCH_S390X", "s390x"),
        "riscv64" => ("SCMP_ARCH_RISCV64", "riscv64"),
        other => ("", other),
    }
}

/// The running kernel's version as (major, minor), when it can be read.
fn kernel_version() -> Option<(u32, u32)> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    parse_version(release.trim())
}

fn parse_version(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.split(|c: char| !c.is_ascii_digit());
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Whether a rule's `includes` or `excludes` object matches: any listed architecture is
/// the host's, every (includes) or any (excludes) listed capability is in `bounding`, and
/// the kernel is at least `minKernel`.
fn conditions_hold(cond: &Value, bounding: &[&str], arch: &str, all_caps: bool) -> Conditions {
    let arches = strings(&cond["arches"]);
    let caps = strings(&cond["caps"]);
    Conditions {
        arch: (!arches.is_empty()).then(|| arches.contains(&arch)),
        caps: (!caps.is_empty()).then(|| {
            if all_caps {
                caps.iter().all(|c| bounding.contains(c))
            } else {
                caps.iter().any(|c| bounding.contains(c))
            }
        }),
        min_kernel: cond["minKernel"].as_str().map(
            |min| matches!((parse_version(min), kernel_version()), (Some(m), Some(k)) if k >= m),
        ),
    }
}

/// Which conditions an `includes`/`excludes` object sets, and whether each holds.
struct Conditions {
    arch: Option<bool>,
    caps: Option<bool>,
    min_kernel: Option<bool>,
}

impl Conditions {
    fn all_hold(&self) -> bool {
        [self.arch, self.caps, self.min_kernel]
            .iter()
            .all(|c| c.unwrap_or(true))
    }
    fn any_holds(&self) -> bool {
        [self.arch, self.caps].iter().any(|c| c.unwrap_or(false))
    }
}

/// Podman's default profile as an OCI `linux.seccomp` object for a process whose bounding
/// set is `bounding` (capability names) on this host.
pub fn for_process(bounding: &[&str]) -> Value {
    // The file is part of the binary and checked by the tests below.
    let file: Value = serde_json::from_str(PROFILE).expect("default_seccomp.json is valid JSON");
    let (scmp_arch, go_arch) = native_arch();
    let architectures: Vec<Value> = file["archMap"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["architecture"] == scmp_arch)
        .map(|m| {
            std::iter::once(m["architecture"].clone())
                .chain(
                    m["subArchitectures"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default(),
                )
                .collect()
        })
        .unwrap_or_default();
    let mut syscalls = Vec::new();
    for rule in file["syscalls"].as_array().into_iter().flatten() {
        if !conditions_hold(&rule["includes"], bounding, go_arch, true).all_hold()
            || conditions_hold(&rule["excludes"], bounding, go_arch, false).any_holds()
        {
            continue;
        }
        let mut out = Map::new();
        for key in ["names", "action", "errnoRet"] {
            if !rule[key].is_null() {
                out.insert(key.into(), rule[key].clone());
            }
        }
        if rule["args"].as_array().is_some_and(|a| !a.is_empty()) {
            out.insert("args".into(), rule["args"].clone());
        }
        syscalls.push(Value::Object(out));
    }
    json!({
        "defaultAction": file["defaultAction"],
        "defaultErrnoRet": file["defaultErrnoRet"],
        "architectures": architectures,
        "syscalls": syscalls,
    })
}

/// Sets `linux.seccomp` of `spec` to Podman's default profile, resolved for the process's
/// bounding set, unless the configuration already has a profile.
pub fn add_default(spec: &mut Value) {
    if !spec["linux"]["seccomp"].is_null() {
        return;
    }
    let bounding: Vec<String> = strings(&spec["process"]["capabilities"]["bounding"])
        .into_iter()
        .map(str::to_owned)
        .collect();
    let bounding: Vec<&str> = bounding.iter().map(String::as_str).collect();
    spec["linux"]["seccomp"] = for_process(&bounding);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rules of `profile` that name `syscall`, as (action, errnoRet).
    fn rules_for(profile: &Value, syscall: &str) -> Vec<(String, Option<u64>)> {
        profile["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| strings(&r["names"]).contains(&syscall))
            .map(|r| {
                (
                    r["action"].as_str().unwrap().to_owned(),
                    r["errnoRet"].as_u64(),
                )
            })
            .collect()
    }

    #[test]
    fn capability_conditions_pick_the_allow_or_the_errno_rule() {
        let without = for_process(&["CAP_CHOWN"]);
        assert_eq!(
            rules_for(&without, "chroot"),
            [("SCMP_ACT_ERRNO".into(), Some(1))]
        );
        assert_eq!(
            rules_for(&without, "bpf"),
            [("SCMP_ACT_ERRNO".into(), Some(1))]
        );
        let with = for_process(&["CAP_SYS_CHROOT", "CAP_SYS_ADMIN"]);
        assert_eq!(
            rules_for(&with, "chroot"),
            [("SCMP_ACT_ALLOW".into(), None)]
        );
        assert_eq!(rules_for(&with, "bpf"), [("SCMP_ACT_ALLOW".into(), None)]);
    }

    #[test]
    fn unlisted_syscalls_get_the_default_errno_and_the_host_arch_is_listed() {
        let p = for_process(&[]);
        assert_eq!(p["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(p["defaultErrnoRet"], 38);
        assert!(rules_for(&p, "add_key").is_empty());
        assert!(!rules_for(&p, "read").is_empty());
        if std::env::consts::ARCH == "x86_64" {
            assert_eq!(
                p["architectures"],
                json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
            );
            assert_eq!(rules_for(&p, "arch_prctl").len(), 1);
            assert!(rules_for(&p, "s390_runtime_instr").is_empty());
        }
        // The personality rules keep their argument conditions.
        let personality: Vec<&Value> = p["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| strings(&r["names"]) == ["personality"])
            .collect();
        assert_eq!(personality.len(), 5);
        assert!(personality
            .iter()
            .all(|r| r["args"][0]["op"] == "SCMP_CMP_EQ"));
    }

    #[test]
    fn the_result_is_a_valid_linux_seccomp_object() {
        let p = for_process(&["CAP_CHOWN", "CAP_KILL"]);
        let parsed = crate::config::seccomp::parse(p.as_object().unwrap()).unwrap();
        assert!(!parsed.notifies());
    }

    #[test]
    fn a_configuration_with_a_profile_keeps_it() {
        let mut spec = json!({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW"}}});
        add_default(&mut spec);
        assert_eq!(
            spec["linux"]["seccomp"],
            json!({"defaultAction": "SCMP_ACT_ALLOW"})
        );
        let mut spec = json!({"process": {"capabilities": {"bounding": ["CAP_SYS_CHROOT"]}}});
        add_default(&mut spec);
        assert_eq!(
            rules_for(&spec["linux"]["seccomp"], "chroot"),
            [("SCMP_ACT_ALLOW".into(), None)]
        );
    }

    #[test]
    fn kernel_versions_parse() {
        assert_eq!(parse_version("6.1.0-18-amd64"), Some((6, 1)));
        assert_eq!(parse_version("4.8"), Some((4, 8)));
        assert_eq!(parse_version("x"), None);
    }
}
