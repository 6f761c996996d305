//! Credentials from a Docker or containers auth file (`config.json`, `auth.json`): the
//! `credHelpers`, `credsStore` and `auths` entries, looked up as Docker does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;

use super::cred_helper::{self, HelperError};
use super::credentials::Credentials;

/// Why an auth file gave no credentials.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("reading auth file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("auth file {path}: invalid JSON: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(
        "auth file {path}: entry for {} has an `auth` value that is not base64 of user:password",
        stockade_quote::quote(registry)
    )]
    Entry { path: PathBuf, registry: String },
    #[error("auth file {path}: credentials for {registry}: {source}")]
    Helper {
        path: PathBuf,
        registry: String,
        source: Box<HelperError>,
    },
}

#[derive(serde::Deserialize)]
struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    /// Per-registry credential helpers: registry → helper name.
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
    /// The credential helper that holds every registry's credentials.
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(serde::Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    /// An OAuth2 refresh token that `docker login` stores for some registries.
    #[serde(default)]
    identitytoken: Option<String>,
}

/// Looks up `registry` (as in a reference: `docker.io`, `host:port`) in a Docker or
/// containers `config.json`/`auth.json`, as Docker does: a `credHelpers` entry for the
/// registry, else the `credsStore` helper when there is one (Docker then ignores what
/// `auths` holds), else the registry's `auths` entry (`identitytoken`, `auth` or
/// `username`/`password`). Keys may be bare hosts or URLs (`https://host/v1/`);
/// Docker Hub's key is `https://index.docker.io/v1/`. A missing file gives `Ok(None)`.
pub fn from_auth_file(
    path: &Path,
    registry: &str,
) -> Result<Option<Credentials>, CredentialsError> {
    lookup(path, registry, &cred_helper::get)
}

/// How a credential helper is asked: `(helper name, server URL)`.
type HelperGet<'a> = dyn Fn(&str, &str) -> Result<Option<Credentials>, HelperError> + 'a;

fn lookup(
    path: &Path,
    registry: &str,
    helper_get: &HelperGet<'_>,
) -> Result<Option<Credentials>, CredentialsError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(CredentialsError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let file: AuthFile =
        serde_json::from_slice(&bytes).map_err(|source| CredentialsError::Json {
            path: path.to_path_buf(),
            source,
        })?;
    let matches = |key: &str| key_matches(key, registry);
    // What Docker hands a helper: the Hub's historical URL, or the registry host.
    let server = if registry == "docker.io" {
        "https://index.docker.io/v1/"
    } else {
        registry
    };
    let ask = |helper: &str| {
        helper_get(helper, server).map_err(|source| CredentialsError::Helper {
            path: path.to_path_buf(),
            registry: registry.to_string(),
            source: Box::new(source),
        })
    };
    if let Some((_, helper)) = file.cred_helpers.iter().find(|(k, _)| matches(k)) {
        return ask(helper);
    }
    if let Some(store) = file.creds_store.as_deref().filter(|s| !s.is_empty()) {
        return ask(store);
    }
    for (key, entry) in file.auths.iter().filter(|(k, _)| matches(k)) {
        if let Some(c) = entry_credentials(path, key, entry)? {
            return Ok(Some(c));
        }
    }
    Ok(None)
}

/// Whether an `auths` or `credHelpers` key (a bare host or a URL such as
/// `https://host/v1/`) names `registry` (as in a reference: `docker.io`, `host:port`);
/// Docker Hub answers to its historical names too.
pub(super) fn key_matches(key: &str, registry: &str) -> bool {
    let wanted: &[&str] = if registry == "docker.io" {
        &["docker.io", "index.docker.io", "registry-1.docker.io"]
    } else {
        &[registry]
    };
    let host = key
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or(key);
    wanted.contains(&host)
}

/// The credentials an `auths` entry holds itself; `None` for an empty entry (`{}`, which
/// `docker login` writes when a helper keeps the secret).
fn entry_credentials(
    path: &Path,
    key: &str,
    entry: &AuthEntry,
) -> Result<Option<Credentials>, CredentialsError> {
    if let Some(token) = entry.identitytoken.as_deref().filter(|t| !t.is_empty()) {
        return Ok(Some(Credentials::identity(token)));
    }
    if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let bad = || CredentialsError::Entry {
            path: path.to_path_buf(),
            registry: key.to_string(),
        };
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| bad())?;
        let text = String::from_utf8(decoded).map_err(|_| bad())?;
        return Credentials::from_flag(&text).map(Some).map_err(|_| bad());
    }
    if let (Some(u), Some(p)) = (&entry.username, &entry.password) {
        return Ok(Some(Credentials {
            username: u.clone(),
            password: p.clone(),
        }));
    }
    Ok(None)
}

/// The auth files consulted when none is given, in order: `$REGISTRY_AUTH_FILE`,
/// `$XDG_RUNTIME_DIR/containers/auth.json`, `$DOCKER_CONFIG/config.json`,
/// `$HOME/.docker/config.json`.
pub fn default_auth_files() -> Vec<PathBuf> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let mut files = Vec::new();
    if let Some(p) = env("REGISTRY_AUTH_FILE") {
        files.push(p);
    }
    if let Some(p) = env("XDG_RUNTIME_DIR") {
        files.push(p.join("containers/auth.json"));
    }
    if let Some(p) = env("DOCKER_CONFIG") {
        files.push(p.join("config.json"));
    }
    if let Some(p) = env("HOME") {
        files.push(p.join(".docker/config.json"));
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_file_entries_match_by_host_with_docker_hub_aliases() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            r#"{"auths":{
                "https://index.docker.io/v1/":{"auth":"aHViOnNlY3JldA=="},
                "127.0.0.1:5000":{"auth":"dTpw"},
                "https://ghcr.io":{"username":"g","password":"h"},
                "bad.example":{"auth":"!!!"}}}"#,
        )
        .unwrap();
        let hub = from_auth_file(&path, "docker.io").unwrap().unwrap();
        assert_eq!(
            (hub.username.as_str(), hub.password.as_str()),
            ("hub", "secret")
        );
        let local = from_auth_file(&path, "127.0.0.1:5000").unwrap().unwrap();
        assert_eq!(
            (local.username.as_str(), local.password.as_str()),
            ("u", "p")
        );
        let gh = from_auth_file(&path, "ghcr.io").unwrap().unwrap();
        assert_eq!(gh.username, "g");
        assert!(from_auth_file(&path, "127.0.0.1:5001").unwrap().is_none());
        assert!(matches!(
            from_auth_file(&path, "bad.example"),
            Err(CredentialsError::Entry { .. })
        ));
        assert!(from_auth_file(&dir.path().join("absent.json"), "x")
            .unwrap()
            .is_none());
    }

    #[test]
    fn cred_helpers_then_creds_store_else_auths_as_docker_orders_them() {
        let dir = tempfile::tempdir().unwrap();
        let with_store = dir.path().join("store.json");
        std::fs::write(
            &with_store,
            r#"{"credsStore":"desktop",
                "credHelpers":{"ghcr.io":"gh","broken.example":"broken"},
                "auths":{
                  "ghcr.io":{"auth":"aWdub3JlZDp4"},
                  "quay.io":{"auth":"c3RhbGU6eA=="},
                  "https://index.docker.io/v1/":{}}}"#,
        )
        .unwrap();
        let plain = dir.path().join("plain.json");
        std::fs::write(
            &plain,
            r#"{"auths":{"quay.io":{"auth":"cTpw"},
                "id.example":{"auth":"dTpw","identitytoken":"refresh-1"}}}"#,
        )
        .unwrap();
        let calls = std::cell::RefCell::new(Vec::new());
        let fake = |helper: &str, server: &str| {
            calls.borrow_mut().push(format!("{helper} {server}"));
            match helper {
                "broken" => Err(HelperError::NotFound {
                    program: "docker-credential-broken".into(),
                }),
                _ => Ok(Some(Credentials {
                    username: format!("{helper}-user"),
                    password: "pw".into(),
                })),
            }
        };
        let user =
            |path: &Path, registry: &str| lookup(path, registry, &fake).unwrap().unwrap().username;
        assert_eq!(user(&with_store, "ghcr.io"), "gh-user", "credHelpers first");
        assert_eq!(
            user(&with_store, "quay.io"),
            "desktop-user",
            "with a credsStore, a stale auths entry is ignored (as Docker does)"
        );
        assert_eq!(user(&with_store, "docker.io"), "desktop-user");
        assert_eq!(user(&plain, "quay.io"), "q", "without helpers, auths");
        let c = lookup(&plain, "id.example", &fake).unwrap().unwrap();
        assert_eq!(c.identity_token(), Some("refresh-1"));
        assert_eq!(
            *calls.borrow(),
            [
                "gh ghcr.io",
                "desktop quay.io",
                "desktop https://index.docker.io/v1/"
            ],
            "helpers get the registry host, or the Hub's v1 URL"
        );
        let e = lookup(&with_store, "broken.example", &fake)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("store.json") && e.contains("broken.example") && e.contains("not installed"),
            "{e}"
        );
        assert!(Credentials::from_flag("u:p")
            .unwrap()
            .identity_token()
            .is_none());
    }
}
