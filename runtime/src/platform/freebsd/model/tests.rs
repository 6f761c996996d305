//! The model's own rules, one test each, so a model that drifts from the FreeBSD source
//! it cites goes red here before it lets a wrong executor pass.

use std::path::Path;

use nix::errno::Errno;

use super::ModelKernel;
use crate::jail::{JailParam, ParamValue};
use crate::platform::freebsd::kernel::{Kernel, KernelError};
use crate::platform::freebsd_plan::{JAIL_CREATE, JAIL_UPDATE, MNT_FORCE};

fn jail(k: &mut ModelKernel, name: &str, extra: &[(&str, ParamValue)]) -> Result<i32, KernelError> {
    let mut p = vec![
        JailParam::new("name", ParamValue::Str(name.into())),
        JailParam::new("persist", ParamValue::Bool(true)),
    ];
    p.extend(extra.iter().map(|(n, v)| JailParam::new(*n, v.clone())));
    k.jail_set(&p, JAIL_CREATE)
}

fn code(r: Result<impl std::fmt::Debug, KernelError>) -> Option<Errno> {
    r.unwrap_err().code()
}

#[test]
fn freebsd_model_names_are_unique_among_live_jails_and_never_numeric() {
    let mut k = ModelKernel::new();
    let a = jail(&mut k, "a", &[]).unwrap();
    assert_eq!(code(jail(&mut k, "a", &[])), Some(Errno::EEXIST));
    for numeric in ["7", "-1", "+3", " 12"] {
        assert_eq!(
            code(jail(&mut k, numeric, &[])),
            Some(Errno::EINVAL),
            "{numeric}"
        );
    }
    // A dying jail does not hold its name.
    k.linger_on_remove = true;
    k.jail_remove(a).unwrap();
    assert_ne!(jail(&mut k, "a", &[]).unwrap(), a);
    // Update of a jail that does not exist.
    let p = [JailParam::new("name", ParamValue::Str("none".into()))];
    assert_eq!(code(k.jail_set(&p, JAIL_UPDATE)), Some(Errno::ENOENT));
    // Without persist and with no process, the jail is gone at once.
    let gone = k
        .jail_set(
            &[JailParam::new("name", ParamValue::Str("brief".into()))],
            JAIL_CREATE,
        )
        .unwrap();
    assert!(!k.jails.contains_key(&gone));
}

#[test]
fn freebsd_model_limits_come_from_the_callers_jail_and_the_parents_values() {
    let mut k = ModelKernel::new();
    let p = k.add_host_jail("p", 0);
    // The host (prison0) creates under a parent whose children.max is 0: allowed.
    jail(&mut k, "p.c", &[]).unwrap();
    // children.max at or above the parent's, enforce_statfs below it: EPERM.
    let e = jail(&mut k, "p.d", &[("children.max", ParamValue::Int(0))]);
    assert_eq!(code(e), Some(Errno::EPERM));
    let e = jail(&mut k, "p.e", &[("enforce_statfs", ParamValue::Int(1))]);
    assert_eq!(code(e), Some(Errno::EPERM));
    let e = jail(&mut k, "f", &[("devfs_ruleset", ParamValue::Int(70000))]);
    assert_eq!(code(e), Some(Errno::EINVAL));
    // A process inside p, whose limit is reached, cannot create.
    let pid = match k.fork().unwrap() {
        super::super::kernel::Forked::Parent(pid) => pid,
        super::super::kernel::Forked::Child => unreachable!(),
    };
    k.current = pid;
    k.jail_attach(p).unwrap();
    assert_eq!(code(jail(&mut k, "p.g", &[])), Some(Errno::EPERM));
}

#[test]
fn freebsd_model_jail_remove_kills_processes_and_refuses_a_dead_jail() {
    let mut k = ModelKernel::new();
    let j = jail(&mut k, "r", &[]).unwrap();
    let Ok(super::super::kernel::Forked::Parent(pid)) = k.fork() else {
        panic!("fork");
    };
    k.current = pid;
    k.jail_attach(j).unwrap();
    k.current = 100;
    k.jail_remove(j).unwrap();
    assert!(k.procs[&pid].zombie);
    assert_eq!(code(k.jail_remove(j)), Some(Errno::EINVAL));
    assert_eq!(code(k.jail_attach(j)), Some(Errno::EINVAL));
}

fn iov(pairs: &[(&str, Option<&str>)]) -> Vec<(String, Option<Vec<u8>>)> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.map(|v| format!("{v}\0").into_bytes())))
        .collect()
}

#[test]
fn freebsd_model_nmount_takes_global_opts_and_the_file_systems_own_list_only() {
    let mut k = ModelKernel::new();
    let base = [("fstype", Some("devfs")), ("fspath", Some("/j/dev"))];
    for bad in ["noatime", "nosymfollow", "mode"] {
        let mut v = base.to_vec();
        v.push((bad, None));
        let e = k.nmount(&iov(&v), 0).unwrap_err();
        assert!(e.to_string().contains("is unknown"), "{bad}: {e}");
    }
    let mut v = base.to_vec();
    v.extend([("ruleset", Some("4")), ("ro", None), ("nosuid", None)]);
    k.nmount(&iov(&v), 0).unwrap();
    let tmp = [
        ("fstype", Some("tmpfs")),
        ("fspath", Some("/j/dev/x")),
        ("nosymfollow", None),
    ];
    k.nmount(&iov(&tmp), 0).unwrap();
    assert_eq!(
        code(k.nmount(&iov(&[("fstype", Some("ext4")), ("fspath", Some("/x"))]), 0)),
        Some(Errno::ENODEV)
    );
    // A mount with another below it is busy, even forced; a non-mount point is EINVAL.
    assert_eq!(
        code(k.unmount(Path::new("/j/dev"), MNT_FORCE)),
        Some(Errno::EBUSY)
    );
    assert_eq!(
        code(k.unmount(Path::new("/nowhere"), 0)),
        Some(Errno::EINVAL)
    );
    k.unmount(Path::new("/j/dev/x"), 0).unwrap();
    k.unmount(Path::new("/j/dev"), 0).unwrap();
    assert!(k.is_clean().is_ok());
}

#[test]
fn freebsd_model_rctl_grammar_deny_replacement_esrch_and_enosys() {
    let mut k = ModelKernel::new();
    for bad in [
        "jail:a:memoryuse:deny",
        "jail:a:nosuch:deny=1",
        "box:a:maxproc:deny=1",
        "jail:a:maxproc:deny=x",
    ] {
        assert_eq!(code(k.rctl_add_rule(bad)), Some(Errno::EINVAL), "{bad}");
    }
    k.rctl_add_rule("jail:a:maxproc:deny=10").unwrap();
    k.rctl_add_rule("jail:a:maxproc:log=5").unwrap();
    k.rctl_add_rule("jail:a:maxproc:deny=20").unwrap();
    assert_eq!(
        k.rctl_rules,
        ["jail:a:maxproc:log=5", "jail:a:maxproc:deny=20"]
    );
    assert_eq!(
        code(k.rctl_add_rule(&format!("jail:a:pcpu:deny={}", i64::MAX))),
        Some(Errno::ERANGE)
    );
    k.rctl_remove_rule("jail:a:maxproc").unwrap();
    assert_eq!(
        code(k.rctl_remove_rule("jail:a:maxproc")),
        Some(Errno::ESRCH)
    );
    k.racct = false;
    assert_eq!(
        code(k.rctl_add_rule("jail:a:maxproc:deny=1")),
        Some(Errno::ENOSYS)
    );
}

#[test]
fn freebsd_model_devfs_includes_are_followed_only_rule_depth_deep() {
    let mut k = ModelKernel::new();
    // Ruleset 4 at the top of a mount: its includes (depth 1) run, so kmem is hidden.
    let four = super::devfs::visible(&k.rulesets, 4, k.rule_depth);
    assert!(!four.iter().any(|d| d == "kmem") && four.iter().any(|d| d == "null"));
    // Included from another set, 4 runs at depth 0 and its own includes are skipped.
    k.devfs_add(9, &["include".into(), "4".into()]).unwrap();
    let nine = super::devfs::visible(&k.rulesets, 9, k.rule_depth);
    assert!(nine.iter().any(|d| d == "kmem"), "{nine:?}");
    k.rule_depth = 2;
    let deeper = super::devfs::visible(&k.rulesets, 9, k.rule_depth);
    assert!(!deeper.iter().any(|d| d == "kmem"), "{deeper:?}");
    assert!(k.devfs_add(0, &["hide".into()]).is_err());
    assert!(k.devfs_add(9, &["include".into(), "9".into()]).is_err());
    assert!(k.devfs_add(9, &["path".into()]).is_err());
}

#[test]
fn the_plans_default_rulesets_read_as_the_model_shows_them() {
    use crate::platform::freebsd_plan::{default_ruleset_shown, DEFAULT_RULESETS};
    let parsed = super::default_rulesets();
    assert_eq!(parsed.len(), DEFAULT_RULESETS.len());
    for (n, rules) in &parsed {
        let shown: Vec<String> = rules.iter().map(|r| r.show()).collect();
        assert_eq!(default_ruleset_shown(*n), shown, "ruleset {n}");
    }
}
