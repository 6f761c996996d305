//! Table tests: every rejection names the JSON path, the value and what is accepted.

use std::path::Path;

use serde_json::{json, Value};

use super::*;

fn base() -> Value {
    json!({
        "ociVersion": "1.3.0",
        "root": {"path": "rootfs"},
        "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
    })
}

fn with(patch: Value) -> Value {
    let mut v = base();
    merge(&mut v, patch);
    v
}

fn merge(dst: &mut Value, patch: Value) {
    match (dst, patch) {
        (Value::Object(d), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    d.remove(&k);
                } else {
                    merge(d.entry(k).or_insert(Value::Null), v);
                }
            }
        }
        (d, p) => *d = p,
    }
}

fn load(v: Value) -> Result<ContainerConfig, ConfigError> {
    ContainerConfig::from_value(v, Path::new("/bundles/c1"))
}

#[test]
fn minimal_config_loads_with_root_resolved_against_the_bundle() {
    let c = load(base()).unwrap();
    assert_eq!(c.root, Path::new("/bundles/c1/rootfs"));
    assert!(!c.root_readonly);
    assert_eq!(c.jail, JailSettings::default());
}

#[test]
fn unknown_properties_and_annotations_are_accepted() {
    let c = load(with(json!({
        "futureField": {"x": 1},
        "process": {"futureProcessField": true},
        "freebsd": {"futureFreebsdField": 1, "jail": {"futureJailField": "x"}},
        "annotations": {"com.example.anything": "1", "org.freebsd.other": "x"},
    })))
    .unwrap();
    assert_eq!(c.annotations["com.example.anything"], "1");
}

#[test]
fn section_wins_over_annotations_which_win_over_linux_namespaces() {
    let c = load(with(json!({
        "freebsd": {"jail": {"sysvmsg": "disable", "allow": {"rawSockets": false}}},
        "annotations": {
            "org.freebsd.jail.sysvmsg": "inherit",
            "org.freebsd.jail.sysvsem": "inherit",
            "org.freebsd.jail.allow.raw_sockets": "true",
            "org.freebsd.jail.allow.chflags": "true",
        },
        "linux": {"namespaces": [{"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]},
    })))
    .unwrap();
    let j = &c.jail;
    assert_eq!(j.sysvmsg.as_ref().unwrap().value, SharingMode::Disable);
    assert_eq!(j.sysvmsg.as_ref().unwrap().from, "freebsd.jail.sysvmsg");
    assert_eq!(j.sysvsem.as_ref().unwrap().value, SharingMode::Inherit);
    assert_eq!(j.sysvshm.as_ref().unwrap().value, SharingMode::New);
    assert_eq!(j.sysvshm.as_ref().unwrap().from, "linux.namespaces[0]");
    assert!(!j.allow.flags["raw_sockets"].value);
    assert!(j.allow.flags["chflags"].value);
    assert_eq!(j.host.as_ref().unwrap().value, SharingMode::New);
}

#[test]
fn linux_namespaces_without_uts_or_ipc_mean_inherit() {
    let c = load(with(
        json!({"linux": {"namespaces": [{"type": "pid"}, {"type": "network"}]}}),
    ))
    .unwrap();
    assert_eq!(c.jail.host.unwrap().value, SharingMode::Inherit);
    assert_eq!(c.jail.sysvshm.unwrap().value, SharingMode::Inherit);
    assert_eq!(c.jail.vnet.unwrap().value, SharingMode::New);
}

#[test]
fn a_linux_object_without_namespaces_lists_none_unless_the_config_is_a_jails() {
    let c = load(with(json!({"linux": {"maskedPaths": ["/proc/kcore"]}}))).unwrap();
    assert_eq!(c.jail.host.unwrap().value, SharingMode::Inherit);
    assert_eq!(c.jail.sysvmsg.unwrap().value, SharingMode::Inherit);
    assert!(c.jail.vnet.is_none());
    let listed = c.spec.linux().as_ref().unwrap().namespaces().clone();
    assert_eq!(listed, Some(Vec::new()));
    // No linux object, or a freebsd section: nothing said, the jail model decides.
    let c = load(with(json!({}))).unwrap();
    assert!(c.jail.host.is_none() && c.jail.sysvmsg.is_none());
    let c = load(with(json!({
        "linux": {"resources": {"pids": {"limit": 5}}},
        "freebsd": {"jail": {"vnet": "new"}},
    })))
    .unwrap();
    assert!(c.jail.host.is_none() && c.jail.sysvmsg.is_none());
    assert_eq!(c.spec.linux().as_ref().unwrap().namespaces(), &None);
}

#[test]
fn freebsd_rlimit_names_are_kept_for_the_platform_to_check() {
    let c = load(with(json!({"process": {"rlimits": [
        {"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 4096},
        {"type": "RLIMIT_SWAP", "soft": 1, "hard": 2},
    ]}})))
    .unwrap();
    assert_eq!(c.rlimits.len(), 2);
    assert_eq!(c.rlimits[1].name, "RLIMIT_SWAP");
}

#[test]
fn devices_accept_paths_with_or_without_dev_prefix() {
    let c = load(with(
        json!({"freebsd": {"devices": [{"path": "pf", "mode": 448}, {"path": "/dev/bpf*"}]}}),
    ))
    .unwrap();
    assert_eq!(
        c.devices[0],
        DeviceRule {
            path: "pf".into(),
            mode: Some(0o700)
        }
    );
    assert_eq!(c.devices[1].path, "bpf*");
}

/// (what, patch, the error's start, a fragment of what is accepted)
const CASES: &[(&str, &str, &str, &str)] = &[
    ("missing ociVersion", r#"{"ociVersion": null}"#, "ociVersion: required", "1.x"),
    ("ociVersion 2.0.0", r#"{"ociVersion": "2.0.0"}"#, "ociVersion: \"2.0.0\" is not valid here", "1.0.0 to 1.3.x"),
    ("ociVersion number", r#"{"ociVersion": 1}"#, "ociVersion: ", "a string"),
    ("vnet disable", r#"{"freebsd": {"jail": {"vnet": "disable"}}}"#, "freebsd.jail.vnet: \"disable\" is not valid here", "expected \"new\" or \"inherit\""),
    ("host disable", r#"{"freebsd": {"jail": {"host": "disable"}}}"#, "freebsd.jail.host: \"disable\"", "\"new\" or \"inherit\""),
    ("ip4 bogus", r#"{"freebsd": {"jail": {"ip4": "on"}}}"#, "freebsd.jail.ip4: \"on\"", "\"disable\", \"new\" or \"inherit\""),
    ("sysvshm bogus", r#"{"freebsd": {"jail": {"sysvshm": "private"}}}"#, "freebsd.jail.sysvshm: \"private\"", "\"disable\", \"new\" or \"inherit\""),
    ("mode not a string", r#"{"freebsd": {"jail": {"ip6": 1}}}"#, "freebsd.jail.ip6: 1 (a number)", "a string"),
    ("enforceStatfs 3", r#"{"freebsd": {"jail": {"enforceStatfs": 3}}}"#, "freebsd.jail.enforceStatfs: 3 is not valid here", "0, 1 or 2"),
    ("enforceStatfs negative", r#"{"freebsd": {"jail": {"enforceStatfs": -1}}}"#, "freebsd.jail.enforceStatfs: -1", "0, 1 or 2"),
    ("malformed ip4", r#"{"freebsd": {"jail": {"ip4Addr": ["10.0.0.300"]}}}"#, "freebsd.jail.ip4Addr[0]: \"10.0.0.300\"", "an IPv4 address"),
    ("ip4 with prefix", r#"{"freebsd": {"jail": {"ip4Addr": ["10.0.0.1/24"]}}}"#, "freebsd.jail.ip4Addr[0]", "an IPv4 address"),
    ("malformed ip6", r#"{"freebsd": {"jail": {"ip6Addr": ["2001:db8:::1"]}}}"#, "freebsd.jail.ip6Addr[0]", "an IPv6 address"),
    ("duplicate ip4", r#"{"freebsd": {"jail": {"ip4Addr": ["10.0.0.1", "10.0.0.1"]}}}"#, "freebsd.jail.ip4Addr[1]: \"10.0.0.1\"", "each address listed once"),
    ("duplicate ip6 annotation", r#"{"annotations": {"org.freebsd.jail.ip6.addr": "::1,::1"}}"#, "annotations[\"org.freebsd.jail.ip6.addr\"][1]", "each address listed once"),
    ("addresses with vnet", r#"{"freebsd": {"jail": {"vnet": "new", "ip4Addr": ["10.0.0.1"]}}}"#, "freebsd.jail.ip4Addr conflicts with freebsd.jail.vnet", "vnet jails cannot have IP address restrictions"),
    ("annotation addresses with vnet", r#"{"annotations": {"org.freebsd.jail.vnet": "new", "org.freebsd.jail.ip6.addr": "2001:db8::1"}}"#, "annotations[\"org.freebsd.jail.ip6.addr\"] conflicts with annotations[\"org.freebsd.jail.vnet\"]", "vnet jails cannot"),
    ("ip4 new with vnet", r#"{"freebsd": {"jail": {"vnet": "new", "ip4": "new"}}}"#, "freebsd.jail.ip4 conflicts with freebsd.jail.vnet", "vnet jails cannot"),
    ("interface with vnet", r#"{"freebsd": {"jail": {"vnet": "new", "interface": "em0"}}}"#, "freebsd.jail.interface conflicts with freebsd.jail.vnet", "vnetInterfaces"),
    ("vnetInterfaces without vnet", r#"{"freebsd": {"jail": {"vnetInterfaces": ["epair0b"]}}}"#, "freebsd.jail.vnetInterfaces conflicts with freebsd.jail.vnet", "set vnet to \"new\""),
    ("bad vnet interface name", r#"{"freebsd": {"jail": {"vnet": "new", "vnetInterfaces": ["epair0b/x"]}}}"#, "freebsd.jail.vnetInterfaces[0]: \"epair0b/x\"", "a network interface name"),
    ("interface without addresses", r#"{"freebsd": {"jail": {"interface": "em0"}}}"#, "freebsd.jail.interface conflicts with", "no addresses are configured"),
    ("addresses with ip4 inherit", r#"{"freebsd": {"jail": {"ip4": "inherit", "ip4Addr": ["10.0.0.1"]}}}"#, "freebsd.jail.ip4Addr conflicts with freebsd.jail.ip4", "needs ip4 \"new\""),
    ("addresses with ip6 disable", r#"{"freebsd": {"jail": {"ip6": "disable", "ip6Addr": ["2001:db8::1"]}}}"#, "freebsd.jail.ip6Addr conflicts with freebsd.jail.ip6", "needs ip6 \"new\""),
    ("host inherit with hostname", r#"{"hostname": "web", "freebsd": {"jail": {"host": "inherit"}}}"#, "hostname conflicts with freebsd.jail.host", "use host \"new\""),
    ("hostname without uts namespace", r#"{"hostname": "web", "linux": {"namespaces": [{"type": "pid"}]}}"#, "hostname conflicts with linux.namespaces", "uts namespace"),
    ("domainname with host inherit", r#"{"domainname": "example.org", "freebsd": {"jail": {"host": "inherit"}}}"#, "domainname conflicts with freebsd.jail.host", "host \"new\""),
    ("hostname too long", r#"{"hostname": "HOSTNAME256"}"#, "hostname: ", "at most 255 bytes"),
    ("empty args", r#"{"process": {"args": []}}"#, "process.args: required but missing", "at least one element"),
    ("missing args", r#"{"process": {"args": null}}"#, "process.args: required but missing", "at least one element"),
    ("empty program", r#"{"process": {"args": [""]}}"#, "process.args[0]: \"\"", "the program to run"),
    ("args not strings", r#"{"process": {"args": [1]}}"#, "process.args[0]: ", "string"),
    ("missing cwd", r#"{"process": {"cwd": null}}"#, "process.cwd: required but missing", "absolute working directory"),
    ("relative cwd", r#"{"process": {"cwd": "tmp"}}"#, "process.cwd: \"tmp\"", "an absolute path"),
    ("missing root", r#"{"root": null}"#, "root: required but missing", "path"),
    ("empty root path", r#"{"root": {"path": ""}}"#, "root.path: required but missing", "root filesystem"),
    ("annotation not a string", r#"{"annotations": {"a": 1}}"#, "annotations.a: ", "string"),
    ("unknown mount fs", r#"{"freebsd": {"jail": {"enforceStatfs": 1, "allow": {"mount": ["ext4"]}}}}"#, "freebsd.jail.allow.mount[0]: \"ext4\"", "nullfs"),
    ("duplicate mount fs", r#"{"freebsd": {"jail": {"enforceStatfs": 1, "allow": {"mount": ["tmpfs", "tmpfs"]}}}}"#, "freebsd.jail.allow.mount[1]", "listed once"),
    ("allow flag not a bool", r#"{"freebsd": {"jail": {"allow": {"rawSockets": "yes"}}}}"#, "freebsd.jail.allow.rawSockets: \"yes\" (a string)", "true or false"),
    ("mount with enforce_statfs 2", r#"{"freebsd": {"jail": {"enforceStatfs": 2, "allow": {"mount": ["tmpfs"]}}}}"#, "freebsd.jail.allow.mount conflicts with freebsd.jail.enforceStatfs", "below 2"),
    ("mount.fs while mount off", r#"{"annotations": {"org.freebsd.jail.allow.mount": "false", "org.freebsd.jail.allow.mount.tmpfs": "true"}}"#, "annotations[\"org.freebsd.jail.allow.mount.tmpfs\"] conflicts with annotations[\"org.freebsd.jail.allow.mount\"]", "allow.mount is off"),
    ("nfsd without vnet", r#"{"annotations": {"org.freebsd.jail.allow.nfsd": "true"}}"#, "annotations[\"org.freebsd.jail.allow.nfsd\"] conflicts with freebsd.jail.vnet", "vnet"),
    ("bad parent", r#"{"freebsd": {"jail": {"parent": "a..b"}}}"#, "freebsd.jail.parent: \"a..b\"", "existing jail"),
    ("empty parent annotation", r#"{"annotations": {"org.freebsd.parentJail": ""}}"#, "annotations[\"org.freebsd.parentJail\"]: \"\"", "existing jail"),
    ("device escaping /dev", r#"{"freebsd": {"devices": [{"path": "../etc/passwd"}]}}"#, "freebsd.devices[0].path: \"../etc/passwd\"", "below /dev"),
    ("device mode too large", r#"{"freebsd": {"devices": [{"path": "pf", "mode": 4096}]}}"#, "freebsd.devices[0].mode: 4096", "0 to 511"),
    ("device without path", r#"{"freebsd": {"devices": [{"mode": 384}]}}"#, "freebsd.devices[0].path: required", "device path"),
    ("freebsd not an object", r#"{"freebsd": []}"#, "freebsd: [] (an array)", "an object"),
    ("rlimit soft above hard", r#"{"process": {"rlimits": [{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 5}]}}"#, "process.rlimits[0].soft conflicts with process.rlimits[0].hard", "above the hard limit"),
    ("rlimit bad name", r#"{"process": {"rlimits": [{"type": "NOFILE", "soft": 1, "hard": 1}]}}"#, "process.rlimits[0].type: \"NOFILE\"", "RLIMIT_NOFILE"),
    ("rlimit duplicate", r#"{"process": {"rlimits": [{"type": "RLIMIT_CORE", "soft": 1, "hard": 1}, {"type": "RLIMIT_CORE", "soft": 1, "hard": 1}]}}"#, "process.rlimits[1].type", "once"),
    ("mount without destination", r#"{"mounts": [{"type": "tmpfs"}]}"#, "mounts[0]: ", "destination"),
];

#[test]
fn every_rejection_names_path_value_and_what_is_accepted() {
    for (what, patch, start, accepted) in CASES {
        let patch = patch.replace("HOSTNAME256", &"h".repeat(256));
        let patch: Value = serde_json::from_str(&patch).unwrap_or_else(|e| panic!("{what}: {e}"));
        let err = match load(with(patch)) {
            Ok(_) => panic!("{what}: accepted, but must be rejected"),
            Err(e) => e.to_string(),
        };
        assert!(
            err.starts_with(start),
            "{what}: {err:?} should start with {start:?}"
        );
        assert!(
            err.contains(accepted),
            "{what}: {err:?} should mention {accepted:?}"
        );
    }
}

#[test]
fn malformed_json_names_the_file_and_position() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        b"{\"ociVersion\": \"1.3.0\",,}",
    )
    .unwrap();
    let err = ContainerConfig::load(dir.path()).unwrap_err().to_string();
    assert!(err.contains("config.json: not valid JSON"), "{err}");
    assert!(err.contains("line 1 column"), "{err}");
    let missing = ContainerConfig::load(&dir.path().join("nope"))
        .unwrap_err()
        .to_string();
    assert!(
        missing.starts_with("reading ") && missing.contains("nope/config.json"),
        "{missing}"
    );
}

#[test]
fn document_that_is_not_an_object_is_rejected() {
    let err = load(json!([1, 2])).unwrap_err().to_string();
    assert!(err.contains("expected a JSON object"), "{err}");
}

#[test]
fn process_without_user_runs_as_root() {
    let c = load(with(json!({"process": {"user": null}}))).unwrap();
    let user = c.process().unwrap().user();
    assert_eq!((user.uid(), user.gid()), (0, 0));
}

#[test]
fn config_without_process_loads_but_create_needs_one() {
    let c = load(with(json!({"process": null}))).unwrap();
    let err = c.process().unwrap_err().to_string();
    assert!(err.starts_with("process: required"), "{err}");
}
