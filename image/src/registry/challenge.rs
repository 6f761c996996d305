//! `WWW-Authenticate` challenges (RFC 7235), as registries send them with a 401.

use std::collections::BTreeMap;

use ureq::http::HeaderMap;

/// One parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// `bearer` or `basic` (lowercased).
    pub scheme: String,
    /// Parameters such as `realm`, `service`, `scope`, with lowercased keys.
    pub params: BTreeMap<String, String>,
}

impl Challenge {
    /// A parameter's value.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params.get(key).map(String::as_str)
    }
}

/// Parses a `WWW-Authenticate` header value (RFC 7235): one or more challenges, each a
/// scheme followed by comma-separated `key=value` or `key="quoted \" value"` parameters.
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut out: Vec<Challenge> = Vec::new();
    let mut rest = header.trim();
    while !rest.is_empty() {
        // A token followed by '=' is a parameter of the current challenge; a token followed
        // by a space (or the end) starts a new challenge.
        let token_end = rest
            .find(|c: char| c == '=' || c == ',' || c.is_whitespace())
            .unwrap_or(rest.len());
        let token = &rest[..token_end];
        let after = rest[token_end..].trim_start();
        if after.starts_with('=') && !out.is_empty() && !token.is_empty() {
            let (value, remaining) = parse_value(after[1..].trim_start());
            if let Some(current) = out.last_mut() {
                current.params.insert(token.to_ascii_lowercase(), value);
            }
            rest = remaining.trim_start().trim_start_matches(',').trim_start();
        } else if token.is_empty() {
            rest = after.trim_start_matches(',').trim_start();
        } else {
            out.push(Challenge {
                scheme: token.to_ascii_lowercase(),
                params: BTreeMap::new(),
            });
            rest = after.trim_start_matches(',').trim_start();
        }
    }
    out
}

fn parse_value(s: &str) -> (String, &str) {
    if let Some(quoted) = s.strip_prefix('"') {
        let mut value = String::new();
        let mut chars = quoted.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, escaped)) = chars.next() {
                        value.push(escaped);
                    }
                }
                '"' => return (value, &quoted[i + 1..]),
                other => value.push(other),
            }
        }
        (value, "")
    } else {
        let end = s.find(',').unwrap_or(s.len());
        (s[..end].trim().to_string(), &s[end..])
    }
}

/// Every challenge of every `WWW-Authenticate` header of a response.
pub fn of_headers(headers: &HeaderMap) -> Vec<Challenge> {
    headers
        .get_all("www-authenticate")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(parse_challenges)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_bearer_challenge_parses() {
        let h = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#;
        let c = parse_challenges(h);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(c[0].param("service"), Some("registry.docker.io"));
        assert_eq!(c[0].param("scope"), Some("repository:library/alpine:pull"));
    }

    #[test]
    fn basic_challenge_unquoted_values_escapes_and_two_challenges_parse() {
        let c = parse_challenges(r#"Basic realm="basic-realm""#);
        assert_eq!(
            (c[0].scheme.as_str(), c[0].param("realm")),
            ("basic", Some("basic-realm"))
        );

        let c = parse_challenges(
            r#"Bearer realm=http://127.0.0.1:1/token, service="a \"quoted\" svc", Basic realm="x""#,
        );
        assert_eq!(c.len(), 2, "{c:?}");
        assert_eq!(c[0].param("realm"), Some("http://127.0.0.1:1/token"));
        assert_eq!(c[0].param("service"), Some("a \"quoted\" svc"));
        assert_eq!(c[1].scheme, "basic");
        assert_eq!(c[1].param("realm"), Some("x"));
    }
}
