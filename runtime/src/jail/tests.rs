//! Translation, encoding and golden tests. Every parameter list produced here is checked
//! against the kernel's own table (reference/freebsd/jail-params.tsv).

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::kernel_table::KernelTable;
use super::*;
use crate::config::ContainerConfig;
use crate::id::ContainerId;

fn reference(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../reference")
        .join(rel)
}

fn spec_for(v: Value) -> JailSpec {
    let cfg = ContainerConfig::from_value(v, Path::new("/var/db/stockade/bundles/c1")).unwrap();
    let spec = JailSpec::from_config(&cfg, &ContainerId::parse("c1").unwrap()).unwrap();
    KernelTable::load().check(&spec.params());
    spec
}

fn config(extra: Value) -> Value {
    let mut v = json!({"ociVersion": "1.3.0", "root": {"path": "rootfs"}});
    if let (Value::Object(d), Value::Object(e)) = (&mut v, extra) {
        d.extend(e);
    }
    v
}

fn param<'a>(spec: &'a [JailParam], name: &str) -> Option<&'a ParamValue> {
    spec.iter().find(|p| p.name == name).map(|p| &p.value)
}

#[test]
fn default_jail_shares_the_host_network_with_private_sysv_ipc() {
    let s = spec_for(config(json!({})));
    assert_eq!(s.name.as_str(), "c1");
    assert_eq!(s.path, Path::new("/var/db/stockade/bundles/c1/rootfs"));
    assert_eq!(
        s.host,
        Host::New {
            hostname: None,
            domainname: None
        }
    );
    assert_eq!(
        s.network,
        Network::Shared {
            ip4: IpAccess::Inherit,
            ip6: IpAccess::Inherit,
            interface: None
        }
    );
    assert_eq!(
        (s.sysvmsg, s.sysvsem, s.sysvshm),
        (SharingMode::New, SharingMode::New, SharingMode::New)
    );
    assert_eq!(s.enforce_statfs, 2);
    assert!(s.persist);
}

#[test]
fn hostname_and_domainname_set_host_new() {
    let p = spec_for(config(
        json!({"hostname": "web", "domainname": "example.org"}),
    ))
    .params();
    assert_eq!(
        param(&p, "host"),
        Some(&ParamValue::JailSys(SharingMode::New))
    );
    assert_eq!(
        param(&p, "host.hostname"),
        Some(&ParamValue::Str("web".into()))
    );
    assert_eq!(
        param(&p, "host.domainname"),
        Some(&ParamValue::Str("example.org".into()))
    );
}

#[test]
fn addresses_restrict_their_family_and_disable_the_other() {
    let p = spec_for(config(
        json!({"freebsd": {"jail": {"ip4Addr": ["192.0.2.10", "192.0.2.11"]}}}),
    ))
    .params();
    assert_eq!(
        param(&p, "ip4"),
        Some(&ParamValue::JailSys(SharingMode::New))
    );
    assert_eq!(
        param(&p, "ip4.addr"),
        Some(&ParamValue::Ip4(vec![
            Ipv4Addr::new(192, 0, 2, 10),
            Ipv4Addr::new(192, 0, 2, 11)
        ]))
    );
    assert_eq!(
        param(&p, "ip6"),
        Some(&ParamValue::JailSys(SharingMode::Disable))
    );
    assert_eq!(param(&p, "ip6.addr"), None);
}

#[test]
fn vnet_jail_has_no_ip_parameters_and_keeps_its_interfaces() {
    let s = spec_for(config(
        json!({"freebsd": {"jail": {"vnet": "new", "vnetInterfaces": ["epair0b"]}}}),
    ));
    assert_eq!(
        s.network,
        Network::Vnet {
            interfaces: vec!["epair0b".into()]
        }
    );
    let p = s.params();
    assert_eq!(
        param(&p, "vnet"),
        Some(&ParamValue::JailSys(SharingMode::New))
    );
    assert!(param(&p, "ip4").is_none() && param(&p, "ip6").is_none());
}

#[test]
fn linux_network_namespace_becomes_vnet() {
    let s = spec_for(config(
        json!({"linux": {"namespaces": [{"type": "network"}, {"type": "uts"}]}}),
    ));
    assert!(matches!(s.network, Network::Vnet { .. }));
    assert_eq!(s.sysvshm, SharingMode::Inherit);
}

#[test]
fn allow_mount_list_sets_allow_mount_each_fs_and_lowers_enforce_statfs() {
    let s = spec_for(config(
        json!({"freebsd": {"jail": {"allow": {"mount": ["tmpfs", "nullfs"]}}}}),
    ));
    assert_eq!(s.enforce_statfs, 1);
    let p = s.params();
    let names: Vec<String> = p
        .iter()
        .filter(|p| p.name.starts_with("allow."))
        .map(JailParam::kernel_name)
        .collect();
    assert_eq!(
        names,
        ["allow.mount", "allow.mount.nullfs", "allow.mount.tmpfs"]
    );
}

#[test]
fn false_allow_flags_use_the_kernel_no_form() {
    let p = spec_for(config(
        json!({"freebsd": {"jail": {"allow": {"setHostname": false, "rawSockets": true}}}}),
    ))
    .params();
    let allow: Vec<String> = p
        .iter()
        .filter(|p| p.name.starts_with("allow."))
        .map(JailParam::kernel_name)
        .collect();
    assert_eq!(allow, ["allow.raw_sockets", "allow.noset_hostname"]);
    let nopersist = JailParam {
        name: "persist".into(),
        value: ParamValue::Bool(false),
    };
    assert_eq!(nopersist.kernel_name(), "nopersist");
    let nozfs = JailParam {
        name: "allow.mount.zfs".into(),
        value: ParamValue::Bool(false),
    };
    assert_eq!(nozfs.kernel_name(), "allow.mount.nozfs");
}

#[test]
fn encoding_uses_the_kernels_byte_layouts() {
    let int = JailParam {
        name: "enforce_statfs".into(),
        value: ParamValue::Int(1),
    };
    assert_eq!(int.value_bytes(), Some(1i32.to_ne_bytes().to_vec()));
    let sys = JailParam {
        name: "ip4".into(),
        value: ParamValue::JailSys(SharingMode::Inherit),
    };
    assert_eq!(sys.value_bytes(), Some(2i32.to_ne_bytes().to_vec()));
    let s = JailParam {
        name: "host.hostname".into(),
        value: ParamValue::Str("web".into()),
    };
    assert_eq!(s.value_bytes(), Some(b"web\0".to_vec()));
    assert_eq!(s.name_bytes(), b"host.hostname\0".to_vec());
    let b = JailParam {
        name: "persist".into(),
        value: ParamValue::Bool(true),
    };
    assert_eq!(b.value_bytes(), None);
    let ip4 = JailParam {
        name: "ip4.addr".into(),
        value: ParamValue::Ip4(vec![
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(192, 0, 2, 7),
        ]),
    };
    assert_eq!(ip4.value_bytes(), Some(vec![10, 0, 0, 1, 192, 0, 2, 7]));
    let v6: Ipv6Addr = "2001:db8::1".parse().unwrap();
    let ip6 = JailParam {
        name: "ip6.addr".into(),
        value: ParamValue::Ip6(vec![v6]),
    };
    let bytes = ip6.value_bytes().unwrap();
    assert_eq!(bytes.len(), 16);
    assert_eq!(&bytes[..4], &[0x20, 0x01, 0x0d, 0xb8]);
    assert_eq!(bytes[15], 1);
}

#[test]
fn nested_container_is_named_under_its_parent() {
    let s = spec_for(config(
        json!({"annotations": {"org.freebsd.parentJail": "pod7"}}),
    ));
    assert_eq!(s.name.as_str(), "pod7.c1");
    assert_eq!(s.parent.as_deref(), Some("pod7"));
}

#[test]
fn a_matrix_of_configurations_all_pass_the_kernel_table() {
    let variants = [
        json!({"freebsd": {"jail": {"host": "inherit", "ip4": "inherit", "ip6": "disable"}}}),
        json!({"freebsd": {"jail": {"ip6Addr": ["2001:db8::5"], "interface": "em0", "sysvmsg": "disable", "sysvsem": "inherit"}}}),
        json!({"freebsd": {"jail": {"ip4": "new"}}}),
        json!({"freebsd": {"jail": {"enforceStatfs": 0, "allow": {"mount": ["zfs", "devfs", "fdescfs", "procfs", "linprocfs", "linsysfs", "fusefs"], "quotas": true, "socketAf": true, "mlock": true, "reservedPorts": false, "suser": false, "chflags": true}}}}),
        json!({"annotations": {"org.freebsd.jail.vnet": "new", "org.freebsd.jail.allow.nfsd": "true", "org.freebsd.jail.allow.vmm": "1", "org.freebsd.jail.allow.settime": "true"}}),
        json!({"annotations": {"org.freebsd.jail.ip4.addr": "192.0.2.1,192.0.2.2", "org.freebsd.jail.ip6.addr": "2001:db8::1"}}),
        json!({"hostname": "h".repeat(255)}),
        json!({"linux": {"namespaces": [{"type": "ipc"}, {"type": "uts"}, {"type": "pid"}, {"type": "mount"}]}, "hostname": "x"}),
    ];
    for v in variants {
        spec_for(config(v));
    }
    let max: Vec<String> = (0..255)
        .map(|i| format!("10.1.{}.{}", i / 200, i % 200 + 1))
        .collect();
    spec_for(config(json!({"freebsd": {"jail": {"ip4Addr": max}}})));
}

#[test]
fn kernel_table_check_catches_what_the_kernel_rejects() {
    let table = KernelTable::load();
    let persist = JailParam {
        name: "persist".into(),
        value: ParamValue::Bool(true),
    };
    let bad_lists = [
        vec![
            persist.clone(),
            JailParam {
                name: "mount.devfs".into(),
                value: ParamValue::Bool(true),
            },
        ],
        vec![
            persist.clone(),
            JailParam {
                name: "enforce_statfs".into(),
                value: ParamValue::Int(3),
            },
        ],
        vec![
            persist.clone(),
            JailParam {
                name: "vnet".into(),
                value: ParamValue::JailSys(SharingMode::Disable),
            },
        ],
        vec![
            persist.clone(),
            JailParam {
                name: "host.hostname".into(),
                value: ParamValue::Int(1),
            },
        ],
        vec![
            persist.clone(),
            JailParam {
                name: "dying".into(),
                value: ParamValue::Bool(true),
            },
        ],
        vec![JailParam {
            name: "name".into(),
            value: ParamValue::Str("x".into()),
        }],
        vec![
            persist.clone(),
            JailParam {
                name: "vnet".into(),
                value: ParamValue::JailSys(SharingMode::New),
            },
            JailParam {
                name: "ip4".into(),
                value: ParamValue::JailSys(SharingMode::Inherit),
            },
        ],
    ];
    for list in bad_lists {
        let caught = std::panic::catch_unwind(|| table.check(&list)).is_err();
        assert!(caught, "the checker accepted {list:?}");
    }
}

#[test]
fn path_longer_than_the_kernel_takes_is_rejected() {
    let bundle = PathBuf::from(format!("/{}", "d".repeat(1020)));
    let cfg = ContainerConfig::from_value(config(json!({})), &bundle).unwrap();
    let err = JailSpec::from_config(&cfg, &ContainerId::parse("c").unwrap()).unwrap_err();
    assert!(err.to_string().contains("at most 1023 bytes"), "{err}");
}

/// Golden jail.conf renderings of the runtime-spec's FreeBSD examples. Set
/// STOCKADE_UPDATE_GOLDEN=1 to rewrite them after a deliberate change, then review the diff.
#[test]
fn freebsd_examples_translate_to_their_golden_jail_conf() {
    for example in [
        "config-good-freebsd-example",
        "config-good-freebsd-minimal",
        "config-good-minimal",
        "config-good-minimal-for-start",
    ] {
        let file = reference(&format!("runtime-spec-v1.3.0/examples/{example}.json"));
        let v: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        let cfg = ContainerConfig::from_value(v, Path::new("/var/db/stockade/bundles/example"))
            .unwrap_or_else(|e| panic!("{example}: {e}"));
        let spec = JailSpec::from_config(&cfg, &ContainerId::parse("example").unwrap()).unwrap();
        KernelTable::load().check(&spec.params());
        let got = to_jail_conf(&spec);
        let golden =
            Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("src/jail/golden/{example}.conf"));
        if std::env::var_os("STOCKADE_UPDATE_GOLDEN").is_some() {
            std::fs::write(&golden, &got).unwrap();
        }
        let want = std::fs::read_to_string(&golden)
            .unwrap_or_else(|e| panic!("{}: {e}", golden.display()));
        assert_eq!(got, want, "{example} differs from {}", golden.display());
    }
}

#[test]
fn spec_example_with_a_pre_1_0_version_is_rejected_for_its_version() {
    let file = reference("runtime-spec-v1.3.0/examples/config-good-spec-example.json");
    let mut v: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    let err = ContainerConfig::from_value(v.clone(), Path::new("/b"))
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("ociVersion: \"0.5.0-dev\""), "{err}");
    // With a 1.x version the rest of that (Linux) example is accepted and translated.
    v["ociVersion"] = json!("1.3.0");
    let cfg = ContainerConfig::from_value(v, Path::new("/b")).unwrap();
    let spec = JailSpec::from_config(&cfg, &ContainerId::parse("x").unwrap()).unwrap();
    KernelTable::load().check(&spec.params());
    assert!(matches!(spec.network, Network::Vnet { .. }));
}

#[test]
fn bad_freebsd_example_is_rejected_with_a_clear_error() {
    let file = reference("runtime-spec-v1.3.0/examples/config-bad-freebsd-vnet-disable.json");
    let v: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    let err = ContainerConfig::from_value(v, Path::new("/b"))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "freebsd.jail.vnet: \"disable\" is not valid here; expected \"new\" or \"inherit\""
    );
}
