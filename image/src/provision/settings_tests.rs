//! The typed settings of provisioning: pull settings and credentials, storage drivers,
//! invented names, and `ensure_image`'s pull-when-missing.

use std::fs;

use serde_json::json;

use super::*;
use crate::oci::platform::Platform;
use crate::oci::reference::Reference;
use crate::store::Store;

fn reference(s: &str) -> Reference {
    s.parse().unwrap()
}

#[test]
fn the_platform_defaults_to_the_host_and_says_so() {
    assert_eq!(
        PullSettings::default().platform(),
        (Platform::host(), false)
    );
    let arm = Platform::new("linux", "arm64", None);
    let s = PullSettings {
        platform: Some(arm.clone()),
        ..PullSettings::default()
    };
    assert_eq!(s.platform(), (arm, true));
}

#[test]
fn creds_win_over_an_auth_file_and_a_named_auth_file_must_exist() {
    let t = tempfile::tempdir().unwrap();
    let file = t.path().join("auth.json");
    // base64("fileuser:filepass")
    fs::write(
        &file,
        json!({"auths": {"example.com": {"auth": "ZmlsZXVzZXI6ZmlsZXBhc3M="}}}).to_string(),
    )
    .unwrap();
    let r = reference("example.com/a:1");
    let from_file = PullSettings {
        authfile: Some(file.clone()),
        ..PullSettings::default()
    };
    let c = from_file.client_options(&r).unwrap().credentials.unwrap();
    assert_eq!(c.username, "fileuser");
    let flag = PullSettings {
        creds: Some("flaguser:pw".into()),
        ..from_file.clone()
    };
    let c = flag.client_options(&r).unwrap().credentials.unwrap();
    assert_eq!(c.username, "flaguser");
    let other = from_file
        .client_options(&reference("other.example/a:1"))
        .unwrap();
    assert!(other.credentials.is_none());

    let missing = PullSettings {
        authfile: Some(t.path().join("nope.json")),
        ..PullSettings::default()
    };
    let e = missing.client_options(&r).unwrap_err();
    assert!(matches!(e, ProvisionError::AuthFileMissing { .. }), "{e:?}");
    let bad = PullSettings {
        creds: Some("no-colon".into()),
        ..PullSettings::default()
    };
    assert!(matches!(
        bad.client_options(&r),
        Err(ProvisionError::CredsFlag(_))
    ));
}

#[test]
fn ensure_image_pulls_only_what_is_missing() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(&t.path().join("images")).unwrap();
    let mut announced = Vec::new();
    // Missing, and nothing listens on port 1: the pull is announced, then fails.
    let e = ensure_image(
        &store,
        "127.0.0.1:1/nobody/here:1",
        &PullSettings::default(),
        &mut |r| announced.push(r.to_string()),
    )
    .unwrap_err();
    assert!(matches!(e, ProvisionError::Registry(_)), "{e:?}");
    assert_eq!(announced, vec!["127.0.0.1:1/nobody/here:1"]);
    // Not a reference: nothing to pull, nothing announced.
    let e = ensure_image(
        &store,
        "not a reference!",
        &PullSettings::default(),
        &mut |_| panic!("no pull for an invalid reference"),
    )
    .unwrap_err();
    assert!(matches!(e, ProvisionError::Reference(_)), "{e:?}");
    // Stored: resolved without a pull.
    super::tests::add_image(&store, "example.com/a:1", "f");
    let got = ensure_image(
        &store,
        "example.com/a:1",
        &PullSettings::default(),
        &mut |_| panic!("a stored image is not pulled"),
    )
    .unwrap();
    assert!(got.pulled.is_none());
    assert_eq!(got.image.name, "example.com/a:1");
}

#[test]
fn the_driver_follows_the_dataset_unless_named() {
    let t = tempfile::tempdir().unwrap();
    let mut c = StorageConfig {
        root: t.path().join("storage"),
        driver: None,
        zfs_dataset: None,
        limits: Default::default(),
    };
    // Without a dataset: overlay where this host mounts it on the root, else dir.
    let (auto, name) = if crate::rootfs::storage::overlay_by_default(&c.root) {
        (DriverKind::Overlay, "overlay")
    } else {
        (DriverKind::Dir, "dir")
    };
    assert_eq!(c.kind(), auto);
    assert_eq!(c.open().unwrap().name(), name);
    assert!(c.root.is_dir(), "the driver makes its root");
    c.driver = Some(DriverKind::Zfs);
    assert!(matches!(c.open(), Err(ProvisionError::NoZfsDataset)));
    c.zfs_dataset = Some("pool/stockade".into());
    assert_eq!(c.kind(), DriverKind::Zfs);
    c.driver = None;
    assert_eq!(c.kind(), DriverKind::Zfs);
    c.driver = Some(DriverKind::Dir);
    assert_eq!(c.kind(), DriverKind::Dir);
}

/// Fails when delete uses the configured driver: a dir container made before overlay
/// became the default is then refused (or, without a record naming it, not found).
#[test]
fn a_container_is_removed_with_the_driver_it_was_made_with() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("storage");
    let c = StorageConfig {
        root: root.clone(),
        driver: Some(DriverKind::Overlay),
        zfs_dataset: None,
        limits: Default::default(),
    };
    std::fs::create_dir_all(root.join("provisions")).unwrap();
    // A record naming its driver.
    std::fs::write(
        root.join("provisions/new.json"),
        r#"{"id": "new", "driver": "dir", "image": "i"}"#,
    )
    .unwrap();
    assert_eq!(c.for_container("new").kind(), DriverKind::Dir);
    // A record of an older version, without one: the root filesystem's place tells.
    std::fs::write(
        root.join("provisions/old.json"),
        r#"{"id": "old", "image": "i"}"#,
    )
    .unwrap();
    std::fs::create_dir_all(root.join("containers/old")).unwrap();
    assert_eq!(c.for_container("old").kind(), DriverKind::Dir);
    std::fs::create_dir_all(root.join("overlay/containers/ov")).unwrap();
    assert_eq!(c.for_container("ov").kind(), DriverKind::Overlay);
    // Nothing known: the configuration as it was.
    assert_eq!(c.for_container("none").kind(), DriverKind::Overlay);
    assert_eq!(c.for_container("../x").kind(), DriverKind::Overlay);
    // The old record is removed with the dir driver it was detected to have.
    let driver = c.for_container("old").open().unwrap();
    assert!(crate::provision::remove_container(&root, driver.as_ref(), "old").unwrap());
    assert!(!root.join("containers/old").exists());
    assert!(!root.join("provisions/old.json").exists());
}

#[test]
fn bundle_names_are_safe_and_differ_by_path() {
    let t = tempfile::tempdir().unwrap();
    let a = bundle_name(&t.path().join("my bundle.v1")).unwrap();
    let b = bundle_name(&t.path().join("x").join("my bundle.v1")).unwrap();
    assert!(a.starts_with("bundle-my_bundle_v1-"), "{a}");
    assert_ne!(a, b);
    assert_eq!(a, bundle_name(&t.path().join("my bundle.v1")).unwrap());
    assert!(bundle_name(&t.path().join(".hidden"))
        .unwrap()
        .starts_with("bundle-_hidden-"));
    crate::rootfs::storage::check_id(&a).unwrap();
    let id = generated_id();
    assert!(
        id.starts_with("stockade-") && id.len() == "stockade-".len() + 12,
        "{id}"
    );
}
