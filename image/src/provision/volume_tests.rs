//! Volumes of `run --image`: named ones made once and kept, anonymous ones in the bundle.

use std::fs;

use serde_json::json;

use super::tests::{add_manifest_with, env, request};
use super::volumes::VOLUMES_DIR;
use super::*;
use crate::bundle::{self, MountRequest, MountSource};
use crate::oci::platform::Platform;

fn mount(source: MountSource, dest: &str) -> MountRequest {
    MountRequest {
        source,
        destination: dest.into(),
        readonly: false,
        options: vec![],
    }
}

#[test]
fn named_volumes_outlive_the_container_and_image_volumes_go_with_it() {
    let (_dir, storage, driver, store) = env();
    let d = add_manifest_with(
        &store,
        "f",
        json!({"Cmd": ["/bin/true"], "Volumes": {"/var/db": {}, "/cache": {}}}),
    );
    store.set_ref("example.com/v:1", &d).unwrap();
    let p = Provisioner::new(&store, &storage, &driver).unwrap();
    let img = bundle::resolve(&store, "example.com/v:1", &Platform::host()).unwrap();
    let mut req = request("v1");
    req.options.run.mounts = vec![
        mount(MountSource::Volume("data".into()), "/data"),
        // The caller's mount at an image Volume replaces its anonymous volume.
        mount(MountSource::Tmpfs, "/cache"),
    ];
    let made = p.run_bundle(&img, req, false).unwrap();
    let named = storage.join(VOLUMES_DIR).join("data");
    assert!(named.is_dir());
    // After whatever mounts the base and the image's os bring.
    let all = made.config["mounts"].as_array().unwrap();
    let mounts = &all[all.len() - 3..];
    let dests: Vec<&str> = mounts
        .iter()
        .map(|m| m["destination"].as_str().unwrap())
        .collect();
    assert_eq!(dests, ["/data", "/cache", "/var/db"], "{mounts:?}");
    assert_eq!(mounts[0]["source"], json!(named));
    let anon = std::path::PathBuf::from(mounts[2]["source"].as_str().unwrap());
    assert!(anon.starts_with(&made.bundle) && anon.is_dir(), "{anon:?}");
    fs::write(named.join("kept"), "1").unwrap();

    assert!(remove_container(&storage, &driver, "v1").unwrap());
    assert!(!anon.exists(), "the anonymous volume went with the bundle");
    assert!(named.join("kept").is_file(), "the named volume stays");
    // Reused by the next container under the same name.
    let mut req = request("v1");
    req.options.run.mounts = vec![mount(MountSource::Volume("data".into()), "/d")];
    let again = p.run_bundle(&img, req, true).unwrap();
    let d = again.config["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["destination"] == "/d")
        .cloned();
    assert_eq!(d.unwrap()["source"], json!(named));
}

#[test]
fn bad_volumes_are_refused_before_anything_is_mounted() {
    let (dir, storage, driver, store) = env();
    let d = add_manifest_with(
        &store,
        "f",
        json!({"Cmd": ["/bin/true"], "Volumes": {"/../../etc": {}}}),
    );
    store.set_ref("example.com/bad:1", &d).unwrap();
    super::tests::add_image(&store, "example.com/ok:1", "f");
    let p = Provisioner::new(&store, &storage, &driver).unwrap();
    let bad = bundle::resolve(&store, "example.com/bad:1", &Platform::host()).unwrap();
    let e = p.run_bundle(&bad, request("b1"), true).unwrap_err();
    assert!(e.to_string().contains("Volumes entry"), "{e}");
    assert!(
        !is_provisioned(&storage, "b1"),
        "--rm removed what was made"
    );

    let ok = bundle::resolve(&store, "example.com/ok:1", &Platform::host()).unwrap();
    let cases = [
        mount(MountSource::Host(dir.path().join("missing")), "/m"),
        mount(MountSource::Volume("../up".into()), "/m"),
        mount(MountSource::Tmpfs, "relative"),
    ];
    for m in cases {
        let mut req = request("b2");
        req.options.run.mounts = vec![m.clone()];
        assert!(p.run_bundle(&ok, req, true).is_err(), "{m:?}");
        assert!(!is_provisioned(&storage, "b2"));
    }
    assert!(!storage.join("up").exists());
    // A volume name that is a symlink is not followed.
    fs::create_dir_all(storage.join(VOLUMES_DIR)).unwrap();
    std::os::unix::fs::symlink("/etc", storage.join(VOLUMES_DIR).join("ln")).unwrap();
    let mut req = request("b3");
    req.options.run.mounts = vec![mount(MountSource::Volume("ln".into()), "/m")];
    assert!(p.run_bundle(&ok, req, true).is_err());
}
