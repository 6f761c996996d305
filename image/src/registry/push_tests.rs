use super::*;
use std::sync::Arc;

use crate::oci::digest::Digest;
use crate::oci::media;
use crate::registry::test_server::{response, serve};

/// A store holding one image, `SRC`, with a config and one layer of `layer` bytes.
fn store_with_image(dir: &std::path::Path, name: &str, layer: &[u8]) -> (Store, Descriptor) {
    let store = Store::open(dir).unwrap();
    let config = br#"{"architecture":"amd64","os":"freebsd"}"#;
    let config_d = store.put_bytes(config, None).unwrap();
    let layer_d = store.put_bytes(layer, None).unwrap();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "config": {"mediaType": media::OCI_CONFIG, "digest": config_d.to_string(), "size": config.len()},
        "layers": [{"mediaType": media::OCI_LAYER_TAR, "digest": layer_d.to_string(), "size": layer.len()}],
    });
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let digest = store.put_bytes(&bytes, None).unwrap();
    let desc = Descriptor::new(media::OCI_MANIFEST, digest, bytes.len() as u64);
    store.set_ref(name, &desc).unwrap();
    (store, desc)
}

/// The `digest=` query value of a request line, decoded.
fn digest_param(head: &str) -> Option<String> {
    let line = head.lines().next()?;
    let q = line.split("digest=").nth(1)?.split([' ', '&']).next()?;
    Some(q.replace("%3A", ":"))
}

/// A fake registry: the config blob exists, everything else is uploaded; upload sessions
/// hand out relative locations whose `_state` counts the requests.
fn fake_registry(existing: Digest, mountable: Option<Digest>) -> (String, Arc<Mutex<Vec<String>>>) {
    serve(move |head| {
        let line = head.lines().next().unwrap_or("").to_string();
        let mut parts = line.split(' ');
        let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let ok = |status: &str, headers: &[(&str, String)]| (response(status, headers, b""), None);
        match method {
            "HEAD" if path.ends_with(&existing.to_string()) => ok("200 OK", &[]),
            "HEAD" => ok("404 Not Found", &[]),
            "POST" => match &mountable {
                Some(d)
                    if path.contains(&format!("mount={}", d.to_string().replace(':', "%3A"))) =>
                {
                    ok("201 Created", &[])
                }
                _ => ok(
                    "202 Accepted",
                    &[("Location", "/v2/dst/app/blobs/uploads/u1?_state=0".into())],
                ),
            },
            "PATCH" => {
                let n: u32 = path.rsplit('=').next().unwrap_or("0").parse().unwrap_or(0);
                let next = format!("/v2/dst/app/blobs/uploads/u1?_state={}", n + 1);
                ok("202 Accepted", &[("Location", next)])
            }
            "PUT" if path.contains("/blobs/uploads/") => {
                let d = digest_param(head).unwrap_or_default();
                ok("201 Created", &[("Docker-Content-Digest", d)])
            }
            "PUT" => ok("201 Created", &[]),
            "DELETE" => ok("204 No Content", &[]),
            _ => ok("400 Bad Request", &[]),
        }
    })
}

fn requests(seen: &Mutex<Vec<String>>, start: &str) -> Vec<String> {
    seen.lock()
        .unwrap()
        .iter()
        .filter(|h| h.starts_with(start))
        .cloned()
        .collect()
}

#[test]
fn push_checks_uploads_in_chunks_and_puts_the_manifest_by_tag() {
    let dir = tempfile::tempdir().unwrap();
    let layer: Vec<u8> = (0..2500u32).map(|i| b'a' + (i % 26) as u8).collect();
    let (store, desc) = store_with_image(dir.path(), "example.org/src/app:v1", &layer);
    let (_, parsed) = store.read_manifest(&desc).unwrap();
    let Parsed::Image(m) = parsed else { panic!() };
    let (addr, seen) = fake_registry(m.config.digest.clone(), None);
    let dest: Reference = format!("{addr}/dst/app:v2").parse().unwrap();
    let opts = PushOptions {
        chunk_size: 1000,
        jobs: 1,
        ..PushOptions::default()
    };
    let report = push(&store, "example.org/src/app:v1", &dest, &opts).unwrap();
    assert_eq!(report.descriptor.digest, desc.digest);
    assert_eq!((report.uploaded, report.existed, report.mounted), (1, 1, 0));
    assert_eq!(report.uploaded_bytes, 2500);

    let patches = requests(&seen, "PATCH ");
    let ranges: Vec<String> = patches
        .iter()
        .map(|h| {
            h.lines()
                .find_map(|l| {
                    l.strip_prefix("content-range: ")
                        .or(l.strip_prefix("Content-Range: "))
                })
                .unwrap_or("?")
                .to_string()
        })
        .collect();
    assert_eq!(ranges, ["0-999", "1000-1999", "2000-2499"]);
    assert!(
        patches[1].starts_with("PATCH /v2/dst/app/blobs/uploads/u1?_state=1 "),
        "{}",
        patches[1]
    );
    let sent: String = patches
        .iter()
        .map(|h| h.split("\r\n\r\n").nth(1).unwrap_or(""))
        .collect();
    assert_eq!(
        sent.as_bytes(),
        layer.as_slice(),
        "the chunks reassemble the layer"
    );
    let commits = requests(&seen, "PUT /v2/dst/app/blobs/uploads/");
    assert_eq!(commits.len(), 1);
    assert_eq!(
        digest_param(&commits[0]).unwrap(),
        m.layers[0].digest.to_string()
    );
    let manifest_put = requests(&seen, "PUT /v2/dst/app/manifests/");
    assert_eq!(manifest_put.len(), 1);
    assert!(manifest_put[0].starts_with("PUT /v2/dst/app/manifests/v2 "));
    assert!(manifest_put[0]
        .to_ascii_lowercase()
        .contains(&format!("content-type: {}", media::OCI_MANIFEST)));
    assert!(requests(&seen, "DELETE").is_empty());
}

#[test]
fn a_small_blob_goes_in_one_put_and_the_same_registry_mounts() {
    let dir = tempfile::tempdir().unwrap();
    let layer = b"small layer".to_vec();
    // The config is mountable from the source repository; the layer is not.
    let (addr, seen) = {
        let probe = tempfile::tempdir().unwrap();
        let (s, d) = store_with_image(probe.path(), "example.org/x/y:1", &layer);
        let (_, Parsed::Image(m)) = s.read_manifest(&d).unwrap() else {
            panic!()
        };
        fake_registry(Digest::sha256_of(b"nothing"), Some(m.config.digest.clone()))
    };
    let source = format!("{addr}/src/app:v1");
    let (store, _) = store_with_image(dir.path(), &source, &layer);
    let dest: Reference = format!("{addr}/dst/app:v2").parse().unwrap();
    let report = push(&store, &source, &dest, &PushOptions::default()).unwrap();
    assert_eq!((report.uploaded, report.mounted, report.existed), (1, 1, 0));
    let posts = requests(&seen, "POST ");
    assert!(
        posts.iter().all(|p| p.contains("&from=src%2Fapp")),
        "mounts are tried from the source repository: {posts:?}"
    );
    assert!(
        requests(&seen, "PATCH").is_empty(),
        "no chunks for a small blob"
    );
    let put = &requests(&seen, "PUT /v2/dst/app/blobs/uploads/")[0];
    assert!(put.ends_with("small layer"), "{put}");
}

#[test]
fn a_damaged_store_blob_is_not_committed() {
    let dir = tempfile::tempdir().unwrap();
    let layer = vec![b'z'; 3000];
    let (store, desc) = store_with_image(dir.path(), "example.org/src/app:v1", &layer);
    let (_, Parsed::Image(m)) = store.read_manifest(&desc).unwrap() else {
        panic!()
    };
    let path = store.layout().blob_path(&m.layers[0].digest);
    let mut damaged = layer.clone();
    damaged[2999] = b'y';
    std::fs::write(&path, &damaged).unwrap();
    for chunk_size in [1000, 1 << 20] {
        let (addr, seen) = fake_registry(m.config.digest.clone(), None);
        let dest: Reference = format!("{addr}/dst/app:v2").parse().unwrap();
        let opts = PushOptions {
            chunk_size,
            ..PushOptions::default()
        };
        let e = push(&store, "example.org/src/app:v1", &dest, &opts).unwrap_err();
        assert!(matches!(e, RegistryError::StoredBlobDigest { .. }), "{e}");
        assert!(requests(&seen, "PUT ").is_empty(), "nothing committed: {e}");
        assert_eq!(
            requests(&seen, "DELETE ").len(),
            1,
            "the session is cancelled"
        );
    }
    std::fs::write(&path, &layer[..10]).unwrap();
    let (addr, _) = fake_registry(m.config.digest.clone(), None);
    let dest: Reference = format!("{addr}/dst/app:v2").parse().unwrap();
    let e = push(
        &store,
        "example.org/src/app:v1",
        &dest,
        &PushOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(e, RegistryError::StoredBlobSize { actual: 10, .. }),
        "{e}"
    );
}

#[test]
fn a_destination_pinning_another_digest_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = store_with_image(dir.path(), "example.org/src/app:v1", b"l");
    let other = Digest::sha256_of(b"other");
    let dest: Reference = format!("127.0.0.1:1/dst/app@{other}").parse().unwrap();
    let e = push(
        &store,
        "example.org/src/app:v1",
        &dest,
        &PushOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(e, RegistryError::PinnedDigest { .. }), "{e}");
}

#[test]
fn an_upload_location_that_is_not_a_url_is_refused_and_quoted() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = store_with_image(dir.path(), "example.org/src/app:v1", b"l");
    let (addr, _) = serve(|head| {
        if head.starts_with("POST ") {
            let h = [("Location", "uploads/\"u1\"".to_string())];
            return (response("202 Accepted", &h, b""), None);
        }
        (response("404 Not Found", &[], b""), None)
    });
    let dest: Reference = format!("{addr}/dst/app:v2").parse().unwrap();
    let e = push(
        &store,
        "example.org/src/app:v1",
        &dest,
        &PushOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(e, RegistryError::Location { .. }), "{e}");
    assert!(e.to_string().contains(r#""uploads/\"u1\"""#), "{e}");
}

#[test]
fn a_push_token_is_asked_for_pull_push_and_the_mount_source() {
    let dir = tempfile::tempdir().unwrap();
    let port = Arc::new(Mutex::new(String::new()));
    let port_in = Arc::clone(&port);
    let (addr, seen) = serve(move |head| {
        if head.starts_with("GET /token") {
            return (response("200 OK", &[], br#"{"token":"pt"}"#), None);
        }
        if !head
            .to_ascii_lowercase()
            .contains("authorization: bearer pt")
        {
            let realm = format!("http://{}/token", port_in.lock().unwrap());
            let h = [(
                "WWW-Authenticate",
                format!(r#"Bearer realm="{realm}",service="s""#),
            )];
            return (response("401 Unauthorized", &h, b""), None);
        }
        // Everything is already there: the push only needs the HEADs and the manifest.
        let status = if head.starts_with("HEAD ") {
            "200 OK"
        } else {
            "201 Created"
        };
        (response(status, &[], b""), None)
    });
    *port.lock().unwrap() = addr.clone();
    let source = format!("{addr}/src/app:v1");
    let (store, _) = store_with_image(dir.path(), &source, b"layer");
    let dest: Reference = format!("{addr}/dst/app:v2").parse().unwrap();
    let report = push(&store, &source, &dest, &PushOptions::default()).unwrap();
    assert_eq!(report.existed, 2);
    let token = crate::registry::test_server::first_request(&seen, "GET /token");
    assert!(
        token.starts_with(
            "GET /token?service=s&scope=repository%3Adst%2Fapp%3Apull%2Cpush&scope=repository%3Asrc%2Fapp%3Apull "
        ),
        "{token}"
    );
}

#[test]
fn an_index_goes_up_after_its_manifests_which_go_by_digest() {
    let dir = tempfile::tempdir().unwrap();
    let (store, child) = store_with_image(dir.path(), "example.org/src/app:child", b"layer");
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_INDEX,
        "manifests": [{"mediaType": media::OCI_MANIFEST, "digest": child.digest.to_string(), "size": child.size,
                       "platform": {"os": "freebsd", "architecture": "amd64"}}],
    });
    let bytes = serde_json::to_vec(&index).unwrap();
    let digest = store.put_bytes(&bytes, None).unwrap();
    let desc = Descriptor::new(media::OCI_INDEX, digest.clone(), bytes.len() as u64);
    store.set_ref("example.org/src/app:multi", &desc).unwrap();
    let (addr, seen) = fake_registry(Digest::sha256_of(b"none"), None);
    let dest: Reference = format!("{addr}/dst/app:multi").parse().unwrap();
    let report = push(
        &store,
        "example.org/src/app:multi",
        &dest,
        &PushOptions::default(),
    )
    .unwrap();
    assert_eq!(report.descriptor.digest, digest);
    let puts = requests(&seen, "PUT /v2/dst/app/manifests/");
    assert_eq!(puts.len(), 2, "{puts:?}");
    assert!(puts[0].starts_with(&format!("PUT /v2/dst/app/manifests/{} ", child.digest)));
    assert!(puts[0]
        .to_ascii_lowercase()
        .contains(&format!("content-type: {}", media::OCI_MANIFEST)));
    assert!(puts[1].starts_with("PUT /v2/dst/app/manifests/multi "));
    assert!(puts[1]
        .to_ascii_lowercase()
        .contains(&format!("content-type: {}", media::OCI_INDEX)));
    assert!(
        puts[1].ends_with(std::str::from_utf8(&bytes).unwrap()),
        "the index goes up byte for byte"
    );
}

#[test]
fn a_blob_upload_the_registry_fails_with_a_5xx_is_started_over() {
    let dir = tempfile::tempdir().unwrap();
    let (store, desc) = store_with_image(dir.path(), "example.org/src/app:v1", b"layer bytes");
    let (_, Parsed::Image(m)) = store.read_manifest(&desc).unwrap() else {
        panic!()
    };
    let commits = Arc::new(Mutex::new(0u32));
    let commits_in = Arc::clone(&commits);
    let config = m.config.digest.clone();
    let (addr, seen) = serve(move |head| {
        let line = head.lines().next().unwrap_or("");
        let ok = |status: &str, h: &[(&str, String)]| (response(status, h, b""), None);
        if line.starts_with("HEAD ") {
            return if line.contains(&config.to_string()) {
                ok("200 OK", &[])
            } else {
                ok("404 Not Found", &[])
            };
        }
        if line.starts_with("POST ") {
            return ok(
                "202 Accepted",
                &[("Location", "/v2/dst/app/blobs/uploads/u".into())],
            );
        }
        if line.starts_with("PUT /v2/dst/app/blobs/uploads/") {
            let mut n = commits_in.lock().unwrap();
            *n += 1;
            if *n == 1 {
                return (
                    response(
                        "503 Service Unavailable",
                        &[],
                        br#"{"errors":[{"code":"UNAVAILABLE","message":"busy"}]}"#,
                    ),
                    None,
                );
            }
        }
        ok("201 Created", &[])
    });
    let dest: Reference = format!("{addr}/dst/app:v2").parse().unwrap();
    let report = push(
        &store,
        "example.org/src/app:v1",
        &dest,
        &PushOptions::default(),
    )
    .unwrap();
    assert_eq!(report.uploaded, 1);
    assert_eq!(
        *commits.lock().unwrap(),
        2,
        "the failed commit was tried again"
    );
    assert_eq!(requests(&seen, "POST ").len(), 2, "in a new upload session");
}

#[test]
fn a_4xx_is_not_retried_and_its_error_body_is_quoted() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = store_with_image(dir.path(), "example.org/src/app:v1", b"layer");
    let (addr, seen) = serve(|head| {
        if head.starts_with("HEAD ") {
            return (response("404 Not Found", &[], b""), None);
        }
        let body = br#"{"errors":[{"code":"DENIED","message":"quota\u001b[31m exceeded"}]}"#;
        (response("400 Bad Request", &[], body), None)
    });
    let dest: Reference = format!("{addr}/dst/app:v2").parse().unwrap();
    let opts = PushOptions {
        jobs: 1,
        ..PushOptions::default()
    };
    let e = push(&store, "example.org/src/app:v1", &dest, &opts).unwrap_err();
    let text = e.to_string();
    assert!(
        matches!(e, RegistryError::Status { status: 400, .. }),
        "{text}"
    );
    assert!(
        text.contains(r#"DENIED: "quota\u{1b}[31m exceeded""#),
        "{text}"
    );
    assert!(!text.contains('\u{1b}'), "{text}");
    assert_eq!(requests(&seen, "POST ").len(), 1, "no retry");
}
