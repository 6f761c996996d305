//! Golden tests of the FreeBSD create and delete plans, run on any host. Each plan is
//! rendered one step a line (the bundle's temporary path written `$BUNDLE`) and compared
//! with `golden/<name>.txt`; STOCKADE_UPDATE_GOLDEN=1 rewrites them (review the diff).

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::*;
use crate::jail::kernel_table::KernelTable;
use crate::mounts::{parse_mounts, resolve_in_root};
use crate::platform::test_fixture::{self, bundle_with_shell};
use crate::target::Target;

/// A bundle on disk (rootfs with an executable /bin/sh, a `hosts` file and a `data`
/// directory to bind) and the plan for it.
pub(super) struct Fixture {
    pub(super) bundle: tempfile::TempDir,
    pub(super) plan: ContainerPlan,
    pub(super) host: HostInputs,
}

pub(super) fn fixture(config: Value, id: &str) -> Fixture {
    let bundle = tempfile::tempdir().unwrap();
    let b = bundle.path();
    bundle_with_shell(b);
    std::fs::write(b.join("hosts"), b"127.0.0.1 localhost\n").unwrap();
    let (cfg, plan) = test_fixture::plan(config, b, id, Target::FreeBsd);
    let jail = &plan.jail;
    KernelTable::load().check(&jail.params());
    let mut host = HostInputs {
        mount_targets: parse_mounts(&cfg)
            .unwrap()
            .iter()
            .map(|m| resolve_in_root(&cfg.root, &m.destination).unwrap())
            .collect(),
        devfs_ruleset: (!cfg.devices.is_empty())
            .then(|| devfs_ruleset_candidates(jail.name.as_str()).next().unwrap()),
        devfs_base_rules: Vec::new(),
    };
    if !devices(&plan).is_empty() {
        host.devfs_base_rules = flatten_default_ruleset(dev_base_ruleset(&plan)).unwrap();
    }
    Fixture { bundle, plan, host }
}

pub(super) fn config(extra: Value) -> Value {
    let mut v = json!({
        "ociVersion": "1.3.0",
        "root": {"path": "rootfs"},
        "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}}
    });
    if let (Value::Object(d), Value::Object(e)) = (&mut v, extra) {
        d.extend(e);
    }
    v
}

/// What the real executor records when it runs the plan against the model kernel (a
/// parent jail, when the plan has one, whose children.max was 0).
fn execute(f: &Fixture) -> FreeBsdMade {
    use crate::platform::freebsd::{executor, model::ModelKernel};
    let mut k = ModelKernel::new();
    if let Some(parent) = &f.plan.jail.parent {
        k.add_host_jail(parent, 0);
    }
    let mut made = crate::platform::Resources::<FreeBsdMade>::default();
    executor::prepare_host(&mut k, &f.plan, &mut made, &mut |_| Ok(()))
        .unwrap_or_else(|e| panic!("the model kernel refused the plan: {e}"));
    made.backend
}

/// Every syscall step is one the kernel parses: jail_set parameters against its table,
/// nmount iovecs with even length, fstype and fspath, NUL-terminated values.
fn check_kernel_encoding(steps: &[Step]) {
    let table = KernelTable::load();
    for s in steps {
        match s {
            Step::JailSet { params, flags } => {
                assert_eq!(*flags, JAIL_CREATE);
                table.check(params);
            }
            Step::Nmount { iov, flags } => {
                assert_eq!(*flags & !(MNT_NOATIME | MNT_NOSYMFOLLOW), 0, "{s}");
                assert!(iov.len() >= 2, "{s}");
                for name in ["fstype", "fspath"] {
                    let (_, v) = iov
                        .iter()
                        .find(|(n, _)| n == name)
                        .unwrap_or_else(|| panic!("{s}: no {name}"));
                    let v = v.as_deref().unwrap();
                    assert!(v.len() > 1 && v.ends_with(&[0]), "{s}: {name}");
                }
                for (n, v) in iov {
                    assert!(!n.is_empty() && !n.contains('\0'), "{s}");
                    if let Some(v) = v {
                        assert_eq!(v.iter().filter(|b| **b == 0).count(), 1, "{s}: {n}");
                        assert!(v.ends_with(&[0]), "{s}: {n}");
                    }
                }
            }
            _ => {}
        }
    }
}

/// The create plan, its warnings and the delete plan of everything it made, as text.
pub(super) fn rendered(f: &Fixture) -> String {
    let created = create_plan(&f.plan, &f.host).unwrap();
    check_kernel_encoding(&created.steps);
    let made = execute(f);
    let destroy = destroy_plan(&made);
    let mut text = String::from("# create\n");
    text += &render(&created.steps);
    text += "# warnings\n";
    for w in &created.warnings {
        text += w;
        text += "\n";
    }
    text += "# delete (as the executor recorded it against the model)\n";
    text += &render(&destroy);
    let bundle = f.bundle.path().display().to_string();
    text.replace(&bundle, "$BUNDLE")
}

pub(super) fn assert_golden(name: &str, got: &str) {
    let golden = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/platform/freebsd_plan/golden")
        .join(format!("{name}.txt"));
    if std::env::var_os("STOCKADE_UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, got).unwrap();
    }
    let want =
        std::fs::read_to_string(&golden).unwrap_or_else(|e| panic!("{}: {e}", golden.display()));
    assert_eq!(got, want, "{name} differs from {}", golden.display());
}

fn example(name: &str) -> Value {
    let p: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../reference/runtime-spec-v1.3.0/examples")
        .join(format!("{name}.json"));
    serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap()
}

#[test]
fn freebsd_spec_example_plan() {
    let f = fixture(example("config-good-freebsd-example"), "example");
    assert_golden("spec-example", &rendered(&f));
}

#[test]
fn podman_style_plan_with_parent_jail_readonly_root_and_file_mounts() {
    let f = fixture(
        config(json!({
            "annotations": {
                "org.freebsd.parentJail": "pod1",
                "org.freebsd.jail.allow.raw_sockets": "true",
                "io.podman.annotations.autoremove": "FALSE"
            },
            "root": {"path": "rootfs", "readonly": true},
            "hostname": "web",
            "process": {"args": ["sh"], "cwd": "/", "noNewPrivileges": true},
            "mounts": [
                {"destination": "/dev", "type": "devfs", "source": "devfs", "options": ["ruleset=4"]},
                {"destination": "/dev/fd", "type": "fdescfs", "source": "fdesc", "options": []},
                {"destination": "/run", "type": "tmpfs", "source": "tmpfs",
                 "options": ["nosuid", "nodev", "mode=755", "size=65536k"]},
                {"destination": "/run/secrets", "type": "nullfs", "source": "data",
                 "options": ["rbind", "rprivate", "ro"]},
                {"destination": "/etc/hosts", "type": "bind", "source": "hosts",
                 "options": ["rbind", "rprivate", "nosuid", "noexec", "relatime"]}
            ]
        })),
        "3f2a9c",
    );
    assert_golden("podman", &rendered(&f));
}

#[test]
fn vnet_plan_moves_interfaces_in_and_reclaims_them_before_removal() {
    let f = fixture(
        config(json!({
            "hostname": "router",
            "freebsd": {"jail": {"vnet": "new", "vnetInterfaces": ["epair0b", "epair1b"]}}
        })),
        "r1",
    );
    assert_golden("vnet", &rendered(&f));
}

#[test]
fn addresses_on_an_interface_plan_aliases_and_tmpfs_options() {
    let f = fixture(
        config(json!({
            "freebsd": {"jail": {
                "ip4Addr": ["192.0.2.10", "192.0.2.11"],
                "ip6Addr": ["2001:db8::10"],
                "interface": "em0"
            }},
            "mounts": [
                {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                 "options": ["size=64m", "mode=1777", "uid=0", "gid=0", "nomtime", "rw"]},
                {"destination": "/proc", "type": "procfs", "source": "proc", "options": ["nosuid"]}
            ]
        })),
        "web.1",
    );
    assert_golden("addresses", &rendered(&f));
}

#[test]
fn devices_get_a_ruleset_that_flattens_the_mounts_own_and_is_deleted_after_unmount() {
    let f = fixture(
        config(json!({
            "mounts": [{"destination": "/dev", "type": "devfs", "options": ["ruleset=4"]}],
            "freebsd": {"devices": [{"path": "pf", "mode": 448}, {"path": "/dev/tun*"}]}
        })),
        "d1",
    );
    let created = create_plan(&f.plan, &f.host).unwrap();
    let n = f.host.devfs_ruleset.unwrap();
    assert!(n >= FIRST_DEVFS_RULESET);
    let text = render(&created.steps);
    // Ruleset 4 flattened: its includes of 1, 2 and 3 expanded, no include left (devfs
    // would follow it only one level deep).
    assert!(!text.contains("include"), "{text}");
    let include = text
        .find(&format!("/sbin/devfs rule -s {n} add hide\n"))
        .unwrap();
    assert!(text.contains(&format!("/sbin/devfs rule -s {n} add path fuse unhide\n")));
    let pf = text
        .find(&format!(
            "/sbin/devfs rule -s {n} add path pf unhide mode 0700\n"
        ))
        .unwrap();
    let tun = text
        .find(&format!("/sbin/devfs rule -s {n} add path tun* unhide\n"))
        .unwrap();
    let mount = text.find("fstype=devfs").unwrap();
    assert!(include < pf && pf < tun && tun < mount, "{text}");
    assert!(text.contains(&format!("ruleset={n} errmsg")), "{text}");
    let destroy = render(&destroy_plan(&execute(&f)));
    let unmount = destroy.find("unmount(").unwrap();
    let delset = destroy
        .find(&format!("/sbin/devfs rule -s {n} delset"))
        .unwrap();
    assert!(unmount < delset, "{destroy}");
}

#[test]
fn devices_without_a_dev_devfs_mount_are_refused() {
    let f = fixture(
        config(json!({"freebsd": {"devices": [{"path": "pf"}]}})),
        "d2",
    );
    let err = create_plan(&f.plan, &f.host).unwrap_err().to_string();
    assert!(
        err.contains("freebsd.devices") && err.contains("devfs"),
        "{err}"
    );
}

#[test]
fn devfs_ruleset_candidates_cover_the_range_once_from_a_name_derived_start() {
    let all: Vec<u16> = devfs_ruleset_candidates("c1").collect();
    assert_eq!(all.len(), usize::from(u16::MAX - FIRST_DEVFS_RULESET) + 1);
    let mut sorted = all.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), all.len());
    assert_eq!(sorted.first(), Some(&FIRST_DEVFS_RULESET));
    assert_eq!(sorted.last(), Some(&u16::MAX));
    assert_ne!(
        devfs_ruleset_candidates("c1").next(),
        devfs_ruleset_candidates("c2").next()
    );
}

fn plan_error(mount: Value) -> String {
    let f = fixture(config(json!({ "mounts": [mount] })), "e1");
    let err = create_plan(&f.plan, &f.host).unwrap_err().to_string();
    assert_eq!(
        check(&f.plan).unwrap_err().to_string(),
        err,
        "check and create agree"
    );
    err
}

#[test]
fn devfs_options_other_than_ruleset_are_refused_naming_the_mount() {
    let err = plan_error(json!({"destination": "/dev", "type": "devfs", "options": ["mode=755"]}));
    assert!(err.starts_with("mounts[0].options: \"mode=755\""), "{err}");
    assert!(err.contains("ruleset=N"), "{err}");
    let err =
        plan_error(json!({"destination": "/dev", "type": "devfs", "options": ["ruleset=70000"]}));
    assert!(
        err.contains("\"ruleset=70000\"") && err.contains("0 to 65535"),
        "{err}"
    );
}

#[test]
fn linux_file_system_types_are_refused_naming_the_freebsd_equivalent() {
    let err = plan_error(json!({"destination": "/proc", "type": "proc", "source": "proc"}));
    assert!(err.starts_with("mounts[0].type: \"proc\""), "{err}");
    assert!(err.contains("procfs") && err.contains("linprocfs"), "{err}");
    let err = plan_error(json!({"destination": "/sys", "type": "sysfs", "source": "sysfs"}));
    assert!(err.contains("linsysfs"), "{err}");
    let err = plan_error(json!({"destination": "/sys/fs/cgroup", "type": "cgroup2"}));
    assert!(err.contains("no cgroups"), "{err}");
    let err = plan_error(json!({"destination": "/x", "type": "zfs"}));
    assert!(err.contains("nullfs") && err.contains("tmpfs"), "{err}");
}

#[test]
fn unknown_tmpfs_options_are_refused_with_the_accepted_list() {
    let err =
        plan_error(json!({"destination": "/tmp", "type": "tmpfs", "options": ["nr_inodes=1000"]}));
    assert!(
        err.starts_with("mounts[0].options: \"nr_inodes=1000\""),
        "{err}"
    );
    assert!(
        err.contains("inodes") && err.contains("maxfilesize") && err.contains("pgread"),
        "{err}"
    );
    let err = plan_error(json!({"destination": "/tmp", "type": "tmpfs", "options": ["mode=999"]}));
    assert!(err.contains("octal"), "{err}");
    let err = plan_error(json!({"destination": "/tmp", "type": "tmpfs", "options": ["size=50%"]}));
    assert!(err.contains("suffix"), "{err}");
}

#[test]
fn linux_only_flags_are_one_warning_not_an_error() {
    let f = fixture(
        config(json!({"mounts": [
            {"destination": "/a", "type": "tmpfs", "options": ["nodev", "strictatime", "rshared"]},
            {"destination": "/b", "type": "tmpfs", "options": ["nodev", "ro"]}
        ]})),
        "w1",
    );
    let created = create_plan(&f.plan, &f.host).unwrap();
    assert_eq!(
        created.warnings,
        ["mount options not applied on FreeBSD: nodev, strictatime, rshared"]
    );
    assert_eq!(check(&f.plan).unwrap(), created.warnings);
}

#[test]
fn delete_of_a_create_that_failed_before_jail_set_only_unmounts() {
    let made = FreeBsdMade {
        mounts: vec!["/r/dev".into(), "/r/dev/fd".into()],
        ..FreeBsdMade::default()
    };
    assert_eq!(
        render(&destroy_plan(&made)),
        "unmount(/r/dev/fd, 0)\nunmount(/r/dev, 0)\n"
    );
    assert!(destroy_plan(&FreeBsdMade::default()).is_empty());
}

/// The fixture's limits: 64 MiB of memory, 128 MiB of memory plus swap, 32 processes,
/// half a CPU.
fn limits_config(extra: Value) -> Value {
    let mut v = config(json!({
        "linux": {"resources": {
            "memory": {"limit": 67108864, "swap": 134217728},
            "pids": {"limit": 32},
            "cpu": {"quota": 50000, "period": 100000}
        }}
    }));
    if let (Value::Object(d), Value::Object(e)) = (&mut v, extra) {
        d.extend(e);
    }
    v
}

#[test]
fn resource_limits_are_rctl_rules_added_after_jail_set_and_removed_after_jail_remove() {
    let f = fixture(
        limits_config(json!({
            "freebsd": {"jail": {"vnet": "new", "vnetInterfaces": ["epair0b"]}}
        })),
        "lim1",
    );
    assert_golden("limits", &rendered(&f));
}

#[test]
fn rctl_rules_name_the_full_name_of_a_nested_jail() {
    let f = fixture(
        limits_config(json!({"annotations": {"org.freebsd.parentJail": "pod1"}})),
        "lim2",
    );
    let text = render(&create_plan(&f.plan, &f.host).unwrap().steps);
    assert!(
        text.contains("rctl_add_rule(\"jail:pod1.lim2:memoryuse:deny=67108864\")\n"),
        "{text}"
    );
}

#[test]
fn a_plan_without_limits_has_no_rctl_steps() {
    let f = fixture(
        config(json!({"linux": {"resources": {"memory": {"limit": -1}, "cpu": {"shares": 1024}}}})),
        "nolim",
    );
    let l = &f.plan.limits;
    assert!(
        l.memory.is_none() && l.pids.is_none() && l.cpu.is_none(),
        "{l:?}"
    );
    let created = create_plan(&f.plan, &f.host).unwrap();
    assert!(
        !created
            .steps
            .iter()
            .any(|s| matches!(s, Step::RctlAddRule { .. })),
        "{}",
        render(&created.steps)
    );
    let destroy = destroy_plan(&execute(&f));
    assert!(!destroy
        .iter()
        .any(|s| matches!(s, Step::RctlRemoveRule { .. })));
}

#[test]
fn only_the_limits_that_are_set_become_rules() {
    let f = fixture(
        config(json!({"linux": {"resources": {"pids": {"limit": 100}}}})),
        "pids",
    );
    let rules: Vec<String> = create_plan(&f.plan, &f.host)
        .unwrap()
        .steps
        .into_iter()
        .filter_map(|s| match s {
            Step::RctlAddRule { rule } => Some(rule),
            _ => None,
        })
        .collect();
    assert_eq!(rules, ["jail:pids:maxproc:deny=100"]);
}

#[test]
fn recorded_rctl_rules_are_removed_by_filter_in_reverse_after_jail_remove() {
    let made = FreeBsdMade {
        jid: Some(9),
        jail_name: Some("c1".into()),
        rctl_rules: vec![
            "jail:c1:memoryuse:deny=67108864".into(),
            "jail:c1:maxproc:deny=32".into(),
        ],
        ..FreeBsdMade::default()
    };
    assert_eq!(
        render(&destroy_plan(&made)),
        "jail_get(jid=9 name) == \"c1\": jail_remove(9)\n\
         rctl_remove_rule(\"jail:c1:maxproc:deny\")\n\
         rctl_remove_rule(\"jail:c1:memoryuse:deny\")\n"
    );
}

#[test]
fn a_parent_jail_name_with_a_colon_cannot_carry_limits() {
    let f = fixture(
        limits_config(json!({"annotations": {"org.freebsd.parentJail": "a:b"}})),
        "lim3",
    );
    let err = create_plan(&f.plan, &f.host).unwrap_err().to_string();
    assert!(err.contains("\"a:b.lim3\"") && err.contains("':'"), "{err}");
    assert_eq!(check(&f.plan).unwrap_err().to_string(), err);
}

#[test]
fn a_cpu_quota_beyond_what_pcpu_holds_is_refused() {
    let f = fixture(
        config(json!({"linux": {"resources": {"cpu": {"quota": i64::MAX, "period": 1000}}}})),
        "cpu",
    );
    let err = create_plan(&f.plan, &f.host).unwrap_err().to_string();
    assert!(
        err.contains("linux.resources.cpu.quota") && err.contains("pcpu"),
        "{err}"
    );
}

#[test]
fn an_update_removes_the_rules_that_go_and_adds_new_and_changed_ones() {
    use crate::limits::{CpuQuota, ResourceLimits};
    let current = [
        "jail:c1:memoryuse:deny=67108864".to_string(),
        "jail:c1:maxproc:deny=32".to_string(),
    ];
    let after = ResourceLimits {
        memory: Some(128 << 20),
        cpu: Some(CpuQuota {
            quota: 50_000,
            period: 100_000,
        }),
        ..ResourceLimits::default()
    };
    let steps = rctl::update_steps("c1", &current, &after).unwrap();
    assert_eq!(
        render(&steps),
        "rctl_remove_rule(\"jail:c1:maxproc:deny\")\n\
         rctl_add_rule(\"jail:c1:memoryuse:deny=134217728\")\n\
         rctl_add_rule(\"jail:c1:pcpu:deny=50\")\n",
        "a changed amount is only re-added (the kernel replaces the rule); a lifted one is removed"
    );
    assert!(
        rctl::update_steps(
            "c1",
            &current[..1],
            &ResourceLimits {
                memory: Some(64 << 20),
                ..ResourceLimits::default()
            }
        )
        .unwrap()
        .is_empty(),
        "an unchanged rule is left alone"
    );
}

#[test]
fn linux_confinement_is_one_warning_naming_each_field() {
    let f = fixture(
        config(json!({
            "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0},
                "capabilities": {"bounding": ["CAP_CHOWN", "CAP_KILL"]},
                "apparmorProfile": "docker-default"},
            "linux": {"seccomp": {"defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}}
        })),
        "confine",
    );
    let warnings = check(&f.plan).unwrap();
    assert_eq!(
        warnings,
        [
            "Linux confinement not applied on FreeBSD: process.capabilities (root in a jail keeps \
          the privileges the jail's allow.* parameters give); linux.seccomp (no system call \
          filter); process.apparmorProfile"
        ]
    );
}
