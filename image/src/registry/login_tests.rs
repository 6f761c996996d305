use super::*;
use std::os::unix::fs::PermissionsExt;

use crate::registry::auth_file::from_auth_file;
use crate::registry::test_server::{response, serve};

fn creds(u: &str, p: &str) -> Credentials {
    Credentials {
        username: u.into(),
        password: p.into(),
    }
}

#[test]
fn registries_are_normalised_as_references_are() {
    assert_eq!(
        normalise_registry("localhost:5000").unwrap(),
        "localhost:5000"
    );
    assert_eq!(
        normalise_registry("https://index.docker.io/v1/").unwrap(),
        "docker.io"
    );
    assert_eq!(
        normalise_registry("registry-1.docker.io").unwrap(),
        "docker.io"
    );
    assert_eq!(
        normalise_registry("http://r.example/").unwrap(),
        "r.example"
    );
    assert!(normalise_registry("justaname").is_err());
    assert!(normalise_registry("").is_err());
    assert!(normalise_registry("bad host.example").is_err());
}

#[test]
fn save_writes_a_0600_file_that_pulls_read_and_keeps_other_entries() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/auth.json");
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(
        &path,
        r#"{"auths":{"other.example":{"auth":"bzpw"},"http://r.example/v1/":{"auth":"b2xkOnB3"}},"HttpHeaders":{"X":"y"}}"#,
    )
    .unwrap();
    save(&path, "r.example", &creds("alice", "pa:ss")).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let c = from_auth_file(&path, "r.example").unwrap().unwrap();
    assert_eq!(
        (c.username.as_str(), c.password.as_str()),
        ("alice", "pa:ss")
    );
    let v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(v["HttpHeaders"]["X"], "y", "unknown keys are kept");
    assert_eq!(v["auths"]["other.example"]["auth"], "bzpw");
    assert!(
        v["auths"].get("http://r.example/v1/").is_none(),
        "the old alias entry was replaced"
    );
    assert!(
        std::fs::read_dir(dir.path().join("sub"))
            .unwrap()
            .all(|e| !e.unwrap().file_name().to_string_lossy().ends_with(".tmp")),
        "no temporary file left"
    );

    remove(&path, "r.example").unwrap();
    assert!(from_auth_file(&path, "r.example").unwrap().is_none());
    assert!(from_auth_file(&path, "other.example").unwrap().is_some());
    assert!(matches!(
        remove(&path, "r.example"),
        Err(LoginError::NotLoggedIn { .. })
    ));
}

#[test]
fn docker_hub_goes_under_its_historical_key_and_a_new_file_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new/dir/config.json");
    save(&path, "docker.io", &creds("hub", "pw")).unwrap();
    let v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert!(v["auths"]["https://index.docker.io/v1/"]["auth"].is_string());
    let parent_mode = std::fs::metadata(path.parent().unwrap())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(parent_mode & 0o077, 0, "a created directory is private");
}

#[test]
fn a_credential_helper_entry_is_not_silently_shadowed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    std::fs::write(&path, r#"{"credHelpers":{"r.example":"pass"}}"#).unwrap();
    let e = save(&path, "r.example", &creds("a", "b")).unwrap_err();
    assert!(matches!(e, LoginError::Helper { .. }), "{e}");
    std::fs::write(&path, r#"[1]"#).unwrap();
    let e = save(&path, "r.example", &creds("a", "b")).unwrap_err();
    assert!(matches!(e, LoginError::Format { .. }), "{e}");
}

#[test]
fn check_accepts_good_basic_credentials_and_names_refused_ones() {
    let (addr, seen) = serve(|head| {
        let lower = head.to_ascii_lowercase();
        // "u:p" in base64.
        if lower.contains("authorization: basic dtpw") {
            return (response("200 OK", &[], b"{}"), None);
        }
        let h = [("WWW-Authenticate", r#"Basic realm="r""#.to_string())];
        (response("401 Unauthorized", &h, b""), None)
    });
    check(&addr, &creds("u", "p"), false).unwrap();
    assert!(seen
        .lock()
        .unwrap()
        .iter()
        .all(|h| h.starts_with("GET /v2/ ")));
    let e = check(&addr, &creds("u", "wrong"), false).unwrap_err();
    assert!(matches!(e, LoginError::Refused { .. }), "{e}");
    assert!(e.to_string().contains("\"u\""), "{e}");
}

#[test]
fn check_asks_a_token_without_a_repository_scope() {
    let port = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let port_in = std::sync::Arc::clone(&port);
    let (addr, seen) = serve(move |head| {
        if head.starts_with("GET /token") {
            return (response("200 OK", &[], br#"{"token":"t"}"#), None);
        }
        if head
            .to_ascii_lowercase()
            .contains("authorization: bearer t")
        {
            return (response("200 OK", &[], b"{}"), None);
        }
        let realm = format!("http://{}/token", port_in.lock().unwrap());
        let h = [(
            "WWW-Authenticate",
            format!(r#"Bearer realm="{realm}",service="s""#),
        )];
        (response("401 Unauthorized", &h, b""), None)
    });
    *port.lock().unwrap() = addr.clone();
    check(&addr, &creds("u", "p"), false).unwrap();
    let token = crate::registry::test_server::first_request(&seen, "GET /token");
    assert!(token.starts_with("GET /token?service=s "), "{token}");
}

#[test]
fn a_killed_writer_s_temporary_file_is_removed_by_the_next_save() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.json");
    // No process has this pid (it is above any pid_max); our parent is alive and stands
    // for another login in progress.
    let stale = dir.path().join(".auth.json.2147483600.tmp");
    let live = dir.path().join(format!(
        ".auth.json.{}.tmp",
        std::os::unix::process::parent_id()
    ));
    let other = dir.path().join(".other.json.2147483600.tmp");
    for f in [&stale, &live, &other] {
        std::fs::write(f, "{}").unwrap();
    }
    save(&path, "r.example", &creds("a", "b")).unwrap();
    assert!(!stale.exists(), "the dead writer's temporary file is gone");
    assert!(live.exists(), "a running writer's temporary file stays");
    assert!(other.exists(), "another file's temporaries are not touched");
}
