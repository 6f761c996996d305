use std::path::Path;

use super::*;

fn parse_ok(text: &str) -> Settings {
    parse(text, Path::new("/etc/stockade/stockade.conf")).unwrap()
}

fn parse_err(text: &str) -> String {
    parse(text, Path::new("/etc/stockade/stockade.conf"))
        .unwrap_err()
        .to_string()
}

#[test]
fn every_key_is_read_into_its_type() {
    let s = parse_ok(
        r#"
root = "/run/s"
image_root = "/var/img"
storage_root = "/var/st"
storage_driver = "zfs"
zfs_dataset = "tank/stockade"

[limits]
max_unpacked_size = "2g"
max_sparse_size = "auto"
max_entries = 1000
max_path_depth = 64
max_header_size = "64k"

[registries."docker.io"]
mirrors = ["mirror.example:5000", "127.0.0.1:5001"]
auth_file = "/etc/stockade/auth.json"

[registries."r.example"]
insecure = true
"#,
    );
    assert_eq!(s.root.as_deref(), Some(Path::new("/run/s")));
    assert_eq!(s.image_root.as_deref(), Some(Path::new("/var/img")));
    assert_eq!(s.storage_root.as_deref(), Some(Path::new("/var/st")));
    assert_eq!(s.storage_driver, Some(DriverKind::Zfs));
    assert_eq!(s.zfs_dataset.as_deref(), Some("tank/stockade"));
    assert_eq!(s.limits.max_unpacked_size, Some(SizeLimit::Bytes(2 << 30)));
    assert_eq!(s.limits.max_sparse_size, Some(SizeLimit::Auto));
    assert_eq!(s.limits.max_entries, Some(1000));
    assert_eq!(s.limits.max_path_depth, Some(64));
    assert_eq!(s.limits.max_header_size, Some(64 << 10));
    let hosts = s.registry_hosts();
    let hub = hosts.get("docker.io").unwrap();
    assert_eq!(hub.mirrors, ["mirror.example:5000", "127.0.0.1:5001"]);
    assert_eq!(
        hub.auth_file.as_deref(),
        Some(Path::new("/etc/stockade/auth.json"))
    );
    assert!(!hub.insecure);
    assert!(hosts.get("r.example").unwrap().insecure);
    assert!(hosts.get("other.example").is_none());
    assert_eq!(parse_ok(""), Settings::default());
}

#[test]
fn an_unknown_key_names_file_line_and_key() {
    let e = parse_err("root = \"/x\"\n\nimage_rot = \"/y\"\n");
    assert!(
        e.starts_with("/etc/stockade/stockade.conf:3: key image_rot: unknown field"),
        "{e}"
    );
    let e = parse_err("[limits]\nmax_entries = 5\nmax_bytes = 7\n");
    assert!(e.contains(":3: key max_bytes: unknown field"), "{e}");
    let e = parse_err("[registries.\"r.example\"]\nmirror = [\"m.example\"]\n");
    assert!(e.contains(":2: key mirror: unknown field"), "{e}");
}

#[test]
fn a_bad_value_names_file_line_and_key() {
    let e = parse_err("root = \"/x\"\nstorage_driver = \"btrfs\"\n");
    assert!(
        e.contains(":2: key storage_driver: unknown storage driver \"btrfs\", expected one of dir, zfs, overlay"),
        "{e}"
    );
    assert_eq!(
        parse_ok("storage_driver = \"overlay\"").storage_driver,
        Some(DriverKind::Overlay)
    );
    let e = parse_err("\n[limits]\nmax_entries = \"many\"\n");
    assert!(e.contains(":3: key max_entries: invalid type"), "{e}");
    let e = parse_err("[limits]\nmax_unpacked_size = \"lots\"\n");
    assert!(
        e.contains(":2: key max_unpacked_size: size \"lots\""),
        "{e}"
    );
    let e = parse_err("[limits]\nmax_header_size = \"auto\"\n");
    assert!(e.contains(":2: key max_header_size:"), "{e}");
    let e = parse_err("root = 5\n");
    assert!(e.contains(":1: key root: invalid type"), "{e}");
    let e = parse_err("[registries.\"h.example\"]\nmirrors = [\"https://m.example\"]\n");
    assert!(e.contains(":2: key mirrors: mirror"), "{e}");
    let e = parse_err("root = \n");
    assert!(e.contains(":1:"), "{e}");
}

#[test]
fn log_keys_are_checked_and_read() {
    let s = parse(
        "log_driver = \"json-file\"\nlog_size = \"64k\"\n",
        Path::new("/c"),
    )
    .unwrap();
    assert_eq!(
        s.log_driver,
        Some(stockade_monitor::log::LogDriver::JsonFile)
    );
    assert_eq!(s.log_size.as_deref(), Some("64k"));
    let e = parse_err("\nlog_driver = \"journald\"\n");
    assert!(e.contains(":2: key log_driver:"), "{e}");
    let e = parse_err("\nlog_size = \"1\"\n");
    assert!(e.contains(":2: key log_size:"), "{e}");
}

#[test]
fn the_default_network_is_checked_as_the_flag_is() {
    assert_eq!(
        parse_ok("network = \"host\"\n").network.as_deref(),
        Some("host")
    );
    assert_eq!(
        parse_ok("network = \"lan0\"\n").network.as_deref(),
        Some("lan0")
    );
    let e = parse_err("root = \"/x\"\nnetwork = \"../etc\"\n");
    assert!(e.contains(":2: key network:"), "{e}");
}

#[test]
fn a_missing_explicit_file_is_an_error_and_a_large_one_refused() {
    let dir = tempfile::tempdir().unwrap();
    let e = read(&dir.path().join("nope.conf")).unwrap_err();
    assert!(matches!(e, SettingsError::Read { .. }), "{e}");
    let big = dir.path().join("big.conf");
    std::fs::write(&big, "#".repeat(MAX_CONFIG_BYTES as usize + 1)).unwrap();
    assert!(matches!(read(&big), Err(SettingsError::TooLarge { .. })));
    let ok = dir.path().join("ok.conf");
    std::fs::write(&ok, "root = \"/r\"\n").unwrap();
    assert_eq!(read(&ok).unwrap().root.as_deref(), Some(Path::new("/r")));
}

#[test]
fn the_packaged_sample_parses_with_every_key_uncommented() {
    let sample = include_str!("../../../packaging/freebsd/files/stockade.conf.sample");
    assert_eq!(
        parse_ok(sample),
        Settings::default(),
        "the sample sets nothing"
    );
    // Uncomment `#key = …` and `#[table]` lines (not the prose comments).
    let uncommented: String = sample
        .lines()
        .map(|l| match l.strip_prefix('#') {
            Some(rest) if rest.starts_with('[') || rest.contains(" = ") => rest,
            _ => l,
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let s = parse_ok(&uncommented);
    assert_eq!(s.storage_driver, Some(DriverKind::Zfs));
    assert_eq!(s.limits.max_path_depth, Some(256));
    assert_eq!(
        s.log_driver,
        Some(stockade_monitor::log::LogDriver::K8sFile)
    );
    assert_eq!(s.log_size.as_deref(), Some("10m"));
    let hosts = s.registry_hosts();
    assert!(hosts.get("registry.lan:5000").unwrap().insecure);
    assert_eq!(
        hosts.get("docker.io").unwrap().mirrors,
        ["mirror.example.org:5000"]
    );
}
