//! The transport of the OCI distribution (v2) client for one repository: the HTTP agent,
//! authenticated GETs (a 401 is answered once through [`super::token`]), manifests, and the
//! registry's error bodies. Blob downloads are in [`super::resume`].

use std::sync::Mutex;
use std::time::Duration;

use ureq::http::{HeaderMap, Method, Request, Response};
use ureq::tls::{RootCerts, TlsConfig};
use ureq::{Agent, Body};

use super::challenge;
use super::credentials::Credentials;
use super::token;
use super::RegistryError;
use crate::oci::digest::{Digest, Hasher};
use crate::oci::manifest::MAX_MANIFEST_SIZE;
use crate::oci::media::MANIFEST_ACCEPT;
use crate::oci::reference::Reference;

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
    /// `<scheme>://<host>/v2/<repository>`: where the API's paths hang.
    pub(super) base: String,
    /// `<scheme>://<host>`: what relative upload locations hang from, and the only origin
    /// our `Authorization` header goes to.
    pub(super) origin: String,
    registry: String,
    pub(super) repository: String,
    credentials: Option<Credentials>,
    allow_plain_http: bool,
    /// Tokens are asked with `pull,push` rather than `pull`.
    push: bool,
    /// The source repository of cross-repository mounts, asked for with `pull`.
    mount_from: Option<String>,
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

impl Client {
    /// A client for the repository `reference` names. Plain HTTP is used for loopback
    /// registries and with `insecure`; HTTPS (system roots) otherwise.
    pub fn new(reference: &Reference, options: ClientOptions) -> Client {
        Client::with_scope(reference, options, false, None)
    }

    /// A client that may write to the repository (tokens are asked with `pull,push`), and
    /// read `mount_from` (a repository of the same registry that blobs are mounted from).
    pub fn for_push(
        reference: &Reference,
        options: ClientOptions,
        mount_from: Option<String>,
    ) -> Client {
        Client::with_scope(reference, options, true, mount_from)
    }

    fn with_scope(
        reference: &Reference,
        options: ClientOptions,
        push: bool,
        mount_from: Option<String>,
    ) -> Client {
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
        let origin = format!("{scheme}://{}", reference.api_host());
        Client {
            agent: Agent::new_with_config(config),
            base: format!("{origin}/v2/{}", reference.repository()),
            origin,
            registry: reference.registry().to_string(),
            repository: reference.repository().to_string(),
            credentials: options.credentials,
            allow_plain_http,
            push,
            mount_from,
            authorization: Mutex::new(None),
        }
    }

    fn current_auth(&self) -> Option<String> {
        self.authorization.lock().map(|g| g.clone()).unwrap_or(None)
    }

    /// A GET with our current authorization; on a 401, answers the challenge once and
    /// retries.
    pub(super) fn get(
        &self,
        url: &str,
        headers: &[(&str, String)],
    ) -> Result<Response<Body>, RegistryError> {
        self.send(Method::GET, url, headers, &[])
    }

    /// A request with our current authorization (sent only to this registry's origin, never
    /// to a host an upload `Location` names); on a 401, answers the challenge once and
    /// retries with the same body.
    pub(super) fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> Result<Response<Body>, RegistryError> {
        let mut answered = false;
        let ours = url.starts_with(&self.origin) && url[self.origin.len()..].starts_with('/');
        loop {
            let sent_auth = self.current_auth().filter(|_| ours);
            let mut req = Request::builder().method(method.clone()).uri(url);
            for (k, v) in headers {
                req = req.header(*k, v.as_str());
            }
            if let Some(a) = &sent_auth {
                req = req.header("Authorization", a.as_str());
            }
            let transport = |source| RegistryError::Http {
                method: method.to_string(),
                url: url.to_string(),
                source,
            };
            let req = req
                .body(body)
                .map_err(|e| transport(ureq::Error::from(e)))?;
            let resp = self.agent.run(req).map_err(transport)?;
            if resp.status().as_u16() != 401 || answered || !ours {
                return Ok(resp);
            }
            answered = true;
            let challenges = challenge::of_headers(resp.headers());
            let answerable = challenges.iter().any(|c| {
                c.scheme == "bearer" || (c.scheme == "basic" && self.credentials.is_some())
            });
            if !answerable {
                // No usable challenge (or no credentials for Basic): the 401 stands.
                return Ok(resp);
            }
            // Free the connection for reuse before asking the token endpoint.
            drop(resp);
            let scope = token::Scope {
                registry: &self.registry,
                repository: &self.repository,
                actions: if self.push { "pull,push" } else { "pull" },
                mount_from: self.mount_from.as_deref(),
                credentials: self.credentials.as_ref(),
                allow_plain_http: self.allow_plain_http,
            };
            if let Some(header) = token::answer(&self.agent, &scope, &challenges)? {
                if let Ok(mut g) = self.authorization.lock() {
                    *g = Some(header);
                }
            }
        }
    }

    pub(super) fn unauthorized(&self, url: &str) -> RegistryError {
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
                    method: "GET".into(),
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
                method: "GET".into(),
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
}

pub(super) fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
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
pub(super) fn error_detail(resp: &mut Response<Body>) -> String {
    let body = resp
        .body_mut()
        .with_config()
        .limit(64 * 1024)
        .read_to_vec()
        .unwrap_or_default();
    match serde_json::from_slice::<ErrorBody>(&body) {
        // The registry is not trusted: a code is shown as is only when it looks like one,
        // messages are quoted (bounded, escaped), and a few entries at most.
        Ok(e) if !e.errors.is_empty() => e
            .errors
            .iter()
            .take(4)
            .map(|e| {
                let plain_code = !e.code.is_empty()
                    && e.code.len() <= 64
                    && e.code.bytes().all(|b| b.is_ascii_uppercase() || b == b'_');
                if plain_code {
                    format!("{}: {}", e.code, stockade_quote::quote(&e.message))
                } else {
                    format!(
                        "{}: {}",
                        stockade_quote::quote(&e.code),
                        stockade_quote::quote(&e.message)
                    )
                }
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ if body.iter().all(u8::is_ascii_whitespace) => String::new(),
        _ => stockade_quote::quote(String::from_utf8_lossy(&body).trim()).to_string(),
    }
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
