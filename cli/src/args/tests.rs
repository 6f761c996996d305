//! The command line parses as runc's callers and the docs say it does.

use clap::{CommandFactory, Parser};

use super::*;

fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("stockade").chain(args.iter().copied()))
}

#[test]
fn the_command_line_is_consistent() {
    Cli::command().debug_assert();
}

#[test]
fn create_and_run_share_their_flags() {
    let flags = [
        "--bundle",
        "/b",
        "--pid-file",
        "/p",
        "--console-socket",
        "/c",
        "--pidfd-socket",
        "/f",
        "--preserve-fds",
        "2",
        "--no-pivot",
        "--no-new-keyring",
    ];
    for cmd in ["create", "run"] {
        let mut args = vec!["--root", "/r", cmd];
        args.extend(flags);
        args.push("c1");
        let cli = parse(&args).unwrap();
        let create = match cli.command {
            Some(Command::Create(a)) => a.create,
            Some(Command::Run(a)) => a.create,
            other => panic!("{cmd}: {other:?}"),
        };
        let o = create.options();
        assert_eq!(create.bundle, PathBuf::from("/b"), "{cmd}");
        assert_eq!(o.pid_file, Some(PathBuf::from("/p")), "{cmd}");
        assert_eq!(o.console_socket, Some(PathBuf::from("/c")), "{cmd}");
        assert_eq!(o.pidfd_socket, Some(PathBuf::from("/f")), "{cmd}");
        assert_eq!(o.preserve_fds, 2, "{cmd}");
        assert!(create.no_pivot && create.no_new_keyring, "{cmd}");
        assert_eq!(cli.global.root, PathBuf::from("/r"));
    }
}

#[test]
fn run_image_flags_go_with_image_only() {
    assert!(parse(&["run", "--image", "busybox", "--bundle", "/b"]).is_err());
    assert!(parse(&["run", "--rm", "c1"]).is_err(), "--rm needs --image");
    assert!(parse(&["run", "--name", "x", "c1"]).is_err());
    assert!(parse(&["run"]).is_err(), "an id or an image");
    let cli = parse(&[
        "run", "--image", "busybox", "--rm", "--name", "x", "--", "sh", "-c", "id",
    ])
    .unwrap();
    let Some(Command::Run(a)) = cli.command else {
        panic!("not run")
    };
    assert_eq!(a.image.as_deref(), Some("busybox"));
    assert!(a.rm);
    assert_eq!(a.name.as_deref(), Some("x"));
    assert_eq!(a.command, ["sh", "-c", "id"]);
}

#[test]
fn storage_flags_make_the_library_config() {
    let cli = parse(&[
        "delete",
        "--storage-root",
        "/s",
        "--zfs-dataset",
        "pool/x",
        "c1",
    ])
    .unwrap();
    let Some(Command::Delete(a)) = cli.command else {
        panic!("not delete")
    };
    let c = a.storage.config(Default::default());
    assert_eq!(c.root, PathBuf::from("/s"));
    assert_eq!(c.kind(), stockade_image::provision::DriverKind::Zfs);
    let cli = parse(&[
        "bundle",
        "--storage-driver",
        "dir",
        "--max-entries",
        "7",
        "prune",
    ])
    .unwrap();
    let Some(Command::Bundle(b)) = cli.command else {
        panic!("not bundle")
    };
    let c = b.storage.config();
    assert_eq!(c.kind(), stockade_image::provision::DriverKind::Dir);
    assert_eq!(c.limits.max_entries, 7);
}

#[test]
fn registry_flags_make_pull_settings() {
    let r = registry::RegistryArgs {
        platform: Some("linux/arm64".into()),
        creds: Some("u:p".into()),
        authfile: None,
        insecure: true,
        ..Default::default()
    };
    let s = r.settings().unwrap();
    assert_eq!(s.platform.unwrap().to_string(), "linux/arm64");
    assert!(s.insecure && s.creds.as_deref() == Some("u:p"));
    let bad = registry::RegistryArgs {
        platform: Some("nonsense".into()),
        ..Default::default()
    };
    assert!(bad.settings().is_err());
}
