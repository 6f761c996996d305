//! Tests of [`super`]: modes, records, namespaces keyed by storage root.

use super::*;

#[test]
fn modes() {
    assert_eq!("host".parse::<NetworkMode>().unwrap(), NetworkMode::Host);
    assert_eq!("none".parse::<NetworkMode>().unwrap(), NetworkMode::None);
    assert_eq!(
        "back".parse::<NetworkMode>().unwrap(),
        NetworkMode::Named("back".into())
    );
    assert!("../x".parse::<NetworkMode>().is_err());
}

#[test]
fn ports_need_a_network_and_host_makes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let p: PortMapping = "80:80".parse().unwrap();
    assert!(attach(tmp.path(), "c", &NetworkMode::Host, &[])
        .unwrap()
        .is_none());
    for m in [NetworkMode::Host, NetworkMode::None] {
        assert!(matches!(
            attach(tmp.path(), "c", &m, std::slice::from_ref(&p)),
            Err(NetError::PortsWithoutNetwork)
        ));
    }
    assert!(!record_path(tmp.path(), "c").exists());
    assert!(!detach(tmp.path(), "c").unwrap());
}

#[test]
fn config_joins_the_namespace_and_mounts_hosts_and_resolv_conf() {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = json!({"linux": {"namespaces": [{"type": "pid"}, {"type": "network"}]},
                            "mounts": [{"destination": "/etc/hosts", "type": "bind", "source": "/x"}]});
    let att = Attached {
        netns: "/run/stockade/netns/c".into(),
        network: Some("stockade".into()),
        addresses: vec!["10.89.0.7".into()],
        peers: vec![("10.89.0.5".into(), "db".into())],
    };
    apply_to_config(&mut config, &att, tmp.path(), &["web"]).unwrap();
    assert_eq!(
        config["linux"]["namespaces"],
        json!([{"type": "pid"}, {"type": "network", "path": "/run/stockade/netns/c"}])
    );
    let m = config["mounts"].as_array().unwrap();
    assert_eq!(m.len(), 2);
    assert_eq!(m[0]["source"], tmp.path().join("hosts").to_str().unwrap());
    assert_eq!(m[1]["destination"], "/etc/resolv.conf");
    let hosts = fs::read_to_string(tmp.path().join("hosts")).unwrap();
    assert!(hosts.contains("10.89.0.7\tweb\n10.89.0.5\tdb\n"), "{hosts}");
}

fn root_with_plugins() -> bool {
    let ok = nix::unistd::geteuid().is_root()
        && cfg!(target_os = "linux")
        && config::plugin_dirs()
            .iter()
            .any(|d| d.join("loopback").is_file());
    if !ok {
        eprintln!("skipped: needs root, Linux and the CNI loopback plugin");
    }
    ok
}

/// Fails with the namespace keyed by id only: the second attach finds the first's file.
#[test]
fn two_storage_roots_may_attach_the_same_id() {
    if !root_with_plugins() {
        return;
    }
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let id = format!("same{}", std::process::id());
    let one = attach(a.path(), &id, &NetworkMode::None, &[])
        .unwrap()
        .unwrap();
    let two = attach(b.path(), &id, &NetworkMode::None, &[]);
    let cleanup = |two_ok| {
        detach(a.path(), &id).unwrap();
        if two_ok {
            detach(b.path(), &id).unwrap();
        }
    };
    let two = match two {
        Ok(t) => t.unwrap(),
        Err(e) => {
            cleanup(false);
            panic!("the second root's attach failed: {e}");
        }
    };
    assert_ne!(one.netns, two.netns);
    assert!(one.netns.starts_with("/run/stockade/netns/"));
    assert_eq!(one.netns.parent().unwrap().file_name().unwrap().len(), 16);
    // The same root under another spelling has the same key.
    let key = root_key(a.path()).unwrap();
    assert_eq!(root_key(&a.path().join(".")).unwrap(), key);
    cleanup(true);
    assert!(!one.netns.exists() && !two.netns.exists());
    // The root's directory went with its last namespace.
    assert!(!one.netns.parent().unwrap().exists());
}

/// A record of the layout before (`/run/stockade/netns/<id>`) is torn down as well.
#[test]
fn a_namespace_of_the_old_layout_is_removed() {
    if !root_with_plugins() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let id = format!("old{}", std::process::id());
    let netns = Path::new(crate::netns::NETNS_DIR).join(&id);
    crate::netns::create(&netns).unwrap();
    fs::create_dir_all(records_dir(tmp.path())).unwrap();
    write_record(
        tmp.path(),
        &Record {
            id: id.clone(),
            netns: netns.clone(),
            network: None,
            list: None,
            runtime_config: Map::new(),
            result: None,
            hosts: None,
            names: Vec::new(),
        },
    )
    .unwrap();
    assert!(detach(tmp.path(), &id).unwrap());
    assert!(!netns.exists());
    assert!(Path::new(crate::netns::NETNS_DIR).is_dir());
}

#[test]
fn users_lists_the_containers_of_a_network() {
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir_all(records_dir(tmp.path())).unwrap();
    for (id, net) in [
        ("a", Some("n1")),
        ("b", Some("n2")),
        ("c", None),
        ("d", Some("n1")),
        ("host", Some("n1")),
    ] {
        write_record(
            tmp.path(),
            &Record {
                id: id.into(),
                netns: "/x".into(),
                network: net.map(str::to_string),
                list: None,
                runtime_config: Map::new(),
                result: Some(json!({"ips": [{"address": format!("10.1.0.{}/24", id.len() + 1)}]})),
                hosts: None,
                names: Vec::new(),
            },
        )
        .unwrap();
    }
    assert_eq!(users(tmp.path(), "n1").unwrap(), ["a", "d", "host"]);
    assert!(users(tmp.path(), "n3").unwrap().is_empty());
    assert_eq!(
        peers(tmp.path(), "n1", "d").unwrap(),
        [
            ("10.1.0.2".to_string(), "a".to_string()),
            ("10.1.0.5".to_string(), "host".to_string())
        ]
    );
}

/// The backend is a value: one whose networks are not executed refuses before any record
/// or namespace exists, on every host (the build's `cfg` used to decide this).
#[test]
fn a_backend_without_networks_refuses_before_anything_is_made() {
    let tmp = tempfile::tempdir().unwrap();
    let ns = crate::namespaces::NotExecuted;
    for mode in [NetworkMode::None, NetworkMode::Named("stockade".into())] {
        assert!(matches!(
            attach_with(&ns, tmp.path(), "c", &mode, &[]),
            Err(NetError::NotExecutedHere)
        ));
        assert!(!record_path(tmp.path(), "c").exists());
    }
    // --network host needs nothing of the backend.
    assert!(attach_with(&ns, tmp.path(), "c", &NetworkMode::Host, &[])
        .unwrap()
        .is_none());
    assert!(!detach_with(&ns, tmp.path(), "c").unwrap());
}

/// Fails with detach returning at "no record" first: a run killed while writing its first
/// record left only the temporary, and delete --force left it (crash-image.sh found it).
#[test]
fn detach_removes_a_killed_writers_temporary_record() {
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir_all(records_dir(tmp.path())).unwrap();
    let stale = records_dir(tmp.path()).join(".c.json.99999999.tmp");
    fs::write(&stale, b"{").unwrap();
    assert!(!detach_with(&crate::namespaces::NotExecuted, tmp.path(), "c").unwrap());
    assert!(!stale.exists());
}
