use super::*;

#[test]
fn plain_http_only_for_loopback_or_insecure() {
    let local: Reference = "127.0.0.1:5000/a/b:1".parse().unwrap();
    let c = Client::new(&local, ClientOptions::default());
    assert_eq!(c.base, "http://127.0.0.1:5000/v2/a/b");
    let remote: Reference = "registry.example:5000/a".parse().unwrap();
    assert!(Client::new(&remote, ClientOptions::default())
        .base
        .starts_with("https://"));
    let insecure = ClientOptions {
        insecure: true,
        ..ClientOptions::default()
    };
    assert!(Client::new(&remote, insecure).base.starts_with("http://"));
    let hub: Reference = "alpine".parse().unwrap();
    assert_eq!(
        Client::new(&hub, ClientOptions::default()).base,
        "https://registry-1.docker.io/v2/library/alpine"
    );
}

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::sync::Arc;

/// A one-thread HTTP/1.1 server on loopback. `answer` gets each request head and
/// returns the raw response bytes and how many of them to send before hanging up.
fn serve(
    answer: impl Fn(&str) -> (Vec<u8>, Option<usize>) + Send + Sync + 'static,
) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let answer = Arc::new(answer);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let log = Arc::clone(&log);
            let answer = Arc::clone(&answer);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                loop {
                    let mut head = String::new();
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            break;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        head.push_str(&line);
                    }
                    if head.is_empty() {
                        break;
                    }
                    // A request body (a token POST's form) follows the head, after
                    // a blank line.
                    let length = head.lines().find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().ok())?
                    });
                    if let Some(n) = length.filter(|n| *n > 0) {
                        let mut body = vec![0; n];
                        if reader.read_exact(&mut body).is_err() {
                            break;
                        }
                        head.push_str("\r\n");
                        head.push_str(&String::from_utf8_lossy(&body));
                    }
                    log.lock().unwrap().push(head.clone());
                    let (bytes, cut) = answer(&head);
                    let n = cut.unwrap_or(bytes.len());
                    if stream.write_all(&bytes[..n]).is_err() || cut.is_some() {
                        let _ = stream.shutdown(std::net::Shutdown::Both);
                        break;
                    }
                }
            });
        }
    });
    (addr, seen)
}

/// The first request `serve` logged whose head starts with `start`.
fn first_request(seen: &Mutex<Vec<String>>, start: &str) -> String {
    seen.lock()
        .unwrap()
        .iter()
        .find(|h| h.starts_with(start))
        .cloned()
        .unwrap_or_else(|| panic!("no request starting {start:?} was made"))
}

fn response(status: &str, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

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

#[test]
fn a_bearer_challenge_is_answered_with_a_token_from_the_realm() {
    let manifest = br#"{"schemaVersion":2}"#.to_vec();
    let port = Arc::new(Mutex::new(String::new()));
    let port_in = Arc::clone(&port);
    let (addr, seen) = serve(move |head| {
        let lower = head.to_ascii_lowercase();
        if head.starts_with("GET /token?") {
            let auth_ok = lower.contains("authorization: basic dtpw");
            let body = if auth_ok {
                br#"{"token":"t0k"}"#.to_vec()
            } else {
                Vec::new()
            };
            return (
                response(
                    if auth_ok {
                        "200 OK"
                    } else {
                        "401 Unauthorized"
                    },
                    &[],
                    &body,
                ),
                None,
            );
        }
        if lower.contains("authorization: bearer t0k") {
            return (
                response(
                    "200 OK",
                    &[("Content-Type", OCI_MANIFEST_TYPE.to_string())],
                    &manifest,
                ),
                None,
            );
        }
        let realm = format!("http://{}/token", port_in.lock().unwrap());
        let challenge =
            format!(r#"Bearer realm="{realm}",service="svc",scope="repository:test/app:pull""#);
        (
            response("401 Unauthorized", &[("WWW-Authenticate", challenge)], b""),
            None,
        )
    });
    *port.lock().unwrap() = addr.clone();
    let reference: Reference = format!("{addr}/test/app:v1").parse().unwrap();
    let opts = ClientOptions {
        credentials: Some(Credentials::from_flag("u:p").unwrap()),
        insecure: false,
    };
    let got = Client::new(&reference, opts)
        .manifest("v1", "test")
        .unwrap();
    assert_eq!(got.bytes, br#"{"schemaVersion":2}"#);
    let token_request = first_request(&seen, "GET /token?");
    assert!(token_request.contains("service=svc"), "{token_request}");
    assert!(
        token_request.contains("scope=repository%3Atest%2Fapp%3Apull"),
        "{token_request}"
    );

    let anonymous = Client::new(&reference, ClientOptions::default())
        .manifest("v1", "test")
        .unwrap_err();
    assert!(
        matches!(anonymous, RegistryError::Token { .. }),
        "{anonymous}"
    );
}

#[test]
fn an_identity_token_is_exchanged_by_a_form_post_and_never_sent_as_a_password() {
    let manifest = br#"{"schemaVersion":2}"#.to_vec();
    let port = Arc::new(Mutex::new(String::new()));
    let port_in = Arc::clone(&port);
    let (addr, seen) = serve(move |req| {
        let lower = req.to_ascii_lowercase();
        if req.starts_with("POST /token") {
            let ok = req.contains("grant_type=refresh_token")
                && req.contains("refresh_token=rt-1")
                && !lower.contains("authorization:");
            let (status, body): (&str, &[u8]) = if ok {
                ("200 OK", br#"{"access_token":"acc"}"#)
            } else {
                ("400 Bad Request", b"")
            };
            return (response(status, &[], body), None);
        }
        if lower.contains("authorization: bearer acc") {
            let ct = [("Content-Type", OCI_MANIFEST_TYPE.to_string())];
            return (response("200 OK", &ct, &manifest), None);
        }
        let realm = format!("http://{}/token", port_in.lock().unwrap());
        let challenge = format!(r#"Bearer realm="{realm}",service="svc""#);
        let h = [("WWW-Authenticate", challenge)];
        (response("401 Unauthorized", &h, b""), None)
    });
    *port.lock().unwrap() = addr.clone();
    let reference: Reference = format!("{addr}/test/app:v1").parse().unwrap();
    let opts = ClientOptions {
        credentials: Some(Credentials::identity("rt-1")),
        insecure: false,
    };
    let got = Client::new(&reference, opts)
        .manifest("v1", "test")
        .unwrap();
    assert_eq!(got.bytes, br#"{"schemaVersion":2}"#);
    let post = first_request(&seen, "POST /token");
    assert!(post.contains("service=svc"), "{post}");
    assert!(
        post.contains("scope=repository%3Atest%2Fapp%3Apull"),
        "{post}"
    );
}

#[test]
fn an_identity_token_is_not_offered_to_a_basic_challenge_and_the_error_says_so() {
    let (addr, seen) = serve(|_| {
        let h = [("WWW-Authenticate", r#"Basic realm="r""#.to_string())];
        (response("401 Unauthorized", &h, b""), None)
    });
    let reference: Reference = format!("{addr}/test/app:v1").parse().unwrap();
    let opts = ClientOptions {
        credentials: Some(Credentials::identity("rt-1")),
        insecure: false,
    };
    let e = Client::new(&reference, opts)
        .manifest("v1", "test")
        .unwrap_err();
    assert!(
        matches!(
            e,
            RegistryError::Unauthorized {
                identity_token: true,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("identity token"), "{e}");
    assert!(
        !seen
            .lock()
            .unwrap()
            .iter()
            .any(|h| h.to_ascii_lowercase().contains("authorization:")),
        "the token was never sent as a password"
    );
}

const OCI_MANIFEST_TYPE: &str = crate::oci::media::OCI_MANIFEST;

#[test]
fn realm_loopback_detection() {
    assert!(realm_host_is_loopback("http://127.0.0.1:9999/token"));
    assert!(realm_host_is_loopback("http://localhost/token?x=1"));
    assert!(!realm_host_is_loopback("http://auth.example/token"));
}
