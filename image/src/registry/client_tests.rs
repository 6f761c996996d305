use super::*;
use std::sync::Arc;

use crate::registry::test_server::{first_request, response, serve};

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

const OCI_MANIFEST_TYPE: &str = crate::oci::media::OCI_MANIFEST;

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
