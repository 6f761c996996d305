//! `image login` and `logout`: credentials checked against the registry, then written to
//! (or removed from) an auth file in the Docker/containers format that pulls and pushes
//! read through [`super::auth_file`].
//!
//! The file is rewritten whole through a temporary file of mode 0600 and a rename, so a
//! crash leaves the old file or the new one; every key stockade does not manage (other
//! registries, `credHelpers`, `credsStore`, anything else a tool stored) is kept as it was.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{Map, Value};

use super::auth_file::key_matches;
use super::client::{Client, ClientOptions};
use super::credentials::Credentials;
use super::RegistryError;
use crate::oci::reference::{Reference, DEFAULT_REGISTRY};

/// The key Docker files Docker Hub's credentials under (what its own tools look up first).
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// Auth files larger than this are refused rather than read.
const MAX_AUTH_FILE: u64 = 4 << 20;

/// Why a login or logout did not happen.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error(
        "{} is not a registry host[:port] (such as registry.example.com or localhost:5000)",
        stockade_quote::quote(given)
    )]
    BadRegistry { given: String },
    #[error(
        "logging in to {registry}: the registry refused the credentials for user {}",
        stockade_quote::quote(user)
    )]
    Refused { registry: String, user: String },
    #[error("logging in to {registry}: {source}")]
    Registry {
        registry: String,
        source: Box<RegistryError>,
    },
    #[error("auth file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("auth file {path}: larger than {MAX_AUTH_FILE} bytes; refusing to read it")]
    TooLarge { path: PathBuf },
    #[error("auth file {path}: {detail}")]
    Format { path: PathBuf, detail: String },
    #[error("auth file {path}: credentials for {registry} are kept by the credential helper {}, which stockade does not write to; log in with that tool, or pass --authfile to use another file", stockade_quote::quote(helper))]
    Helper {
        path: PathBuf,
        registry: String,
        helper: String,
    },
    #[error("not logged in to {registry} (auth file {path} has no entry for it)")]
    NotLoggedIn { registry: String, path: PathBuf },
}

/// A registry as `login` and `logout` are given it: `host[:port]`, or a URL such as
/// `https://index.docker.io/v1/`, normalised as references are (`docker.io` for the Hub).
pub fn normalise_registry(given: &str) -> Result<String, LoginError> {
    let bad = || LoginError::BadRegistry {
        given: given.to_string(),
    };
    let host = given
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or("");
    if host.is_empty() {
        return Err(bad());
    }
    let hub_alias = matches!(
        host,
        "docker.io" | "index.docker.io" | "registry-1.docker.io"
    );
    let parsed: Reference = format!("{host}/stockade/login")
        .parse()
        .map_err(|_| bad())?;
    // A first component without '.' or ':' (and not localhost) would be read as a
    // repository on Docker Hub: it is not a registry name.
    if parsed.registry() != host && !hub_alias {
        return Err(bad());
    }
    Ok(parsed.registry().to_string())
}

/// Checks `credentials` against `registry` (`GET /v2/`, answering its challenge), as
/// `docker login` does before it saves anything.
pub fn check(registry: &str, credentials: &Credentials, insecure: bool) -> Result<(), LoginError> {
    let reference: Reference =
        format!("{registry}/stockade/login")
            .parse()
            .map_err(|_| LoginError::BadRegistry {
                given: registry.to_string(),
            })?;
    let options = ClientOptions {
        credentials: Some(credentials.clone()),
        insecure,
    };
    let client = Client::for_registry(&reference, options);
    let wrap = |e: RegistryError| LoginError::Registry {
        registry: registry.to_string(),
        source: Box::new(e),
    };
    match client.ping().map_err(wrap)? {
        true => Ok(()),
        false => Err(LoginError::Refused {
            registry: registry.to_string(),
            user: credentials.username.clone(),
        }),
    }
}

/// The auth file `login` writes when none is given: the first of the files pulls consult
/// ([`super::auth_file::default_auth_files`]), so what is written is what is found.
pub fn default_login_file() -> Option<PathBuf> {
    super::auth_file::default_auth_files().into_iter().next()
}

/// Stores `credentials` for `registry` in the auth file `path` (created, with its
/// directory, if missing), replacing any entry that names the same registry.
pub fn save(path: &Path, registry: &str, credentials: &Credentials) -> Result<(), LoginError> {
    let mut file = read(path)?;
    if let Some(helper) = helper_for(&file, registry) {
        return Err(LoginError::Helper {
            path: path.to_path_buf(),
            registry: registry.to_string(),
            helper,
        });
    }
    let auths = auths_mut(&mut file, path)?;
    auths.retain(|k, _| !key_matches(k, registry));
    let raw = format!("{}:{}", credentials.username, credentials.password);
    let mut entry = Map::new();
    entry.insert(
        "auth".into(),
        Value::String(base64::engine::general_purpose::STANDARD.encode(raw)),
    );
    let key = if registry == DEFAULT_REGISTRY {
        DOCKER_HUB_KEY
    } else {
        registry
    };
    auths.insert(key.to_string(), Value::Object(entry));
    write(path, &file)
}

/// Removes every entry for `registry` from the auth file `path`.
pub fn remove(path: &Path, registry: &str) -> Result<(), LoginError> {
    let not_logged_in = || LoginError::NotLoggedIn {
        registry: registry.to_string(),
        path: path.to_path_buf(),
    };
    if !path.exists() {
        return Err(not_logged_in());
    }
    let mut file = read(path)?;
    let auths = auths_mut(&mut file, path)?;
    let before = auths.len();
    auths.retain(|k, _| !key_matches(k, registry));
    if auths.len() == before {
        return Err(not_logged_in());
    }
    write(path, &file)
}

/// The helper that holds `registry`'s credentials in this file, if one does.
fn helper_for(file: &Map<String, Value>, registry: &str) -> Option<String> {
    let per_registry = file
        .get("credHelpers")
        .and_then(Value::as_object)
        .and_then(|h| h.iter().find(|(k, _)| key_matches(k, registry)))
        .and_then(|(_, v)| v.as_str());
    let store = file
        .get("credsStore")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    per_registry.or(store).map(str::to_string)
}

fn auths_mut<'a>(
    file: &'a mut Map<String, Value>,
    path: &Path,
) -> Result<&'a mut Map<String, Value>, LoginError> {
    file.entry("auths")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or_else(|| LoginError::Format {
            path: path.to_path_buf(),
            detail: "`auths` is not an object".into(),
        })
}

/// The auth file as a JSON object; an absent file is an empty one.
fn read(path: &Path) -> Result<Map<String, Value>, LoginError> {
    let io = |source| LoginError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Map::new()),
        Err(e) => return Err(io(e)),
    };
    let mut bytes = Vec::new();
    file.take(MAX_AUTH_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_AUTH_FILE {
        return Err(LoginError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(LoginError::Format {
            path: path.to_path_buf(),
            detail: "not a JSON object".into(),
        }),
        Err(e) => Err(LoginError::Format {
            path: path.to_path_buf(),
            detail: format!("invalid JSON: {e}"),
        }),
    }
}

/// Writes the file through a 0600 temporary sibling, synced, then renamed over it.
fn write(path: &Path, file: &Map<String, Value>) -> Result<(), LoginError> {
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| LoginError::Io { path: p, source }
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io(dir))?;
    let mut bytes = serde_json::to_vec_pretty(file).map_err(|e| LoginError::Format {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    bytes.push(b'\n');
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    remove_stale_temporaries(dir, &name);
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(io(path))
}

/// Removes the temporary files (`.<name>.<pid>.tmp`) of writers killed before their rename:
/// they hold credentials, and nothing else would ever remove them. A temporary file whose
/// process still runs belongs to a login in progress and is left alone.
fn remove_stale_temporaries(dir: &Path, name: &str) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let prefix = format!(".{name}.");
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(pid) = file
            .to_str()
            .and_then(|f| f.strip_prefix(&prefix))
            .and_then(|f| f.strip_suffix(".tmp"))
            .and_then(|p| p.parse::<i32>().ok())
            .filter(|p| *p > 0)
        else {
            continue;
        };
        let gone = matches!(
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
            Err(nix::errno::Errno::ESRCH)
        );
        if gone {
            let _ = fs::remove_file(entry.path());
        }
    }
}

impl Client {
    /// A client for a registry's own `/v2/` endpoint (`reference` names the registry; its
    /// repository is not used, and tokens are asked without a repository scope).
    pub fn for_registry(reference: &Reference, options: ClientOptions) -> Client {
        let mut client = Client::new(reference, options);
        client.repository.clear();
        client
    }

    /// `GET /v2/` with the client's credentials: `true` when the registry accepts them,
    /// `false` when it refuses them.
    pub fn ping(&self) -> Result<bool, RegistryError> {
        let url = format!("{}/v2/", self.origin);
        let mut resp = self.get(&url, &[])?;
        match resp.status().as_u16() {
            200 => Ok(true),
            401 | 403 => Ok(false),
            status => Err(RegistryError::Status {
                method: "GET".into(),
                url,
                status,
                detail: super::client::error_detail(&mut resp),
            }),
        }
    }
}

#[cfg(test)]
#[path = "login_tests.rs"]
mod tests;
