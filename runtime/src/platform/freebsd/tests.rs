//! The FreeBSD executor run against the model kernel: the whole lifecycle, every kernel
//! call failing in turn, a SIGKILL after every call followed by `delete --force` from the
//! recorded state, limits, nesting, vnet, and what /dev shows. Every test name contains
//! `freebsd_executor` (`cargo test -p stockade-runtime freebsd_executor`).

use std::path::Path;

use serde_json::{json, Value};

use super::executor;
use super::kernel::Kernel;
use super::model::ModelKernel;
use crate::jail::{JailParam, ParamValue};
use crate::platform::freebsd_plan::FreeBsdMade;
use crate::platform::freebsd_plan::{JAIL_CREATE, MNT_NOATIME};
use crate::platform::{test_fixture, ContainerPlan};
use crate::target::Target;

pub(super) type Resources = crate::platform::Resources<FreeBsdMade>;

pub(super) struct Fixture {
    _bundle: tempfile::TempDir,
    pub(super) plan: ContainerPlan,
}

pub(super) fn fixture(extra: Value, id: &str) -> Fixture {
    let bundle = tempfile::tempdir().unwrap();
    let b = bundle.path();
    test_fixture::bundle_with_shell(b);
    let mut config = json!({
        "ociVersion": "1.3.0",
        "root": {"path": "rootfs"},
        "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
        "mounts": [
            {"destination": "/dev", "type": "devfs", "source": "devfs"},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
             "options": ["noatime", "nosuid", "size=1m"]},
            {"destination": "/data", "type": "nullfs", "source": b.join("data"),
             "options": ["ro"]}
        ]
    });
    if let (Value::Object(d), Value::Object(e)) = (&mut config, extra) {
        d.extend(e);
    }
    let (_, plan) = test_fixture::plan(config, b, id, Target::FreeBsd);
    Fixture {
        _bundle: bundle,
        plan,
    }
}

pub(super) fn limits() -> Value {
    json!({"linux": {"resources": {"memory": {"limit": 67108864}, "pids": {"limit": 32}}}})
}

pub(super) fn create(k: &mut ModelKernel, f: &Fixture) -> Resources {
    let mut made = Resources::default();
    executor::prepare_host(k, &f.plan, &mut made, &mut |_| Ok(())).unwrap();
    made
}

pub(super) fn assert_clean(k: &ModelKernel) {
    if let Err(e) = k.is_clean() {
        panic!("{e}\n{k:#?}");
    }
}

#[test]
fn freebsd_executor_create_start_exec_kill_delete_leaves_the_model_empty() {
    let f = fixture(limits(), "life1");
    let mut k = ModelKernel::new();
    let made = create(&mut k, &f);
    let jid = made.backend.jid.unwrap();
    assert_eq!(k.jails[&jid].name, "life1");
    assert_eq!(k.rctl_rules.len(), 2);
    // start: the init forks on the host and attaches.
    let init = executor::spawn(&mut k, "init", &mut |_| unreachable!()).unwrap();
    assert_eq!(
        executor::container_pids(&mut k, &made.backend, Some(init)).unwrap(),
        [init]
    );
    let host = k.current;
    k.current = init;
    executor::attach(&mut k, &made.backend).unwrap();
    k.current = host;
    // exec: a second process joins.
    let exec = executor::spawn(&mut k, "exec", &mut |_| unreachable!()).unwrap();
    k.current = exec;
    executor::attach(&mut k, &made.backend).unwrap();
    k.current = host;
    let mut pids = executor::container_pids(&mut k, &made.backend, Some(init)).unwrap();
    pids.sort();
    assert_eq!(pids, [init, exec]);
    assert_eq!(k.procs[&init].jid, jid);
    let usage = k.rctl_usage("jail:life1").unwrap();
    assert!(usage.contains(&("maxproc".to_string(), 2)), "{usage:?}");
    // kill --all, then delete.
    for pid in executor::container_pids(&mut k, &made.backend, Some(init)).unwrap() {
        k.kill(pid).unwrap();
    }
    assert!(executor::container_pids(&mut k, &made.backend, Some(init))
        .unwrap()
        .is_empty());
    k.reap();
    assert!(executor::destroy(&mut k, &made.backend).is_empty());
    assert_clean(&k);
}

#[test]
fn freebsd_executor_delete_of_a_running_container_kills_and_unmounts() {
    let f = fixture(json!({}), "busy1");
    let mut k = ModelKernel::new();
    let made = create(&mut k, &f);
    let init = executor::spawn(&mut k, "init", &mut |_| unreachable!()).unwrap();
    k.current = init;
    executor::attach(&mut k, &made.backend).unwrap();
    k.current = 100;
    // A live process in the jail keeps its mounts busy; jail_remove kills it first.
    assert!(executor::destroy(&mut k, &made.backend).is_empty());
    assert!(k.procs[&init].zombie);
    assert_clean(&k);
}

fn every_call_count(extra: &Value, id: &str, parent: bool) -> usize {
    let f = fixture(extra.clone(), id);
    let mut k = ModelKernel::new();
    if parent {
        k.add_host_jail("pod9", 0);
    }
    k.fail_call(usize::MAX);
    create(&mut k, &f);
    k.calls()
}

/// After a failed call, the record and the kernel agree: everything the kernel holds is
/// recorded, and everything recorded exists (a devfs ruleset excepted: it is recorded
/// before its first rule, so a failing first rule leaves it recorded and absent).
fn assert_record_matches(k: &ModelKernel, made: &Resources, n: usize) {
    let mounted: Vec<_> = k.mounts.iter().map(|m| m.path.clone()).collect();
    assert_eq!(made.backend.mounts, mounted, "call {n}: mounts");
    let fsids: Vec<_> = k
        .mounts
        .iter()
        .map(|m| (m.path.clone(), m.fsid.clone()))
        .collect();
    // A failed statfs right after an nmount leaves that one mount without an fsid (delete
    // then unmounts it by path); every other mount has its own.
    let recorded = made.backend.mount_fsids.len();
    assert!(
        fsids.len() - recorded <= 1,
        "call {n}: fsids {:?}",
        made.backend.mount_fsids
    );
    assert_eq!(
        made.backend.mount_fsids,
        fsids[..recorded],
        "call {n}: fsids"
    );
    assert_eq!(
        made.backend.rctl_rules, k.rctl_rules,
        "call {n}: rctl rules"
    );
    let ours: Vec<i32> = k
        .jails
        .values()
        .filter(|j| !j.preexisting)
        .map(|j| j.jid)
        .collect();
    assert_eq!(
        made.backend.jid.into_iter().collect::<Vec<_>>(),
        ours,
        "call {n}: jails"
    );
    assert_eq!(
        made.backend.jid.is_some(),
        made.backend.jail_name.is_some(),
        "call {n}: jail name"
    );
    let defaults = super::model::default_rulesets();
    for set in k.rulesets.keys().filter(|s| !defaults.contains_key(s)) {
        assert!(
            made.backend.devfs_rulesets.contains(set),
            "call {n}: ruleset {set} unrecorded"
        );
    }
    let raised = k
        .jails
        .values()
        .any(|j| j.preexisting && j.children_max != 0);
    assert_eq!(
        raised,
        made.backend.raised_children_max.is_some(),
        "call {n}: children.max"
    );
}

fn config_with_everything() -> Value {
    json!({
        "linux": {"resources": {"memory": {"limit": 67108864}, "pids": {"limit": 32}}},
        "annotations": {"org.freebsd.parentJail": "pod9"},
        "freebsd": {"devices": [{"path": "pf"}]}
    })
}

#[test]
fn freebsd_executor_each_kernel_call_failing_in_turn_leaves_nothing_behind() {
    let extra = config_with_everything();
    let calls = every_call_count(&extra, "fail1", true);
    assert!(calls > 30, "only {calls} calls");
    for n in 0..calls {
        let f = fixture(extra.clone(), "fail1");
        let mut k = ModelKernel::new();
        k.add_host_jail("pod9", 0);
        k.fail_call(n);
        let mut made = Resources::default();
        let r = executor::prepare_host(&mut k, &f.plan, &mut made, &mut |_| Ok(()));
        assert!(r.is_err(), "call {n} failed but create succeeded");
        assert_record_matches(&k, &made, n);
        k.clear_faults();
        let errors = executor::destroy(&mut k, &made.backend);
        assert!(errors.is_empty(), "call {n}: {errors:?}");
        assert_clean(&k);
        assert_eq!(
            k.jails[&1].children_max, 0,
            "call {n}: children.max not restored"
        );
    }
}

#[test]
fn freebsd_executor_abort_after_each_call_then_force_delete_from_the_record_leaves_nothing() {
    let extra = config_with_everything();
    let calls = every_call_count(&extra, "kill1", true);
    for n in 0..calls {
        let f = fixture(extra.clone(), "kill1");
        let mut k = ModelKernel::new();
        k.add_host_jail("pod9", 0);
        k.abort_after_call(n);
        let mut made = Resources::default();
        // What state.json holds when the SIGKILL comes: the last journaled record.
        let mut journaled = Resources::default();
        let r = executor::prepare_host(&mut k, &f.plan, &mut made, &mut |m| {
            journaled = m.clone();
            Ok(())
        });
        assert!(r.is_err(), "abort after call {n} but create succeeded");
        k.clear_faults();
        let errors = executor::destroy(&mut k, &journaled.backend);
        assert!(errors.is_empty(), "abort after call {n}: {errors:?}");
        if let Err(e) = k.is_clean() {
            panic!("abort after call {n} ({}): {e}", k.log[n]);
        }
        assert_eq!(k.jails[&1].children_max, 0, "abort after call {n}");
    }
}

#[test]
fn freebsd_executor_update_of_limits_replaces_deny_rules_and_removes_dropped_ones() {
    let f = fixture(limits(), "upd1");
    let mut k = ModelKernel::new();
    let mut made = create(&mut k, &f);
    let after = crate::limits::from_resources(
        Some(&serde_json::from_value(json!({"memory": {"limit": 134217728}})).unwrap()),
        crate::target::Target::FreeBsd,
    )
    .unwrap()
    .0;
    executor::update_limits(&mut k, &mut made.backend, &after).unwrap();
    assert_eq!(k.rctl_rules, ["jail:upd1:memoryuse:deny=134217728"]);
    assert_eq!(made.backend.rctl_rules, k.rctl_rules);
    // The kernel itself replaces a deny rule for the same subject and resource.
    k.rctl_add_rule("jail:upd1:memoryuse:deny=1").unwrap();
    assert_eq!(k.rctl_rules, ["jail:upd1:memoryuse:deny=1"]);
    assert!(executor::destroy(&mut k, &made.backend).is_empty());
    assert_clean(&k);
}

#[test]
fn freebsd_executor_racct_off_is_a_clear_error_and_leaves_nothing() {
    let f = fixture(limits(), "racct1");
    let mut k = ModelKernel::new();
    k.racct = false;
    let mut made = Resources::default();
    let e = executor::prepare_host(&mut k, &f.plan, &mut made, &mut |_| Ok(())).unwrap_err();
    assert!(e.to_string().contains("kern.racct.enable=1"), "{e}");
    assert!(executor::destroy(&mut k, &made.backend).is_empty());
    assert_clean(&k);
}

#[test]
fn freebsd_executor_nested_jail_raises_the_parents_children_max_and_restores_it() {
    let f = fixture(
        json!({"annotations": {"org.freebsd.parentJail": "pod1"}}),
        "inner",
    );
    let mut k = ModelKernel::new();
    let parent = k.add_host_jail("pod1", 0);
    let made = create(&mut k, &f);
    assert_eq!(k.jails[&parent].children_max, 1);
    assert_eq!(
        made.backend.raised_children_max,
        Some(("pod1".to_string(), 0))
    );
    assert_eq!(k.jails[&made.backend.jid.unwrap()].name, "pod1.inner");
    assert!(executor::destroy(&mut k, &made.backend).is_empty());
    assert_eq!(k.jails[&parent].children_max, 0);
    assert_clean(&k);
}

#[test]
fn freebsd_executor_children_max_restore_discounts_dying_children() {
    let f = fixture(
        json!({"annotations": {"org.freebsd.parentJail": "pod1"}}),
        "dying1",
    );
    let mut k = ModelKernel::new();
    let parent = k.add_host_jail("pod1", 0);
    let made = create(&mut k, &f);
    // The removed jail lingers dying (a socket in TIME_WAIT) and children.cur counts it.
    k.linger_on_remove = true;
    assert!(executor::destroy(&mut k, &made.backend).is_empty());
    assert_eq!(k.children("pod1").unwrap(), (0, 1));
    assert_eq!(k.jails[&parent].children_max, 0, "restore kept the raise");
    k.release_dying();
    assert_clean(&k);
}

#[test]
fn freebsd_executor_vnet_interfaces_move_in_and_come_back() {
    let f = fixture(
        json!({"freebsd": {"jail": {"vnet": "new", "vnetInterfaces": ["epair1b"]}}}),
        "vnet1",
    );
    if !matches!(f.plan.jail.network, crate::jail::Network::Vnet { .. }) {
        panic!("fixture is not vnet: {:?}", f.plan.jail.network);
    }
    let mut k = ModelKernel::new();
    let made = create(&mut k, &f);
    let jid = made.backend.jid.unwrap();
    assert_eq!(k.interfaces["epair1b"].1, jid);
    assert_eq!(made.backend.vnet_interfaces, ["epair1b"]);
    assert!(executor::destroy(&mut k, &made.backend).is_empty());
    assert_eq!(k.interfaces["epair1b"].1, 0);
    assert_clean(&k);
}

/// Nodes ruleset 1 hides that 2, 3 and 4 never unhide.
const NEVER_IN_A_JAIL: &[&str] = &[
    "mem", "kmem", "io", "ada0", "ada0p1", "da0", "bpf0", "devctl", "pci", "console",
];

#[test]
fn freebsd_executor_default_dev_shows_only_ruleset_4s_nodes_and_sets_devfs_ruleset() {
    let f = fixture(json!({}), "dev1");
    let mut k = ModelKernel::new();
    let made = create(&mut k, &f);
    let dev = f.plan.jail.path.join("dev");
    let visible = k.visible_devices(&dev).unwrap();
    for hidden in NEVER_IN_A_JAIL.iter().chain(&["pf"]) {
        assert!(
            !visible.iter().any(|v| v == hidden),
            "{hidden} visible: {visible:?}"
        );
    }
    for shown in [
        "null", "zero", "random", "urandom", "pts/0", "fd/0", "stdin", "fuse", "zfs",
    ] {
        assert!(
            visible.iter().any(|v| v == shown),
            "{shown} hidden: {visible:?}"
        );
    }
    // The jail's own devfs_ruleset is the one of its /dev: jailed root cannot mount more.
    assert_eq!(k.jails[&made.backend.jid.unwrap()].devfs_ruleset, 4);
    assert!(executor::destroy(&mut k, &made.backend).is_empty());
    assert_clean(&k);
}

#[test]
fn freebsd_executor_devices_are_unhidden_on_top_of_the_flattened_base_ruleset() {
    let f = fixture(
        json!({"freebsd": {"devices": [{"path": "pf", "mode": 384}, {"path": "tun*"}]}}),
        "dev2",
    );
    let mut k = ModelKernel::new();
    let made = create(&mut k, &f);
    let own = made.backend.devfs_rulesets[0];
    let dev = f.plan.jail.path.join("dev");
    let visible = k.visible_devices(&dev).unwrap();
    for hidden in NEVER_IN_A_JAIL {
        assert!(
            !visible.iter().any(|v| v == hidden),
            "{hidden} visible: {visible:?}"
        );
    }
    for shown in ["pf", "tun0", "null", "pts/0", "fuse"] {
        assert!(
            visible.iter().any(|v| v == shown),
            "{shown} hidden: {visible:?}"
        );
    }
    assert_eq!(
        k.jails[&made.backend.jid.unwrap()].devfs_ruleset,
        i32::from(own)
    );
    assert!(k.rulesets[&own].iter().all(|r| r.include.is_none()));
    // What the old plan did, `add include 4`, shows the kernel's rule_depth at work:
    // ruleset 4's own includes are skipped and almost nothing is hidden.
    k.devfs_add(7, &["include".to_string(), "4".to_string()])
        .unwrap();
    let naive = super::model::devfs::visible(&k.rulesets, 7, k.rule_depth);
    assert!(naive.iter().any(|v| v == "kmem"), "{naive:?}");
    k.devfs_delset(7).unwrap();
    assert!(executor::destroy(&mut k, &made.backend).is_empty());
    assert_clean(&k);
}

#[test]
fn freebsd_executor_noatime_is_an_nmount_flag_which_tmpfs_takes_and_an_option_it_refuses() {
    let f = fixture(json!({}), "atime1");
    let mut k = ModelKernel::new();
    let made = create(&mut k, &f);
    let tmp = k
        .mounts
        .iter()
        .find(|m| m.fstype == "tmpfs")
        .unwrap()
        .clone();
    assert_ne!(tmp.flags & MNT_NOATIME, 0);
    assert!(!tmp.options.iter().any(|(n, _)| n == "noatime"));
    // vfs_mount.c global_opts plus tmpfs_opts: noatime as an option is EINVAL.
    let mut iov: Vec<(String, Option<Vec<u8>>)> = vec![
        ("fstype".into(), Some(b"tmpfs\0".to_vec())),
        ("fspath".into(), Some(b"/mnt\0".to_vec())),
        ("noatime".into(), None),
    ];
    let e = k.nmount(&iov, 0).unwrap_err();
    assert_eq!(e.code(), Some(nix::errno::Errno::EINVAL), "{e}");
    iov.pop();
    k.nmount(&iov, MNT_NOATIME).unwrap();
    k.unmount(Path::new("/mnt"), 0).unwrap();
    assert!(executor::destroy(&mut k, &made.backend).is_empty());
    assert_clean(&k);
}

#[test]
fn freebsd_executor_a_signed_numeric_id_gets_a_name_the_kernel_accepts() {
    let f = fixture(json!({}), "-1");
    let mut k = ModelKernel::new();
    let made = create(&mut k, &f);
    assert_eq!(made.backend.jail_name.as_deref(), Some("+n-1"));
    // The name unescaped is what kern_jail.c refuses.
    let e = k
        .jail_set(
            &[
                JailParam::new("name", ParamValue::Str("-1".into())),
                JailParam::new("persist", ParamValue::Bool(true)),
            ],
            JAIL_CREATE,
        )
        .unwrap_err();
    assert!(e.to_string().contains("name cannot be numeric"), "{e}");
    assert!(executor::destroy(&mut k, &made.backend).is_empty());
    assert_clean(&k);
}

#[test]
fn freebsd_executor_a_taken_name_is_eexist_and_the_other_jail_survives_delete() {
    let f = fixture(json!({}), "twice");
    let mut k = ModelKernel::new();
    let first = create(&mut k, &f);
    let mut made = Resources::default();
    let e = executor::prepare_host(&mut k, &f.plan, &mut made, &mut |_| Ok(())).unwrap_err();
    assert!(e.to_string().contains("already exists"), "{e}");
    // The failed create's delete must not remove the first container's jail.
    assert!(executor::destroy(&mut k, &made.backend).is_empty());
    assert!(k.jails.contains_key(&first.backend.jid.unwrap()));
    assert!(executor::destroy(&mut k, &first.backend).is_empty());
    assert_clean(&k);
}

#[test]
fn freebsd_executor_a_failing_journal_stops_create_before_the_next_call() {
    let f = fixture(limits(), "journal1");
    let mut k = ModelKernel::new();
    let mut made = Resources::default();
    let mut writes = 0;
    let e = executor::prepare_host(&mut k, &f.plan, &mut made, &mut |_| {
        writes += 1;
        if writes == 3 {
            Err(crate::platform::PlatformError::Failed {
                call: "recording".into(),
                detail: "disk full".into(),
            })
        } else {
            Ok(())
        }
    })
    .unwrap_err();
    assert!(e.to_string().contains("disk full"), "{e}");
    // Nothing was made that the record does not hold: delete from it leaves nothing.
    assert!(executor::destroy(&mut k, &made.backend).is_empty());
    assert_clean(&k);
}

#[test]
fn freebsd_executor_init_groups_keep_every_additional_gid_on_freebsd() {
    use super::model::Cred;
    let (gid, additional) = (1000, [5, 20, 30]);
    // What init does: setgroups(list), then setgid(gid).
    let run = |gid_first: bool| {
        let mut c = Cred::default();
        c.setgroups(&crate::init::setgroups_list(gid, &additional, gid_first));
        c.setgid(gid);
        c
    };
    let freebsd = run(true);
    assert_eq!(freebsd.groups[0], gid);
    for g in additional {
        assert!(freebsd.member_of(g), "{g} lost: {freebsd:?}");
    }
    // Without the gid first, setgid overwrites the first additional group.
    assert!(!run(false).member_of(5));
}

#[test]
fn freebsd_executor_delete_unmounts_by_fsid_so_a_redirected_path_never_unmounts_another_fs() {
    use crate::platform::freebsd_plan::MNT_BYFSID;
    let f = fixture(json!({}), "fsid1");
    let mut k = ModelKernel::new();
    let made = create(&mut k, &f);
    assert_eq!(made.backend.mount_fsids.len(), made.backend.mounts.len());
    // Our tmpfs goes away and something else ends up at its path (as when the container
    // swaps the directory for a symlink to a host mount point): delete must leave it.
    let tmp = f.plan.jail.path.join("tmp");
    let ours = k.mounts.iter().position(|m| m.path == tmp).unwrap();
    let fsid = k.mounts[ours].fsid.clone();
    k.unmount(Path::new(&fsid), MNT_BYFSID).unwrap();
    let iov: Vec<(String, Option<Vec<u8>>)> = vec![
        ("fstype".into(), Some(b"tmpfs\0".to_vec())),
        (
            "fspath".into(),
            Some(format!("{}\0", tmp.display()).into_bytes()),
        ),
    ];
    k.nmount(&iov, 0).unwrap();
    let other = k.mounts.last().unwrap().fsid.clone();
    assert!(executor::destroy(&mut k, &made.backend).is_empty());
    assert_eq!(k.mounts.len(), 1, "{:?}", k.mounts);
    assert_eq!(k.mounts[0].fsid, other);
    k.unmount(&tmp, 0).unwrap();
    assert_clean(&k);
}

#[test]
fn freebsd_executor_a_dev_ruleset_the_host_has_not_loaded_is_refused_before_anything() {
    let f = fixture(json!({}), "norules");
    let mut k = ModelKernel::new();
    // As on a host where /etc/rc.d/devfs never loaded /etc/defaults/devfs.rules: a devfs
    // mount with ruleset 4 would then show every device.
    k.rulesets.clear();
    let mut made = Resources::default();
    let e = executor::prepare_host(&mut k, &f.plan, &mut made, &mut |_| Ok(())).unwrap_err();
    assert!(e.to_string().contains("devfs ruleset 4"), "{e}");
    assert_eq!(made, Resources::default());
    assert!(k.mounts.is_empty() && k.jails.is_empty());
}
