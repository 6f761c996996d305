use super::*;
use std::io::Write;

use crate::oci::digest::Algorithm;
use crate::oci::media::OCI_MANIFEST;

fn blob_names(store: &Store) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(store.root().join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn open_creates_a_valid_empty_layout() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert!(store.images().unwrap().is_empty());
    assert!(Layout::open(dir.path()).is_ok());
    // Opening again keeps what is there.
    let d = store.put_bytes(b"x", None).unwrap();
    let again = Store::open(dir.path()).unwrap();
    assert_eq!(again.blob_size(&d), Some(1));
}

#[test]
fn a_verified_blob_lands_under_its_digest() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let d = Digest::sha256_of(b"hello");
    store.put_bytes(b"hello", Some((&d, 5))).unwrap();
    assert_eq!(fs::read(store.layout().blob_path(&d)).unwrap(), b"hello");
    assert_eq!(store.temporaries().unwrap(), 0);
}

#[test]
fn wrong_digest_or_size_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let d = Digest::sha256_of(b"hello");
    let err = store.put_bytes(b"hellO", Some((&d, 5))).unwrap_err();
    assert!(
        matches!(err, StoreError::Verify(VerifyError::Digest { .. })),
        "{err}"
    );
    let err = store.put_bytes(b"hell", Some((&d, 5))).unwrap_err();
    assert!(
        matches!(err, StoreError::Verify(VerifyError::Size { .. })),
        "{err}"
    );
    assert!(blob_names(&store).is_empty());
    assert_eq!(store.temporaries().unwrap(), 0);
}

#[test]
fn more_data_than_promised_is_refused_while_writing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let desc = Descriptor::new("x", Digest::sha256_of(b"hell"), 4);
    let err = copy_blob(&store, &mut &b"hello"[..], &desc).unwrap_err();
    assert!(
        matches!(err, StoreError::Verify(VerifyError::Overrun { .. })),
        "{err}"
    );
    assert!(blob_names(&store).is_empty());
    assert_eq!(store.temporaries().unwrap(), 0);
}

#[test]
fn an_abandoned_writer_removes_its_temporary_and_reset_starts_over() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    {
        let mut w = store.blob_writer(Algorithm::Sha256).unwrap();
        w.write_all(b"partial").unwrap();
        assert_eq!(store.temporaries().unwrap(), 1);
    }
    assert_eq!(store.temporaries().unwrap(), 0);
    let mut w = store.blob_writer(Algorithm::Sha256).unwrap();
    w.write_all(b"garbage").unwrap();
    w.reset().unwrap();
    w.write_all(b"good").unwrap();
    let (d, n) = w.commit(None).unwrap();
    assert_eq!((d, n), (Digest::sha256_of(b"good"), 4));
}

#[test]
fn refs_replace_by_name_resolve_by_reference_and_prune_keeps_reachable_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let config = store.put_bytes(b"{}", None).unwrap();
    let layer = store.put_bytes(b"layer", None).unwrap();
    let orphan = store.put_bytes(b"orphan", None).unwrap();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"c","digest":"{config}","size":2}},"layers":[{{"mediaType":"l","digest":"{layer}","size":5}}]}}"#
    );
    let md = store.put_bytes(manifest.as_bytes(), None).unwrap();
    let desc = Descriptor::new(OCI_MANIFEST, md.clone(), manifest.len() as u64);
    store
        .set_ref("docker.io/library/alpine:latest", &desc)
        .unwrap();
    store
        .set_ref("docker.io/library/alpine:latest", &desc)
        .unwrap();
    assert_eq!(store.images().unwrap().len(), 1, "same name replaces");
    assert_eq!(store.resolve("alpine").unwrap().descriptor.digest, md);
    assert_eq!(
        store.resolve(&md.to_string()).unwrap().name,
        "docker.io/library/alpine:latest"
    );

    let report = store.prune().unwrap();
    assert_eq!(report.removed, vec![(orphan, 6)]);
    assert_eq!(blob_names(&store).len(), 3);

    store.remove_ref("alpine").unwrap();
    assert!(matches!(
        store.resolve("alpine"),
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(store.prune().unwrap().removed.len(), 3);
    assert!(blob_names(&store).is_empty());
}

#[test]
fn prune_refuses_to_run_when_a_named_manifest_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let keep = store.put_bytes(b"keep", None).unwrap();
    let desc = Descriptor::new(OCI_MANIFEST, Digest::sha256_of(b"absent"), 6);
    store.set_ref("x/y:z", &desc).unwrap();
    assert!(store.prune().is_err());
    assert!(store.blob_size(&keep).is_some());
}

#[test]
fn ref_names_follow_the_layout_grammar() {
    for ok in [
        "latest",
        "docker.io/library/alpine:3.19",
        "x/y@sha256:abc",
        "a--b",
    ] {
        assert!(valid_ref_name(ok), "{ok}");
    }
    for bad in ["", "a//b", "-a", "a:", "a b", "a..b"] {
        assert!(!valid_ref_name(bad), "{bad}");
    }
}
