use super::*;

fn state(id: &ContainerId) -> StoredState {
    StoredState {
        oci_version: "1.3.0".into(),
        id: id.clone(),
        status: Status::Created,
        pid: Some(42),
        pid_start_time: Some(7),
        bundle: "/b".into(),
        rootfs: "/b/rootfs".into(),
        created: "2026-01-01T00:00:00Z".into(),
        owner: "root".into(),
        annotations: Default::default(),
        resources: Resources::default(),
        limits: Default::default(),
    }
}

#[test]
fn create_write_read_remove_round_trip() {
    let d = tempfile::tempdir().unwrap();
    let store = StateStore::open(&d.path().join("run")).unwrap();
    let id = ContainerId::parse("c1").unwrap();
    let lock = store.create(&id).unwrap();
    store.write(&state(&id)).unwrap();
    assert_eq!(store.read(&id).unwrap(), state(&id));
    assert_eq!(store.ids().unwrap(), vec![id.clone()]);
    drop(lock);
    let _l = store.lock(&id).unwrap();
    store.remove(&id).unwrap();
    assert!(matches!(store.read(&id), Err(StateError::NotFound(_))));
}

#[test]
fn duplicate_create_fails_and_leaves_the_first() {
    let d = tempfile::tempdir().unwrap();
    let store = StateStore::open(d.path()).unwrap();
    let id = ContainerId::parse("dup").unwrap();
    let _l = store.create(&id).unwrap();
    store.write(&state(&id)).unwrap();
    let err = store.create(&id).unwrap_err().to_string();
    assert_eq!(err, "container dup already exists");
    assert!(store.read(&id).is_ok());
}

#[test]
fn unknown_ids_do_not_exist() {
    let d = tempfile::tempdir().unwrap();
    let store = StateStore::open(d.path()).unwrap();
    let id = ContainerId::parse("ghost").unwrap();
    assert_eq!(
        store.lock(&id).unwrap_err().to_string(),
        "container ghost does not exist"
    );
    assert_eq!(
        store.read(&id).unwrap_err().to_string(),
        "container ghost does not exist"
    );
}

#[test]
fn lock_serialises_commands_on_one_id() {
    let d = tempfile::tempdir().unwrap();
    let store = StateStore::open(d.path()).unwrap();
    let id = ContainerId::parse("l").unwrap();
    let first = store.create(&id).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let s2 = store.clone();
    let id2 = id.clone();
    let t = std::thread::spawn(move || {
        let _second = s2.lock(&id2).unwrap();
        tx.send(()).unwrap();
    });
    // The second lock must not be granted while the first is held.
    assert!(rx
        .recv_timeout(std::time::Duration::from_millis(200))
        .is_err());
    drop(first);
    rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
    t.join().unwrap();
}

#[test]
fn a_lock_on_a_deleted_container_reports_it_gone() {
    let d = tempfile::tempdir().unwrap();
    let store = StateStore::open(d.path()).unwrap();
    let id = ContainerId::parse("gone").unwrap();
    let first = store.create(&id).unwrap();
    let s2 = store.clone();
    let id2 = id.clone();
    let t = std::thread::spawn(move || s2.lock(&id2).map(|_| ()));
    std::thread::sleep(std::time::Duration::from_millis(100));
    store.remove(&id).unwrap();
    drop(first);
    let r = t.join().unwrap();
    assert!(matches!(r, Err(StateError::NotFound(_))), "{r:?}");
}

#[test]
fn a_lock_held_too_long_fails_naming_the_holder() {
    let d = tempfile::tempdir().unwrap();
    let store = StateStore::open(d.path()).unwrap();
    let id = ContainerId::parse("busy").unwrap();
    let _held = store.create(&id).unwrap();
    // flock conflicts between descriptors, so a second acquire in this process waits too.
    let err = super::lock::StateLock::acquire_within(
        &store.dir(&id),
        &id,
        std::time::Duration::from_millis(50),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("container busy is busy"), "{err}");
    assert!(
        err.contains(&format!("(pid {})", std::process::id())),
        "{err}"
    );
}

#[test]
fn a_directory_without_its_lock_file_can_still_be_locked_and_removed() {
    let d = tempfile::tempdir().unwrap();
    let store = StateStore::open(d.path()).unwrap();
    let id = ContainerId::parse("half").unwrap();
    // What a create killed between mkdir and opening the lock leaves.
    std::fs::create_dir(store.dir(&id)).unwrap();
    let _l = store.lock(&id).unwrap();
    store.remove(&id).unwrap();
    assert!(!store.dir(&id).exists());
}

fn derived() -> Derived {
    let doc = serde_json::json!({
        "ociVersion": "1.3.0",
        "root": {"path": "rootfs"},
        "process": {"args": ["/bin/true"], "cwd": "/"},
        "hooks": {"poststop": [{"path": "/bin/stop"}]}
    });
    let cfg = crate::config::ContainerConfig::from_value(doc, std::path::Path::new("/b")).unwrap();
    Derived::from_config(&cfg).unwrap()
}

#[test]
fn the_derived_record_round_trips_through_the_state_directory() {
    let d = tempfile::tempdir().unwrap();
    let store = StateStore::open(d.path()).unwrap();
    let id = ContainerId::parse("derived").unwrap();
    let _l = store.create(&id).unwrap();
    store.write_derived(&id, &derived()).unwrap();
    assert_eq!(store.read_derived(&id).unwrap(), derived());
    assert!(
        !store.dir(&id).join(".derived.json.tmp").exists(),
        "the temporary file is renamed over"
    );
}

#[test]
fn a_missing_or_corrupt_derived_record_is_a_clear_error() {
    let d = tempfile::tempdir().unwrap();
    let store = StateStore::open(d.path()).unwrap();
    let id = ContainerId::parse("nod").unwrap();
    let _l = store.create(&id).unwrap();
    let err = store.read_derived(&id).unwrap_err();
    assert!(matches!(err, StateError::NoDerived { .. }), "{err}");
    assert!(err.to_string().contains("has no derived.json"), "{err}");

    let file = store.dir(&id).join(DERIVED_FILE);
    std::fs::write(&file, b"{\"version\": 1, \"process\": 7}").unwrap();
    let err = store.read_derived(&id).unwrap_err();
    assert!(matches!(err, StateError::Corrupt { .. }), "{err}");
    assert!(
        err.to_string().contains("derived.json: corrupt state"),
        "{err}"
    );

    std::fs::write(&file, b"not json").unwrap();
    assert!(matches!(
        store.read_derived(&id),
        Err(StateError::Corrupt { .. })
    ));

    let mut v = serde_json::to_value(derived()).unwrap();
    v["version"] = 99.into();
    std::fs::write(&file, serde_json::to_vec(&v).unwrap()).unwrap();
    let err = store.read_derived(&id).unwrap_err();
    assert!(
        matches!(err, StateError::DerivedVersion { found: 99, .. }),
        "{err}"
    );
}
