use std::path::Path;

use clap::{CommandFactory, FromArgMatches};

use super::*;
use crate::args::{Cli, Command as Cmd};
use crate::settings::file::parse;

const FILE: &str = r#"
root = "/file/root"
image_root = "/file/images"
storage_driver = "zfs"
zfs_dataset = "tank/file"

[limits]
max_entries = 77

[registries."r.example"]
insecure = true
mirrors = ["m.example:5000"]
"#;

/// Parses `argv` with the config file `file` (none: built-in defaults).
fn cli(argv: &[&str], file: Option<&str>) -> Cli {
    let mut cmd = Cli::command();
    if let Some(text) = file {
        cmd = apply(cmd, &parse(text, Path::new("/t.conf")).unwrap());
    }
    let m = cmd.try_get_matches_from(argv).unwrap();
    let mut cli = Cli::from_arg_matches(&m).unwrap();
    if let (Some(text), Some(c)) = (file, &mut cli.command) {
        attach_registries(
            c,
            &parse(text, Path::new("/t.conf")).unwrap().registry_hosts(),
        );
    }
    cli
}

fn bundle_args(c: &Cli) -> (&crate::args::bundle::BundleArgs, &RegistryArgs) {
    match &c.command {
        Some(Cmd::Bundle(b)) => match &b.command {
            BundleCommand::Create { registry, .. } => (b, registry),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_file_replaces_built_in_defaults() {
    let built_in = cli(&["stockade", "list"], None);
    assert_eq!(built_in.global.root, Path::new(crate::args::DEFAULT_ROOT));
    let c = cli(&["stockade", "list"], Some(FILE));
    assert_eq!(c.global.root, Path::new("/file/root"));
    let c = cli(
        &["stockade", "bundle", "create", "--image", "a", "d"],
        Some(FILE),
    );
    let (b, registry) = bundle_args(&c);
    assert_eq!(b.storage.image_root, Path::new("/file/images"));
    let storage = b.storage.config();
    assert_eq!(storage.zfs_dataset.as_deref(), Some("tank/file"));
    assert_eq!(
        storage.driver,
        Some(stockade_image::provision::DriverKind::Zfs)
    );
    assert_eq!(storage.limits.max_entries, 77);
    assert!(registry.hosts.get("r.example").unwrap().insecure);
    let settings = registry.settings().unwrap();
    assert_eq!(
        settings.registries.get("r.example").unwrap().mirrors,
        ["m.example:5000"]
    );
}

#[test]
fn flags_win_over_the_file() {
    let c = cli(&["stockade", "--root", "/flag/root", "list"], Some(FILE));
    assert_eq!(c.global.root, Path::new("/flag/root"));
    let c = cli(
        &[
            "stockade",
            "bundle",
            "--max-entries",
            "5",
            "--image-root",
            "/flag/img",
            "create",
            "--image",
            "a",
            "d",
        ],
        Some(FILE),
    );
    let (b, _) = bundle_args(&c);
    assert_eq!(b.storage.image_root, Path::new("/flag/img"));
    assert_eq!(b.storage.config().limits.max_entries, 5);
    let c = cli(
        &["stockade", "image", "--image-root", "/flag/img", "ls"],
        Some(FILE),
    );
    match &c.command {
        Some(Cmd::Image(a)) => assert_eq!(a.image_root, Path::new("/flag/img")),
        other => panic!("{other:?}"),
    }
    let c = cli(&["stockade", "image", "ls"], Some(FILE));
    match &c.command {
        Some(Cmd::Image(a)) => assert_eq!(a.image_root, Path::new("/file/images")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn log_keys_become_the_defaults_of_the_service_flags() {
    let file = "log_driver = \"json-file\"\nlog_size = \"64k\"\n";
    let run = |argv: &[&str], f| match cli(argv, f).command {
        Some(Cmd::Run(r)) => r.service.clone(),
        other => panic!("{other:?}"),
    };
    let base = ["stockade", "run", "--image", "x", "-d"];
    let s = run(&base, Some(file));
    assert_eq!(s.log_driver, stockade_monitor::log::LogDriver::JsonFile);
    assert_eq!(s.log_size, 64 << 10);
    let s = run(&base, None);
    assert_eq!(s.log_driver, stockade_monitor::log::LogDriver::K8sFile);
    assert_eq!(s.log_size, stockade_monitor::log::DEFAULT_LOG_SIZE);
    let mut flagged = base.to_vec();
    flagged.extend(["--log-driver", "k8s-file", "--log-size", "1m"]);
    let s = run(&flagged, Some(file));
    assert_eq!(s.log_driver, stockade_monitor::log::LogDriver::K8sFile);
    assert_eq!(s.log_size, 1 << 20);
}
