//! An OCI distribution (v2) client for one repository: authenticated GETs, manifests, and
//! blobs streamed into the store with retry and HTTP range resume.

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use ureq::http::{HeaderMap, Response};
use ureq::tls::{RootCerts, TlsConfig};
use ureq::{Agent, Body};

use super::auth::{self, Challenge, Credentials, TokenResponse};
use super::RegistryError;
use crate::oci::digest::{Digest, Hasher};
use crate::oci::manifest::{Descriptor, MAX_MANIFEST_SIZE};
use crate::oci::media::MANIFEST_ACCEPT;
use crate::oci::reference::Reference;
use crate::store::{Store, StoreError, VerifyError};

/// How many times a blob download is attempted before giving up.
pub const BLOB_ATTEMPTS: u32 = 5;
const READ_BUF: usize = 1 << 20;

/// Connection settings for a registry.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// Basic credentials (also sent to the token endpoint).
    pub credentials: Option<Credentials>,
    /// Use plain HTTP even for a registry that is not on loopback.
    pub insecure: bool,
}

/// A client for one repository of one registry.
pub struct Client {
    agent: Agent,
    base: String,
    registry: String,
    repository: String,
    credentials: Option<Credentials>,
    allow_plain_http: bool,
    /// The `Authorization` header that last worked, shared by all download threads.
    authorization: Mutex<Option<String>>,
}

/// A manifest as the registry returned it.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    pub bytes: Vec<u8>,
    pub content_type: Option<String>,
    pub digest: Digest,
}

/// One attempt's failure, and whether trying again may help.
enum Attempt {
    Retry(String),
    Fatal(RegistryError),
}

impl Client {
    /// A client for the repository `reference` names. Plain HTTP is used for loopback
    /// registries and with `insecure`; HTTPS (system roots) otherwise.
    pub fn new(reference: &Reference, options: ClientOptions) -> Client {
        let allow_plain_http = options.insecure || reference.is_loopback_registry();
        let scheme = if allow_plain_http { "http" } else { "https" };
        let config = Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(120)))
            .timeout_per_read(Some(Duration::from_secs(60)))
            .user_agent(concat!("stockade/", env!("CARGO_PKG_VERSION")))
            .redirect_auth_headers(ureq::config::RedirectAuthHeaders::SameHost)
            .max_idle_connections_per_host(16)
            .tls_config(
                TlsConfig::builder()
                    .root_certs(RootCerts::PlatformVerifier)
                    .build(),
            )
            .build();
        Client {
            agent: Agent::new_with_config(config),
            base: format!(
                "{scheme}://{}/v2/{}",
                reference.api_host(),
                reference.repository()
            ),
            registry: reference.registry().to_string(),
            repository: reference.repository().to_string(),
            credentials: options.credentials,
            allow_plain_http,
            authorization: Mutex::new(None),
        }
    }

    fn current_auth(&self) -> Option<String> {
        self.authorization.lock().map(|g| g.clone()).unwrap_or(None)
    }

    /// A GET with our current authorization; on a 401, answers the challenge once and
    /// retries.
    fn get(&self, url: &str, headers: &[(&str, String)]) -> Result<Response<Body>, RegistryError> {
        let mut answered = false;
        loop {
            let sent_auth = self.current_auth();
            let mut req = self.agent.get(url);
            for (k, v) in headers {
                req = req.header(*k, v.as_str());
            }
            if let Some(a) = &sent_auth {
                req = req.header("Authorization", a.as_str());
            }
            let resp = req.call().map_err(|source| RegistryError::Http {
                url: url.to_string(),
                source,
            })?;
            if resp.status().as_u16() != 401 || answered {
                return Ok(resp);
            }
            answered = true;
            let challenges = challenges_of(resp.headers());
            let answerable = challenges.iter().any(|c| {
                c.scheme == "bearer" || (c.scheme == "basic" && self.credentials.is_some())
            });
            if !answerable {
                // No usable challenge (or no credentials for Basic): the 401 stands.
                return Ok(resp);
            }
            // Free the connection for reuse before asking the token endpoint.
            drop(resp);
            if let Some(header) = self.answer(&challenges)? {
                if let Ok(mut g) = self.authorization.lock() {
                    *g = Some(header);
                }
            }
        }
    }

    /// Builds the `Authorization` header that answers a challenge: basic credentials, or a
    /// bearer token fetched from the challenge's realm.
    fn answer(&self, challenges: &[Challenge]) -> Result<Option<String>, RegistryError> {
        if let Some(bearer) = challenges.iter().find(|c| c.scheme == "bearer") {
            return self.fetch_token(bearer).map(Some);
        }
        if challenges.iter().any(|c| c.scheme == "basic") {
            // An identity token is only good at a token endpoint, never as a password.
            return Ok(self
                .credentials
                .as_ref()
                .filter(|c| c.identity_token().is_none())
                .map(Credentials::basic_header));
        }
        Ok(None)
    }

    fn fetch_token(&self, challenge: &Challenge) -> Result<String, RegistryError> {
        let realm = challenge
            .param("realm")
            .ok_or_else(|| RegistryError::Token {
                registry: self.registry.clone(),
                detail: "the bearer challenge has no realm".into(),
            })?;
        let plain = realm.starts_with("http://");
        if !plain && !realm.starts_with("https://") {
            return Err(RegistryError::Token {
                registry: self.registry.clone(),
                detail: format!("token realm {realm:?} is not an http(s) URL"),
            });
        }
        let realm_is_local = realm_host_is_loopback(realm);
        // Credentials go over plain HTTP only where we would talk plain HTTP anyway.
        let credentials = self
            .credentials
            .as_ref()
            .filter(|_| !plain || realm_is_local || self.allow_plain_http);
        let scope = format!("repository:{}:pull", self.repository);
        let token_err = |detail: String| RegistryError::Token {
            registry: self.registry.clone(),
            detail,
        };
        let (method, mut resp) = match credentials.and_then(Credentials::identity_token) {
            // An identity token is an OAuth2 refresh token: it is exchanged at the realm
            // by a form POST (distribution's token spec, "OAuth2 token" flow).
            Some(refresh_token) => {
                let mut form = vec![
                    ("grant_type", "refresh_token"),
                    ("client_id", "stockade"),
                    ("refresh_token", refresh_token),
                    ("scope", scope.as_str()),
                ];
                if let Some(service) = challenge.param("service") {
                    form.push(("service", service));
                }
                let resp = self
                    .agent
                    .post(realm)
                    .send_form(form)
                    .map_err(|e| token_err(format!("POST {realm}: {e}")))?;
                ("POST", resp)
            }
            None => {
                let mut url = format!("{realm}{}", if realm.contains('?') { "&" } else { "?" });
                if let Some(service) = challenge.param("service") {
                    url.push_str(&format!("service={}&", auth::query_escape(service)));
                }
                url.push_str(&format!("scope={}", auth::query_escape(&scope)));
                let mut req = self.agent.get(&url);
                if let Some(c) = credentials {
                    req = req.header("Authorization", c.basic_header());
                }
                let resp = req
                    .call()
                    .map_err(|e| token_err(format!("GET {realm}: {e}")))?;
                ("GET", resp)
            }
        };
        let status = resp.status().as_u16();
        if status != 200 {
            return Err(token_err(format!("{method} {realm}: HTTP {status}")));
        }
        let body = resp
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_vec()
            .map_err(|e| token_err(format!("reading the token: {e}")))?;
        let token: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| token_err(format!("token response is not JSON: {e}")))?;
        let token = token
            .into_token()
            .ok_or_else(|| token_err("token response has no token".into()))?;
        Ok(format!("Bearer {token}"))
    }

    fn unauthorized(&self, url: &str) -> RegistryError {
        RegistryError::Unauthorized {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            url: url.to_string(),
            had_credentials: self.credentials.is_some(),
            identity_token: self
                .credentials
                .as_ref()
                .is_some_and(|c| c.identity_token().is_some()),
        }
    }

    /// Fetches a manifest or index by tag or digest and checks its digest: against the
    /// digest asked for, or else against the `Docker-Content-Digest` header when present.
    pub fn manifest(&self, reference: &str, what: &str) -> Result<FetchedManifest, RegistryError> {
        let url = format!("{}/manifests/{reference}", self.base);
        let mut resp = self.get(&url, &[("Accept", MANIFEST_ACCEPT.to_string())])?;
        let status = resp.status().as_u16();
        match status {
            200 => {}
            401 | 403 => return Err(self.unauthorized(&url)),
            404 => {
                return Err(RegistryError::ManifestNotFound {
                    reference: what.to_string(),
                    detail: error_detail(&mut resp),
                })
            }
            _ => {
                return Err(RegistryError::Status {
                    url,
                    status,
                    detail: error_detail(&mut resp),
                })
            }
        }
        let content_type = header_str(resp.headers(), "content-type");
        let header_digest = header_str(resp.headers(), "docker-content-digest")
            .and_then(|d| d.parse::<Digest>().ok());
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(MAX_MANIFEST_SIZE)
            .read_to_vec()
            .map_err(|source| RegistryError::Http {
                url: url.clone(),
                source,
            })?;
        let asked = reference.parse::<Digest>().ok();
        let expected = asked.or(header_digest);
        let digest = match &expected {
            Some(want) => {
                let mut h = Hasher::new(want.algorithm());
                h.update(&bytes);
                let actual = h.finish();
                if &actual != want {
                    return Err(RegistryError::ManifestDigest {
                        reference: what.to_string(),
                        expected: want.clone(),
                        actual,
                    });
                }
                actual
            }
            None => Digest::sha256_of(&bytes),
        };
        Ok(FetchedManifest {
            bytes,
            content_type,
            digest,
        })
    }

    /// Downloads the blob `desc` describes into the store, verifying digest and size before
    /// it gets its name. A dropped connection is resumed with an HTTP range request (or
    /// restarted if the server ignores ranges), up to [`BLOB_ATTEMPTS`] attempts. `progress`
    /// is told the total bytes received so far; `abort` stops the download early.
    pub fn fetch_blob(
        &self,
        store: &Store,
        desc: &Descriptor,
        progress: &dyn Fn(u64),
        abort: &AtomicBool,
    ) -> Result<(), RegistryError> {
        let mut writer = store.blob_writer(desc.digest.algorithm())?;
        writer.limit(&desc.digest, desc.size);
        let url = format!("{}/blobs/{}", self.base, desc.digest);
        let mut attempt = 1;
        loop {
            match self.blob_attempt(&url, desc, &mut writer, progress, abort) {
                Ok(()) => break,
                Err(Attempt::Fatal(e)) => return Err(e),
                Err(Attempt::Retry(why)) if attempt >= BLOB_ATTEMPTS => {
                    return Err(RegistryError::BlobFailed {
                        digest: desc.digest.clone(),
                        attempts: attempt,
                        last: why,
                    })
                }
                Err(Attempt::Retry(_)) => {
                    if abort.load(Ordering::Relaxed) {
                        return Err(RegistryError::Aborted);
                    }
                    std::thread::sleep(Duration::from_millis(200 * u64::from(attempt)));
                    attempt += 1;
                }
            }
        }
        if let Err(source) = writer.flush() {
            return Err(writer.error(source).into());
        }
        writer.commit(Some((&desc.digest, desc.size)))?;
        Ok(())
    }

    fn blob_attempt(
        &self,
        url: &str,
        desc: &Descriptor,
        writer: &mut crate::store::BlobWriter<'_>,
        progress: &dyn Fn(u64),
        abort: &AtomicBool,
    ) -> Result<(), Attempt> {
        let offset = writer.written();
        if offset == desc.size && desc.size > 0 {
            return Ok(());
        }
        let mut headers = Vec::new();
        if offset > 0 {
            headers.push(("Range", format!("bytes={offset}-")));
        }
        let resp = self.get(url, &headers).map_err(|e| match e {
            RegistryError::Http { .. } => Attempt::Retry(e.to_string()),
            other => Attempt::Fatal(other),
        })?;
        let status = resp.status().as_u16();
        let resumed = match status {
            200 => false,
            206 if offset > 0 => {
                let range = header_str(resp.headers(), "content-range").unwrap_or_default();
                if !range.starts_with(&format!("bytes {offset}-")) {
                    false_start(writer, progress)?;
                    return Err(Attempt::Retry(format!(
                        "server answered range {offset}- with {range:?}"
                    )));
                }
                true
            }
            401 | 403 => return Err(Attempt::Fatal(self.unauthorized(url))),
            404 => {
                return Err(Attempt::Fatal(RegistryError::BlobNotFound {
                    digest: desc.digest.clone(),
                }))
            }
            416 => {
                // We already hold at least as many bytes as the server has: the blob is
                // shorter than its descriptor says; verification will say so.
                return Ok(());
            }
            s if s == 429 || s >= 500 => {
                return Err(Attempt::Retry(format!("GET {url}: HTTP {s}")))
            }
            s => {
                let mut resp = resp;
                return Err(Attempt::Fatal(RegistryError::Status {
                    url: url.to_string(),
                    status: s,
                    detail: error_detail(&mut resp),
                }));
            }
        };
        if !resumed && offset > 0 {
            // The server sent the whole blob again: start over.
            false_start(writer, progress)?;
        }
        let mut reader = resp.into_body().into_reader();
        let mut buf = vec![0u8; READ_BUF];
        loop {
            if abort.load(Ordering::Relaxed) {
                return Err(Attempt::Fatal(RegistryError::Aborted));
            }
            let n = match reader.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Attempt::Retry(format!("reading {url}: {e}"))),
            };
            if let Err(e) = writer.write_all(&buf[..n]) {
                return Err(Attempt::Fatal(
                    match e.get_ref().and_then(|i| i.downcast_ref::<VerifyError>()) {
                        Some(v) => StoreError::Verify(v.clone()).into(),
                        None => StoreError::Io {
                            path: writer.path().to_path_buf(),
                            source: e,
                        }
                        .into(),
                    },
                ));
            }
            // Killed here, a pull leaves a partly written temporary file.
            stockade_fault::point("pull:blob-partial");
            progress(writer.written());
        }
    }
}

fn false_start(
    writer: &mut crate::store::BlobWriter<'_>,
    progress: &dyn Fn(u64),
) -> Result<(), Attempt> {
    writer.reset().map_err(|source| {
        Attempt::Fatal(
            StoreError::Io {
                path: writer.path().to_path_buf(),
                source,
            }
            .into(),
        )
    })?;
    progress(0);
    Ok(())
}

fn realm_host_is_loopback(realm: &str) -> bool {
    let rest = realm
        .trim_start_matches("http://")
        .trim_start_matches("https://");
    let hostport = rest.split('/').next().unwrap_or(rest);
    format!("{hostport}/x")
        .parse::<Reference>()
        .is_ok_and(|r| r.is_loopback_registry())
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn challenges_of(headers: &HeaderMap) -> Vec<Challenge> {
    headers
        .get_all("www-authenticate")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(auth::parse_challenges)
        .collect()
}

#[derive(serde::Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorEntry>,
}

#[derive(serde::Deserialize)]
struct ErrorEntry {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// The registry's own explanation (`{"errors":[{"code","message"}]}`), if it gave one.
fn error_detail(resp: &mut Response<Body>) -> String {
    let body = resp
        .body_mut()
        .with_config()
        .limit(64 * 1024)
        .read_to_vec()
        .unwrap_or_default();
    match serde_json::from_slice::<ErrorBody>(&body) {
        Ok(e) if !e.errors.is_empty() => e
            .errors
            .iter()
            .map(|e| format!("{}: {}", e.code, e.message))
            .collect::<Vec<_>>()
            .join("; "),
        _ => String::from_utf8_lossy(&body[..body.len().min(200)])
            .trim()
            .to_string(),
    }
}

#[cfg(test)]
mod tests;
