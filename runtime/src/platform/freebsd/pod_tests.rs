//! A CRI pod (a sandbox jail and its containers' child jails) and task metrics, run
//! through the executor against the model kernel. Every test name contains
//! `freebsd_executor`.

use nix::errno::Errno;
use serde_json::json;

use super::executor;
use super::model::ModelKernel;
use super::racct;
use super::tests::{assert_clean, create, fixture, limits};
use crate::platform::PlatformError;

fn sandbox() -> serde_json::Value {
    json!({"annotations": {"io.kubernetes.cri.container-type": "sandbox"}})
}

fn member(sandbox_id: &str) -> serde_json::Value {
    json!({"annotations": {
        "io.kubernetes.cri.container-type": "container",
        "io.kubernetes.cri.sandbox-id": sandbox_id
    }})
}

#[test]
fn freebsd_executor_pod_containers_are_children_on_the_sandbox_network() {
    let mut k = ModelKernel::new();
    let sb = fixture(sandbox(), "sb1");
    let sb_made = create(&mut k, &sb);
    let sb_jid = sb_made.backend.jid.unwrap();
    assert!(k.jails[&sb_jid].vnet, "the sandbox owns the pod's vnet");
    assert_eq!(k.jails[&sb_jid].children_max, 256);

    let c1 = fixture(member("sb1"), "c1");
    let c2 = fixture(member("sb1"), "c2");
    let c1_made = create(&mut k, &c1);
    let c2_made = create(&mut k, &c2);
    for made in [&c1_made, &c2_made] {
        let jid = made.backend.jid.unwrap();
        assert_eq!(k.jails[&jid].parent, Some(sb_jid));
        assert!(!k.jails[&jid].vnet);
        // Both containers are on the sandbox's stack: they reach each other on localhost.
        assert_eq!(k.network_stack(jid), sb_jid);
    }
    assert_eq!(k.jails[&c1_made.backend.jid.unwrap()].name, "sb1.c1");
    // The sandbox had room, so nothing was raised and nothing is restored on delete.
    assert_eq!(c1_made.backend.raised_children_max, None);

    // Children before the parent: the sandbox refuses to go while its containers live,
    // and touches nothing.
    let errors = executor::destroy(&mut k, &sb_made.backend);
    assert_eq!(errors.len(), 1, "{errors:?}");
    let e = errors[0].to_string();
    assert!(e.contains("2 live child jail(s)"), "{e}");
    assert!(k.jails.get(&sb_jid).is_some_and(|j| !j.dying));
    assert!(!k.jails[&c2_made.backend.jid.unwrap()].dying);

    assert!(executor::destroy(&mut k, &c1_made.backend).is_empty());
    assert!(!executor::destroy(&mut k, &sb_made.backend).is_empty());
    assert!(executor::destroy(&mut k, &c2_made.backend).is_empty());
    assert!(executor::destroy(&mut k, &sb_made.backend).is_empty());
    assert_clean(&k);
}

#[test]
fn freebsd_executor_pod_container_without_its_sandbox_is_refused_by_the_kernel() {
    let mut k = ModelKernel::new();
    let c1 = fixture(member("gone"), "c1");
    let mut made = super::tests::Resources::default();
    let e = executor::prepare_host(&mut k, &c1.plan, &mut made, &mut |_| Ok(()))
        .unwrap_err()
        .to_string();
    assert!(e.contains("\"gone\""), "{e}");
    assert!(executor::destroy(&mut k, &made.backend).is_empty());
    assert_clean(&k);
}

#[test]
fn freebsd_executor_a_child_cannot_take_addresses_its_restricted_parent_lacks() {
    let mut k = ModelKernel::new();
    let parent = fixture(
        json!({"freebsd": {"jail": {"ip4Addr": ["192.0.2.10"]}}}),
        "p1",
    );
    let parent_made = create(&mut k, &parent);
    let inside = fixture(
        json!({"annotations": {"org.freebsd.parentJail": "p1"},
               "freebsd": {"jail": {"ip4Addr": ["192.0.2.10"]}}}),
        "in1",
    );
    let inside_made = create(&mut k, &inside);
    let outside = fixture(
        json!({"annotations": {"org.freebsd.parentJail": "p1"},
               "freebsd": {"jail": {"ip4Addr": ["192.0.2.99"]}}}),
        "out1",
    );
    let mut made = super::tests::Resources::default();
    let e = executor::prepare_host(&mut k, &outside.plan, &mut made, &mut |_| Ok(()))
        .unwrap_err()
        .to_string();
    assert!(e.contains(Errno::EPERM.desc()), "{e}");
    assert!(executor::destroy(&mut k, &made.backend).is_empty());
    assert!(executor::destroy(&mut k, &inside_made.backend).is_empty());
    assert!(executor::destroy(&mut k, &parent_made.backend).is_empty());
    assert_clean(&k);
}

#[test]
fn freebsd_executor_usage_reports_the_jails_figures_and_its_rctl_limits() {
    let mut k = ModelKernel::new();
    let f = fixture(limits(), "use1");
    let made = create(&mut k, &f);
    let init = executor::spawn(&mut k, "init", &mut |_| unreachable!()).unwrap();
    let host = k.current;
    k.current = init;
    executor::attach(&mut k, &made.backend).unwrap();
    k.current = host;
    let u = racct::usage(&mut k, &made.backend).unwrap();
    assert_eq!(u.usage.maxproc, 1);
    assert_eq!(u.memory_limit, Some(67_108_864));
    assert_eq!(u.maxproc_limit, Some(32));
    assert_eq!(u.swap_limit, None);
    assert_eq!(u.pcpu_limit, None);
    assert!(u.unknown.is_empty());
    k.kill(init).unwrap();
    k.reap();
    assert!(executor::destroy(&mut k, &made.backend).is_empty());
    // The jail is gone: an error, never zeros.
    let e = racct::usage(&mut k, &made.backend).unwrap_err().to_string();
    assert!(e.contains("no longer exists"), "{e}");
    assert_clean(&k);
}

#[test]
fn freebsd_executor_usage_with_racct_off_names_the_loader_tunable() {
    let mut k = ModelKernel::new();
    let f = fixture(json!({}), "use2");
    let made = create(&mut k, &f);
    k.racct = false;
    let e = racct::usage(&mut k, &made.backend).unwrap_err();
    assert!(matches!(e, PlatformError::Unsupported { .. }), "{e:?}");
    assert!(e.to_string().contains("kern.racct.enable=1"), "{e}");
    assert!(executor::destroy(&mut k, &made.backend).is_empty());
    assert_clean(&k);
}

#[test]
fn freebsd_executor_only_a_sandbox_waits_for_its_children() {
    // A container whose jail another one nests in by `org.freebsd.parentJail` was not
    // made to hold children: its delete takes the nested jail with it, as jail_remove does.
    let mut k = ModelKernel::new();
    let parent = fixture(json!({}), "plain1");
    let parent_made = create(&mut k, &parent);
    assert!(!parent_made.backend.holds_children);
    let inside = fixture(
        json!({"annotations": {"org.freebsd.parentJail": "plain1"}}),
        "in2",
    );
    let inside_made = create(&mut k, &inside);
    let inside_jid = inside_made.backend.jid.unwrap();
    assert!(executor::destroy(&mut k, &parent_made.backend).is_empty());
    assert!(k.jails.get(&inside_jid).is_none_or(|j| j.dying));
    assert!(executor::destroy(&mut k, &inside_made.backend).is_empty());
    assert_clean(&k);

    let sb = fixture(sandbox(), "sb2");
    assert!(create(&mut k, &sb).backend.holds_children);
}
