//! The bearer-token exchange of the distribution spec: answering a 401's challenge with
//! Basic credentials or with a token from the challenge's realm.

use ureq::Agent;

use super::challenge::Challenge;
use super::credentials::Credentials;
use super::RegistryError;
use crate::oci::reference::Reference;

/// Who asks for a token, and what for.
pub struct Scope<'a> {
    /// The registry host, for error messages.
    pub registry: &'a str,
    /// The repository the token is asked for.
    pub repository: &'a str,
    /// The actions asked on `repository`: `pull`, or `pull,push` for a push.
    pub actions: &'a str,
    /// A repository a cross-repository mount reads from: asked with `pull` as a second scope.
    pub mount_from: Option<&'a str>,
    pub credentials: Option<&'a Credentials>,
    /// Plain HTTP is in use for this registry anyway (loopback or `--insecure`), so
    /// credentials may go to a plain-HTTP realm.
    pub allow_plain_http: bool,
}

/// Builds the `Authorization` header that answers a challenge: basic credentials, or a
/// bearer token fetched from the challenge's realm.
pub fn answer(
    agent: &Agent,
    scope: &Scope<'_>,
    challenges: &[Challenge],
) -> Result<Option<String>, RegistryError> {
    if let Some(bearer) = challenges.iter().find(|c| c.scheme == "bearer") {
        return fetch_token(agent, scope, bearer).map(Some);
    }
    if challenges.iter().any(|c| c.scheme == "basic") {
        // An identity token is only good at a token endpoint, never as a password.
        return Ok(scope
            .credentials
            .filter(|c| c.identity_token().is_none())
            .map(Credentials::basic_header));
    }
    Ok(None)
}

/// Asks the challenge's realm for a bearer token: a GET with Basic credentials, or an
/// identity token exchanged by a form POST.
fn fetch_token(
    agent: &Agent,
    scope: &Scope<'_>,
    challenge: &Challenge,
) -> Result<String, RegistryError> {
    let realm = challenge
        .param("realm")
        .ok_or_else(|| RegistryError::Token {
            registry: scope.registry.to_string(),
            detail: "the bearer challenge has no realm".into(),
        })?;
    let plain = realm.starts_with("http://");
    if !plain && !realm.starts_with("https://") {
        return Err(RegistryError::Token {
            registry: scope.registry.to_string(),
            detail: format!("token realm {realm:?} is not an http(s) URL"),
        });
    }
    let realm_is_local = realm_host_is_loopback(realm);
    // Credentials go over plain HTTP only where we would talk plain HTTP anyway.
    let credentials = scope
        .credentials
        .filter(|_| !plain || realm_is_local || scope.allow_plain_http);
    // No repository (a login's check of `/v2/`): a token for the registry alone.
    let mut scopes = Vec::new();
    if !scope.repository.is_empty() {
        scopes.push(format!("repository:{}:{}", scope.repository, scope.actions));
    }
    if let Some(from) = scope.mount_from.filter(|f| *f != scope.repository) {
        scopes.push(format!("repository:{from}:pull"));
    }
    // The OAuth2 form takes the scopes space-separated, the GET one `scope=` each.
    let form_scope = scopes.join(" ");
    let token_err = |detail: String| RegistryError::Token {
        registry: scope.registry.to_string(),
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
            ];
            if !form_scope.is_empty() {
                form.push(("scope", form_scope.as_str()));
            }
            if let Some(service) = challenge.param("service") {
                form.push(("service", service));
            }
            let resp = agent
                .post(realm)
                .send_form(form)
                .map_err(|e| token_err(format!("POST {realm}: {e}")))?;
            ("POST", resp)
        }
        None => {
            let mut query: Vec<String> = Vec::new();
            if let Some(service) = challenge.param("service") {
                query.push(format!("service={}", query_escape(service)));
            }
            query.extend(scopes.iter().map(|s| format!("scope={}", query_escape(s))));
            let mut url = realm.to_string();
            if !query.is_empty() {
                url.push(if realm.contains('?') { '&' } else { '?' });
                url.push_str(&query.join("&"));
            }
            let mut req = agent.get(&url);
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

fn realm_host_is_loopback(realm: &str) -> bool {
    let rest = realm
        .trim_start_matches("http://")
        .trim_start_matches("https://");
    let hostport = rest.split('/').next().unwrap_or(rest);
    format!("{hostport}/x")
        .parse::<Reference>()
        .is_ok_and(|r| r.is_loopback_registry())
}

/// Percent-encodes a query parameter value (RFC 3986 unreserved characters pass).
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The token endpoint's answer; registries use either field name.
#[derive(Debug, serde::Deserialize)]
pub struct TokenResponse {
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub access_token: Option<String>,
}

impl TokenResponse {
    /// The token, whichever field carried it.
    pub fn into_token(self) -> Option<String> {
        self.token.or(self.access_token).filter(|t| !t.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(
            query_escape("repository:a/b:pull"),
            "repository%3Aa%2Fb%3Apull"
        );
        assert_eq!(query_escape("plain-._~"), "plain-._~");
    }

    #[test]
    fn token_response_accepts_either_field() {
        let t: TokenResponse = serde_json::from_str(r#"{"access_token":"x"}"#).unwrap();
        assert_eq!(t.into_token().as_deref(), Some("x"));
        let t: TokenResponse = serde_json::from_str(r#"{"token":"y","access_token":"z"}"#).unwrap();
        assert_eq!(t.into_token().as_deref(), Some("y"));
        let t: TokenResponse = serde_json::from_str(r#"{}"#).unwrap();
        assert!(t.into_token().is_none());
    }

    #[test]
    fn realm_loopback_detection() {
        assert!(realm_host_is_loopback("http://127.0.0.1:9999/token"));
        assert!(realm_host_is_loopback("http://localhost/token?x=1"));
        assert!(!realm_host_is_loopback("http://auth.example/token"));
    }
}
