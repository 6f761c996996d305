//! Bundles from images: the image config laid over a base, users resolved in the image.

use super::*;

fn rootfs() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    fs::create_dir(t.path().join("etc")).unwrap();
    fs::write(
        t.path().join("etc/passwd"),
        "root:x:0:0::/root:/bin/sh\nwww:x:80:80::/:/sbin/nologin\n",
    )
    .unwrap();
    fs::write(
        t.path().join("etc/group"),
        "wheel:*:0:root\nwww:*:80:\nstaff:*:20:www,root\n",
    )
    .unwrap();
    t
}

fn image(ec: ExecConfig, os: &str) -> ResolvedImage {
    ResolvedImage {
        name: "test/img:1".into(),
        manifest: Manifest {
            schema_version: 2,
            media_type: None,
            config: crate::oci::manifest::Descriptor::new("x", Digest::sha256_of(b""), 0),
            layers: vec![],
            annotations: None,
        },
        config: ImageConfig {
            os: os.into(),
            architecture: "amd64".into(),
            config: Some(ec),
            rootfs: RootFs::default(),
        },
        layers: vec![],
    }
}

#[test]
fn users_are_resolved_against_the_images_own_files() {
    let r = rootfs();
    assert_eq!(resolve_user(r.path(), "").unwrap(), (0, 0, vec![]));
    assert_eq!(resolve_user(r.path(), "www").unwrap(), (80, 80, vec![20]));
    assert_eq!(
        resolve_user(r.path(), "www:staff").unwrap(),
        (80, 20, vec![])
    );
    assert_eq!(
        resolve_user(r.path(), "1000:1000").unwrap(),
        (1000, 1000, vec![])
    );
    assert_eq!(resolve_user(r.path(), "80").unwrap(), (80, 80, vec![20]));
    assert!(resolve_user(r.path(), "nobody").is_err());
    assert!(resolve_user(r.path(), "www:nogroup").is_err());
}

#[test]
fn a_passwd_symlink_out_of_the_image_is_not_followed() {
    let r = tempfile::tempdir().unwrap();
    fs::create_dir(r.path().join("etc")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", r.path().join("etc/passwd")).unwrap();
    assert!(resolve_user(r.path(), "root").is_err());
}

#[test]
fn entrypoint_cmd_env_workdir_and_annotations_land_in_the_config() {
    let r = rootfs();
    let ec = ExecConfig {
        entrypoint: Some(vec!["/bin/sh".into(), "-c".into()]),
        cmd: Some(vec!["echo hi".into()]),
        env: Some(vec!["A=1".into()]),
        working_dir: Some("/srv".into()),
        user: Some("www".into()),
        volumes: Some([("/data".to_string(), json!({}))].into_iter().collect()),
        stop_signal: Some("SIGQUIT".into()),
        exposed_ports: Some([("80/tcp".to_string(), json!({}))].into_iter().collect()),
    };
    let base =
        json!({"process": {"args": ["sh"]}, "mounts": [{"destination": "/dev", "type": "devfs"}]});
    let c = make_config(
        base.clone(),
        &image(ec.clone(), "freebsd"),
        r.path(),
        &BundleOptions::default(),
    )
    .unwrap();
    assert_eq!(c["process"]["args"], json!(["/bin/sh", "-c", "echo hi"]));
    assert_eq!(c["process"]["env"][1], json!("A=1"));
    assert!(c["process"]["env"][0]
        .as_str()
        .unwrap()
        .starts_with("PATH="));
    assert_eq!(c["process"]["cwd"], json!("/srv"));
    assert_eq!(c["process"]["user"]["uid"], json!(80));
    assert_eq!(c["annotations"][STOP_SIGNAL_ANNOTATION], json!("SIGQUIT"));
    assert_eq!(c["annotations"][VOLUMES_ANNOTATION], json!("/data"));
    assert_eq!(
        c["annotations"][run::EXPOSED_PORTS_ANNOTATION],
        json!("80/tcp")
    );
    // The run flags: a new entrypoint drops the Cmd; -w and -u replace the image's.
    let flags = BundleOptions {
        run: RunOverrides {
            entrypoint: Some(vec!["/bin/echo".into()]),
            workdir: Some("/tmp".into()),
            user: Some("root:staff".into()),
            ..RunOverrides::default()
        },
        ..BundleOptions::default()
    };
    let f = make_config(
        base.clone(),
        &image(ec.clone(), "freebsd"),
        r.path(),
        &flags,
    )
    .unwrap();
    assert_eq!(f["process"]["args"], json!(["/bin/echo"]));
    assert_eq!(f["process"]["cwd"], json!("/tmp"));
    assert_eq!(f["process"]["user"]["uid"], json!(0));
    assert_eq!(f["process"]["user"]["gid"], json!(20));
    assert_eq!(c["mounts"].as_array().unwrap().len(), 1);
    // The host's defaults come last and see the image's resolved user.
    let opts = BundleOptions {
        command: Some(vec!["id".into()]),
        host_defaults: Some(|s| s["annotations"]["uid-seen"] = s["process"]["user"]["uid"].clone()),
        run: RunOverrides::default(),
    };
    let c = make_config(base, &image(ec, "linux"), r.path(), &opts).unwrap();
    assert_eq!(c["process"]["args"], json!(["/bin/sh", "-c", "id"]));
    assert_eq!(c["annotations"]["uid-seen"], json!(80));
    let types: Vec<&str> = c["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["devfs", "linprocfs", "linsysfs", "tmpfs"]);
}

#[test]
fn a_linux_image_gets_dev_fd_with_linrdlnk_and_a_freebsd_image_does_not() {
    let r = rootfs();
    let ec = ExecConfig {
        cmd: Some(vec!["sh".into()]),
        ..ExecConfig::default()
    };
    let base = json!({"process": {"args": ["sh"]}, "mounts": [
        {"destination": "/dev/fd", "type": "fdescfs", "source": "fdescfs", "options": []}]});
    let o = BundleOptions::default();
    let c = make_config(base.clone(), &image(ec.clone(), "linux"), r.path(), &o).unwrap();
    assert_eq!(c["mounts"][0]["options"], json!(["linrdlnk"]));
    let c = make_config(base, &image(ec, "freebsd"), r.path(), &o).unwrap();
    assert_eq!(c["mounts"][0]["options"], json!([]));
}

#[test]
fn the_linux_abi_error_names_every_module_and_the_kldload_line() {
    let e = BundleError::LinuxAbi {
        image: "debian:12".into(),
        missing: vec!["linux64".into(), "linprocfs".into()],
    }
    .to_string();
    assert!(e.contains("lacks linux64, linprocfs"), "{e}");
    assert!(e.contains("`kldload linux64 linprocfs`"), "{e}");
}

#[test]
fn an_image_without_a_command_needs_one() {
    let r = rootfs();
    let e = make_config(
        json!({}),
        &image(ExecConfig::default(), "freebsd"),
        r.path(),
        &BundleOptions::default(),
    );
    assert!(matches!(e, Err(BundleError::NoCommand { .. })));
}
