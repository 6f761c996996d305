//! Pulls through mirrors, against loopback test servers.

use std::sync::{Arc, Mutex};

use super::client::ClientOptions;
use super::pull::{pull, Mirror, PullOptions};
use super::test_server::{response, serve};
use crate::oci::digest::Digest;
use crate::oci::platform::Platform;
use crate::oci::reference::Reference;
use crate::store::Store;

/// An image: (manifest, config, layer).
fn image() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let config =
        br#"{"os":"linux","architecture":"amd64","rootfs":{"type":"layers","diff_ids":[]}}"#
            .to_vec();
    let layer = b"not really a tar, but pull does not unpack".to_vec();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": Digest::sha256_of(&config).to_string(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": Digest::sha256_of(&layer).to_string(), "size": layer.len()}],
    });
    (serde_json::to_vec(&manifest).unwrap(), config, layer)
}

/// A registry serving `image()` at any repository; with `tamper`, the layer's bytes are
/// changed (same length), as a hostile mirror might.
fn registry(tamper: bool) -> (String, Arc<Mutex<Vec<String>>>) {
    let (manifest, config, mut layer) = image();
    if tamper {
        layer[0] ^= 0xff;
    }
    let layer_digest = Digest::sha256_of(&image().2).to_string();
    let config_digest = Digest::sha256_of(&config).to_string();
    serve(move |head| {
        let line = head.lines().next().unwrap_or("");
        let body: &[u8] = if line.contains("/manifests/") {
            let ct = "application/vnd.oci.image.manifest.v1+json".to_string();
            return (response("200 OK", &[("Content-Type", ct)], &manifest), None);
        } else if line.contains(&layer_digest) {
            &layer
        } else if line.contains(&config_digest) {
            &config
        } else {
            return (response("404 Not Found", &[], b""), None);
        };
        (response("200 OK", &[], body), None)
    })
}

/// A mirror that answers everything with a server error.
fn broken() -> (String, Arc<Mutex<Vec<String>>>) {
    serve(|_| (response("500 Internal Server Error", &[], b"down"), None))
}

fn options(mirrors: &[&str], reference: &Reference) -> PullOptions {
    PullOptions {
        client: ClientOptions::default(),
        platform: Platform::host(),
        platform_explicit: false,
        jobs: 2,
        progress: false,
        mirrors: mirrors
            .iter()
            .map(|m| Mirror {
                reference: super::mirrors::on_mirror(reference, m).unwrap(),
                client: ClientOptions::default(),
            })
            .collect(),
    }
}

#[test]
fn mirrors_are_tried_in_order_before_the_registry() {
    let (origin, origin_seen) = registry(false);
    let (down, down_seen) = broken();
    let (good, good_seen) = registry(false);
    let reference: Reference = format!("{origin}/test/img:v1").parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let report = pull(&store, &reference, &options(&[&down, &good], &reference)).unwrap();
    // Named as asked, not after the mirror that served it.
    assert_eq!(report.name, reference.to_string());
    assert!(store.resolve(&reference.to_string()).is_ok());
    assert!(!down_seen.lock().unwrap().is_empty());
    let good_seen = good_seen.lock().unwrap();
    // The same repository path on the mirror.
    assert!(
        good_seen
            .iter()
            .any(|h| h.starts_with("GET /v2/test/img/manifests/v1")),
        "{good_seen:?}"
    );
    assert!(origin_seen.lock().unwrap().is_empty());
}

#[test]
fn a_mirror_serving_other_content_is_refused_and_the_registry_used() {
    let (origin, origin_seen) = registry(false);
    let (hostile, hostile_seen) = registry(true);
    let reference: Reference = format!("{origin}/test/img:v1").parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let report = pull(&store, &reference, &options(&[&hostile], &reference)).unwrap();
    assert_eq!(report.name, reference.to_string());
    assert!(!hostile_seen.lock().unwrap().is_empty());
    assert!(!origin_seen.lock().unwrap().is_empty());
    let layer_digest = Digest::sha256_of(&image().2);
    assert_eq!(
        std::fs::read(store.layout().blob_path(&layer_digest)).unwrap(),
        image().2
    );
}

#[test]
fn when_every_source_fails_the_registry_error_is_returned() {
    let (down, _) = broken();
    let (origin, _) = broken();
    let reference: Reference = format!("{origin}/test/img:v1").parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let e = pull(&store, &reference, &options(&[&down], &reference)).unwrap_err();
    assert!(e.to_string().contains(&origin), "{e}");
}
