use super::*;
use crate::oci::digest::Digest;
use crate::oci::reference::Reference;
use crate::registry::client::ClientOptions;
use crate::registry::test_server::{response, serve};

fn blob_fixture() -> (Vec<u8>, Descriptor) {
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let desc = Descriptor::new(
        "application/octet-stream",
        Digest::sha256_of(&data),
        data.len() as u64,
    );
    (data, desc)
}

#[test]
fn a_dropped_blob_download_resumes_with_a_range_request() {
    let (data, desc) = blob_fixture();
    let body = data.clone();
    let (addr, seen) = serve(move |head| {
        let lower = head.to_ascii_lowercase();
        if let Some(pos) = lower.find("range: bytes=") {
            let from: usize = lower[pos + 13..]
                .split('-')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            let range = format!("bytes {from}-{}/{}", body.len() - 1, body.len());
            (
                response(
                    "206 Partial Content",
                    &[("Content-Range", range)],
                    &body[from..],
                ),
                None,
            )
        } else {
            // Headers plus the first 70000 bytes of the body, then hang up.
            let full = response("200 OK", &[], &body);
            let header_len = full.len() - body.len();
            (full, Some(header_len + 70_000))
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let reference: Reference = format!("{addr}/test/blob:v1").parse().unwrap();
    let client = Client::new(&reference, ClientOptions::default());
    client
        .fetch_blob(&store, &desc, &|_| {}, &AtomicBool::new(false))
        .unwrap();
    assert_eq!(
        std::fs::read(store.layout().blob_path(&desc.digest)).unwrap(),
        data
    );
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(
        seen[1].to_ascii_lowercase().contains("range: bytes=70000-"),
        "{}",
        seen[1]
    );
}

#[test]
fn a_blob_with_the_wrong_content_is_refused_and_nothing_is_stored() {
    let (mut data, desc) = blob_fixture();
    data[1234] ^= 1;
    let (addr, _) = serve(move |_| (response("200 OK", &[], &data), None));
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let reference: Reference = format!("{addr}/test/blob:v1").parse().unwrap();
    let client = Client::new(&reference, ClientOptions::default());
    let err = client
        .fetch_blob(&store, &desc, &|_| {}, &AtomicBool::new(false))
        .unwrap_err();
    assert!(
        matches!(
            err,
            RegistryError::Store(StoreError::Verify(VerifyError::Digest { .. }))
        ),
        "{err}"
    );
    assert!(store.blob_size(&desc.digest).is_none());
    assert_eq!(store.temporaries().unwrap(), 0);
}
