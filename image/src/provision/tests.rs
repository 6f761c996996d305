//! Provisioning: stores sharing a storage root, `run --image` records, stale temporaries.

use std::fs;

use serde_json::json;

use super::record::record_path;
use super::*;
use crate::bundle::{self, BundleError, BundleOptions};
use crate::oci::digest::Digest;
use crate::oci::manifest::Descriptor;
use crate::oci::media::{OCI_CONFIG, OCI_INDEX, OCI_LAYER_TAR, OCI_MANIFEST};
use crate::oci::platform::Platform;
use crate::rootfs::storage::dir::DirDriver;
use crate::rootfs::storage::stale::lock_dir;
use crate::rootfs::storage::{chain_ids, users, StorageDriver, StorageError};
use crate::store::Store;

/// Stores `name` in `store`: one plain-tar layer holding the file `file`.
pub(super) fn add_image(store: &Store, name: &str, file: &str) {
    let desc = add_manifest(store, file);
    store.set_ref(name, &desc).unwrap();
}

/// Stores a manifest of one plain-tar layer holding the file `file`; returns its descriptor.
fn add_manifest(store: &Store, file: &str) -> Descriptor {
    add_manifest_with(store, file, json!({"Cmd": ["/bin/true"]}))
}

/// As [`add_manifest`], with `config` as the image config's `config` object.
pub(super) fn add_manifest_with(
    store: &Store,
    file: &str,
    config: serde_json::Value,
) -> Descriptor {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(1);
    b.append_data(&mut h, file, &b"x"[..]).unwrap();
    let tar = b.into_inner().unwrap();
    let layer = store.put_bytes(&tar, None).unwrap();
    let config = json!({
        "os": std::env::consts::OS,
        "architecture": "amd64",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [layer.to_string()]},
    })
    .to_string();
    let cd = store.put_bytes(config.as_bytes(), None).unwrap();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": cd.to_string(), "size": config.len()},
        "layers": [{"mediaType": OCI_LAYER_TAR, "digest": layer.to_string(), "size": tar.len()}],
    })
    .to_string();
    let md = store.put_bytes(manifest.as_bytes(), None).unwrap();
    Descriptor::new(OCI_MANIFEST, md, manifest.len() as u64)
}

/// A temporary directory holding a storage root (with the dir driver) and an image store.
pub(super) fn env() -> (tempfile::TempDir, std::path::PathBuf, DirDriver, Store) {
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("storage");
    let driver = DirDriver::new(&storage).unwrap();
    let store = Store::open(&dir.path().join("images")).unwrap();
    (dir, storage, driver, store)
}

/// A request for a bundle over an empty base config.
pub(super) fn request(id: &str) -> BundleRequest {
    BundleRequest {
        id: id.into(),
        base: json!({}),
        options: BundleOptions::default(),
        resources: None,
    }
}

fn chain_of(store: &Store, name: &str) -> Digest {
    let r = bundle::resolve(store, name, &Platform::host()).unwrap();
    let diff: Vec<_> = r.layers.iter().map(|l| l.diff_id.clone()).collect();
    chain_ids(&diff).pop().unwrap()
}

#[test]
fn prune_of_either_store_keeps_the_chains_of_the_other() {
    let t = tempfile::tempdir().unwrap();
    let storage = t.path().join("storage");
    let driver = DirDriver::new(&storage).unwrap();
    let a = Store::open(&t.path().join("a")).unwrap();
    let b = Store::open(&t.path().join("b")).unwrap();
    add_image(&a, "example.com/a:1", "only-in-a");
    add_image(&b, "example.com/b:1", "only-in-b");
    let pa = Provisioner::new(&a, &storage, &driver).unwrap();
    let pb = Provisioner::new(&b, &storage, &driver).unwrap();
    let ra = bundle::resolve(&a, "example.com/a:1", &Platform::host()).unwrap();
    let rb = bundle::resolve(&b, "example.com/b:1", &Platform::host()).unwrap();
    pa.prepare(&ra).unwrap();
    pb.prepare(&rb).unwrap();
    let (ca, cb) = (
        chain_of(&a, "example.com/a:1"),
        chain_of(&b, "example.com/b:1"),
    );
    assert_ne!(ca, cb);

    assert_eq!(pa.prune().unwrap(), vec![]);
    assert_eq!(pb.prune().unwrap(), vec![]);
    assert!(driver.chain_path(&ca).is_dir() && driver.chain_path(&cb).is_dir());

    // Once b no longer has its image, a's prune may take b's chain, and only that.
    b.remove_ref("example.com/b:1").unwrap();
    assert_eq!(pa.prune().unwrap(), vec![cb.clone()]);
    assert!(driver.chain_path(&ca).is_dir());

    // A store that vanished drops out of the list.
    add_image(&b, "example.com/b:1", "only-in-b");
    pb.prepare(&rb).unwrap();
    drop(pb);
    drop(b);
    fs::remove_dir_all(t.path().join("b")).unwrap();
    assert_eq!(pa.prune().unwrap(), vec![cb]);
    assert_eq!(users::read(&storage).unwrap().len(), 1);
}

#[test]
fn prune_keeps_the_chains_of_every_platform_of_an_index() {
    let (_dir, storage, driver, store) = env();
    let other = Platform::new("linux", "arm64", Some("v8"));
    let mut here = add_manifest(&store, "for-this-host");
    here.platform = Some(Platform::host());
    let mut there = add_manifest(&store, "for-arm64");
    there.platform = Some(other.clone());
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [here, there],
    })
    .to_string();
    let id = store.put_bytes(index.as_bytes(), None).unwrap();
    store
        .set_ref(
            "example.com/multi:1",
            &Descriptor::new(OCI_INDEX, id, index.len() as u64),
        )
        .unwrap();
    let p = Provisioner::new(&store, &storage, &driver).unwrap();
    for platform in [Platform::host(), other] {
        let r = bundle::resolve(&store, "example.com/multi:1", &platform).unwrap();
        p.prepare(&r).unwrap();
    }
    assert_eq!(fs::read_dir(storage.join("chains")).unwrap().count(), 2);
    assert_eq!(
        p.prune().unwrap(),
        vec![],
        "run --platform's chain stays too"
    );
}

#[test]
fn a_run_bundle_is_recorded_first_and_removed_whole() {
    let (_dir, storage, driver, store) = env();
    add_image(&store, "example.com/a:1", "f");
    let p = Provisioner::new(&store, &storage, &driver).unwrap();
    let img = bundle::resolve(&store, "example.com/a:1", &Platform::host()).unwrap();
    let made = p.run_bundle(&img, request("c1"), false).unwrap();
    assert!(made.bundle.join("config.json").is_file());
    assert!(made.rootfs.join("f").is_file());
    assert!(is_provisioned(&storage, "c1"));
    let again = p.run_bundle(&img, request("c1"), true);
    assert!(
        matches!(again, Err(ProvisionError::Exists { .. })),
        "{again:?}"
    );
    // --rm of the second run must not take what the first one made.
    assert!(made.bundle.join("config.json").is_file() && made.rootfs.is_dir());
    assert!(is_provisioned(&storage, "c1"));
    let written: serde_json::Value =
        serde_json::from_slice(&fs::read(made.bundle.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        written, made.config,
        "the config returned is the one written"
    );

    assert!(remove_container(&storage, &driver, "c1").unwrap());
    assert!(!made.bundle.exists() && !made.rootfs.exists());
    assert!(!is_provisioned(&storage, "c1"));
    assert!(!remove_container(&storage, &driver, "c1").unwrap());
    p.run_bundle(&img, request("c1"), false).unwrap();

    // An id that is no name makes nothing, not even a record.
    let e = p.run_bundle(&img, request("../x"), true).unwrap_err();
    assert!(matches!(e, ProvisionError::Storage(_)), "{e:?}");
    assert!(!storage.join(PROVISIONS_DIR).join("../x.json").exists());
    assert!(!is_provisioned(&storage, "../x"));
}

#[test]
fn what_a_crash_left_after_the_record_is_removed() {
    let t = tempfile::tempdir().unwrap();
    let storage = t.path().join("storage");
    let driver = DirDriver::new(&storage).unwrap();
    // A crash right after the record, with the rootfs copy half done: an empty record
    // (cut short) and a partial tree.
    fs::create_dir_all(storage.join(PROVISIONS_DIR)).unwrap();
    fs::write(record_path(&storage, "c2"), b"").unwrap();
    let rootfs = driver.rootfs_path("c2").unwrap();
    fs::create_dir_all(rootfs.join("etc/half")).unwrap();
    fs::create_dir_all(storage.join(BUNDLES_DIR).join("c2")).unwrap();
    assert!(remove_container(&storage, &driver, "c2").unwrap());
    assert!(!rootfs.exists());
    assert!(!storage.join(BUNDLES_DIR).join("c2").exists());
    assert!(!is_provisioned(&storage, "c2"));
}

/// Fails with the record's temporary left: a run killed while writing its record left
/// `.ID.json.PID.tmp` and no record, and `delete --force ID` took nothing (crash-image.sh).
#[test]
fn removal_takes_a_killed_writers_record_temporary() {
    let t = tempfile::tempdir().unwrap();
    let storage = t.path().join("storage");
    let driver = DirDriver::new(&storage).unwrap();
    let dir = storage.join(PROVISIONS_DIR);
    fs::create_dir_all(&dir).unwrap();
    // 99999999 is above the kernel's pid_max: no process has it.
    let dead = dir.join(".c3.json.99999999.tmp");
    let live = dir.join(format!(".c3.json.{}.tmp", std::process::id()));
    let other = dir.join(".c33.json.99999999.tmp");
    for f in [&dead, &live, &other] {
        fs::write(f, b"{").unwrap();
    }
    assert!(!remove_container(&storage, &driver, "c3").unwrap());
    assert!(!dead.exists());
    assert!(live.exists() && other.exists());
}

#[test]
fn prune_removes_abandoned_unpacks_but_not_live_ones() {
    let (_dir, storage, driver, store) = env();
    let p = Provisioner::new(&store, &storage, &driver).unwrap();
    let dead = storage.join("chains/.tmp-aaaa-1");
    let live = storage.join("chains/.tmp-bbbb-2");
    fs::create_dir_all(dead.join("usr/bin")).unwrap();
    fs::create_dir_all(live.join("usr/bin")).unwrap();
    let held = lock_dir(&live).unwrap();
    p.prune().unwrap();
    assert!(!dead.exists(), "nobody holds it: a crash left it");
    assert!(live.exists(), "its writer is alive");
    drop(held);
    p.prune().unwrap();
    assert!(!live.exists());
}

#[test]
fn prune_removes_old_record_temporaries_and_keeps_fresh_ones() {
    let (_dir, storage, driver, store) = env();
    let p = Provisioner::new(&store, &storage, &driver).unwrap();
    fs::create_dir_all(storage.join(PROVISIONS_DIR)).unwrap();
    let old = storage.join(PROVISIONS_DIR).join(".c1.json.77.tmp");
    let old_roots = storage.join(".image-roots.json.78.tmp");
    let fresh = storage.join(PROVISIONS_DIR).join(".c2.json.79.tmp");
    for f in [&old, &old_roots, &fresh] {
        fs::write(f, b"{").unwrap();
    }
    let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    for f in [&old, &old_roots] {
        fs::File::options()
            .write(true)
            .open(f)
            .unwrap()
            .set_modified(two_hours_ago)
            .unwrap();
    }
    p.prune().unwrap();
    assert!(!old.exists() && !old_roots.exists());
    assert!(fresh.exists(), "a write may be in progress");
}

#[test]
fn a_run_bundle_that_fails_midway_is_removed_with_rm_and_left_for_delete_without() {
    let (_dir, storage, driver, store) = env();
    // No Entrypoint or Cmd: the config fails after the record and the root filesystem.
    let desc = add_manifest_with(&store, "f", json!({}));
    store.set_ref("example.com/nocmd:1", &desc).unwrap();
    let p = Provisioner::new(&store, &storage, &driver).unwrap();
    let img = bundle::resolve(&store, "example.com/nocmd:1", &Platform::host()).unwrap();

    let e = p.run_bundle(&img, request("half"), false).unwrap_err();
    assert!(
        matches!(e, ProvisionError::Bundle(BundleError::NoCommand { .. })),
        "{e:?}"
    );
    assert!(is_provisioned(&storage, "half"), "left for `delete`");
    assert!(!driver.rootfs_path("half").unwrap().exists());
    assert!(p.remove_container("half").unwrap());
    assert!(!is_provisioned(&storage, "half"));

    let e = p.run_bundle(&img, request("gone"), true).unwrap_err();
    assert!(matches!(e, ProvisionError::Bundle(_)), "{e:?}");
    assert!(
        !is_provisioned(&storage, "gone"),
        "--rm took the record too"
    );
    assert!(!storage.join(BUNDLES_DIR).join("gone").exists());
    assert!(!driver.rootfs_path("gone").unwrap().exists());
}

#[test]
fn a_run_bundle_never_takes_a_root_filesystem_bundle_create_made() {
    let (dir, storage, driver, store) = env();
    add_image(&store, "example.com/a:1", "f");
    let p = Provisioner::new(&store, &storage, &driver).unwrap();
    let img = bundle::resolve(&store, "example.com/a:1", &Platform::host()).unwrap();
    let theirs = p
        .create_bundle(&img, &dir.path().join("b"), request("taken"))
        .unwrap();
    for rm in [true, false] {
        let e = p.run_bundle(&img, request("taken"), rm).unwrap_err();
        assert!(
            matches!(e, ProvisionError::Storage(StorageError::Exists { .. })),
            "{e:?}"
        );
        assert!(
            !is_provisioned(&storage, "taken"),
            "no record: delete leaves it"
        );
        assert!(theirs.rootfs.join("f").is_file(), "--rm={rm} kept it");
    }
}
