//! CRI pods planned as a parent jail (the sandbox) and child jails (its containers):
//! golden plans, and the annotations' errors (docs/freebsd-backend.md, "Pods").

use serde_json::{json, Value};

use super::pod::{role, PodError, PodRole, CONTAINER_TYPE, SANDBOX_ID};
use super::tests::{assert_golden, config, fixture, rendered};
use crate::config::ContainerConfig;
use crate::id::ContainerId;
use crate::jail::{IpAccess, Network};
use crate::platform::{test_fixture, ContainerPlan, PlanError, PlanOptions};
use crate::target::Target;

fn sandbox() -> Value {
    json!({"annotations": {CONTAINER_TYPE: "sandbox", SANDBOX_ID: "sb1"}, "hostname": "pod"})
}

fn member(extra: Value) -> Value {
    let mut v = json!({"annotations": {CONTAINER_TYPE: "container", SANDBOX_ID: "sb1"}});
    if let (Value::Object(d), Value::Object(e)) = (&mut v, extra) {
        for (k, val) in e {
            match (d.get_mut(&k), val) {
                (Some(Value::Object(a)), Value::Object(b)) => a.extend(b),
                (_, val) => {
                    d.insert(k, val);
                }
            }
        }
    }
    v
}

/// The plan of `extra` for container `id` on `target`, or its error.
fn plan_of(extra: Value, id: &str, target: Target) -> Result<ContainerPlan, PlanError> {
    let bundle = tempfile::tempdir().unwrap();
    test_fixture::bundle_with_shell(bundle.path());
    let cfg = ContainerConfig::from_value(config(extra), bundle.path()).unwrap();
    let id = ContainerId::parse(id).unwrap();
    ContainerPlan::new(&cfg, &id, PlanOptions::default(), target)
}

#[test]
fn pod_sandbox_plan_owns_a_vnet_and_may_have_children() {
    let f = fixture(config(sandbox()), "sb1");
    assert_eq!(
        f.plan.jail.children_max,
        Some(super::pod::SANDBOX_CHILDREN_MAX)
    );
    assert_golden("pod-sandbox", &rendered(&f));
}

#[test]
fn pod_container_plan_is_a_child_of_the_sandbox_jail_inheriting_its_network() {
    let f = fixture(config(member(json!({}))), "c1");
    assert_eq!(f.plan.jail.name.as_str(), "sb1.c1");
    assert_eq!(f.plan.jail.parent.as_deref(), Some("sb1"));
    assert_golden("pod-container", &rendered(&f));
}

#[test]
fn pod_container_ids_are_escaped_under_the_sandbox_name() {
    let bundle_plan = plan_of(member(json!({})), "web.1", Target::FreeBsd).unwrap();
    assert_eq!(bundle_plan.jail.name.as_str(), "sb1.web+d1");
    let mut a = member(json!({}));
    a["annotations"][SANDBOX_ID] = json!("42");
    let numeric = plan_of(a, "c2", Target::FreeBsd).unwrap();
    assert_eq!(numeric.jail.name.as_str(), "+n42.c2");
}

#[test]
fn pod_roles_only_change_the_freebsd_plan() {
    let linux = plan_of(member(json!({})), "c1", Target::Linux).unwrap();
    assert_eq!(linux.jail.name.as_str(), "c1");
    assert_eq!(linux.jail.parent, None);
    let linux = plan_of(sandbox(), "sb1", Target::Linux).unwrap();
    assert!(matches!(linux.jail.network, Network::Shared { .. }));
    assert_eq!(linux.jail.children_max, None);
}

#[test]
fn an_explicit_parent_jail_annotation_wins_over_the_sandbox_id() {
    let mut a = member(json!({}));
    a["annotations"]["org.freebsd.parentJail"] = json!("outer.sb1");
    let p = plan_of(a, "c1", Target::FreeBsd).unwrap();
    assert_eq!(p.jail.name.as_str(), "outer.sb1.c1");
    assert_eq!(p.jail.parent.as_deref(), Some("outer.sb1"));
    assert_eq!(
        p.jail.network,
        Network::Shared {
            ip4: IpAccess::Inherit,
            ip6: IpAccess::Inherit,
            interface: None
        }
    );
}

#[test]
fn an_explicit_sandbox_network_is_kept() {
    let mut s = sandbox();
    s["freebsd"] = json!({"jail": {"ip4": "inherit"}});
    let p = plan_of(s, "sb1", Target::FreeBsd).unwrap();
    assert!(matches!(p.jail.network, Network::Shared { .. }));
    assert!(p.jail.children_max.is_some());
}

#[test]
fn a_pod_container_with_a_network_of_its_own_is_refused_naming_the_setting() {
    let e = plan_of(
        member(json!({"freebsd": {"jail": {"vnet": "new"}}})),
        "c1",
        Target::FreeBsd,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("freebsd.jail.vnet"), "{e}");
    assert!(e.contains("shares its sandbox's network"), "{e}");
    let mut a = member(json!({}));
    a["annotations"]["org.freebsd.jail.ip4.addr"] = json!("192.0.2.1");
    let e = plan_of(a, "c1", Target::FreeBsd).unwrap_err().to_string();
    assert!(e.contains("org.freebsd.jail.ip4.addr"), "{e}");
}

#[test]
fn bad_cri_annotations_are_refused() {
    let id = ContainerId::parse("c1").unwrap();
    let ann = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    assert_eq!(role(&ann(&[]), &id).unwrap(), None);
    assert_eq!(
        role(&ann(&[(CONTAINER_TYPE, "sandbox")]), &id).unwrap(),
        Some(PodRole::Sandbox)
    );
    assert!(matches!(
        role(&ann(&[(CONTAINER_TYPE, "pause")]), &id),
        Err(PodError::BadType(_))
    ));
    assert!(matches!(
        role(&ann(&[(CONTAINER_TYPE, "container")]), &id),
        Err(PodError::NoSandbox)
    ));
    assert!(matches!(
        role(
            &ann(&[(CONTAINER_TYPE, "container"), (SANDBOX_ID, "a/b")]),
            &id
        ),
        Err(PodError::BadSandbox(_))
    ));
    assert!(matches!(
        role(
            &ann(&[(CONTAINER_TYPE, "container"), (SANDBOX_ID, "c1")]),
            &id
        ),
        Err(PodError::OwnSandbox(_))
    ));
    let e = plan_of(
        json!({"annotations": {CONTAINER_TYPE: "pause"}}),
        "c1",
        Target::FreeBsd,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("io.kubernetes.cri.container-type"), "{e}");
}
