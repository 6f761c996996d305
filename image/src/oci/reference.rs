//! Image references: `[registry[:port]/]repository[:tag][@sha256:…]`, with Docker Hub's
//! defaults (`docker.io`, `library/`, `latest`), following the grammar of
//! distribution/reference so that a name means here what it means to docker and skopeo.

use std::fmt;
use std::str::FromStr;

use crate::oci::digest::{Digest, DigestError};

/// The registry a reference without one points to.
pub const DEFAULT_REGISTRY: &str = "docker.io";
/// The host that actually serves `docker.io`'s API.
pub const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";
/// The tag a reference without tag or digest means.
pub const DEFAULT_TAG: &str = "latest";

const MAX_NAME_LEN: usize = 255;
const MAX_TAG_LEN: usize = 128;

/// Which part of a reference is wrong, and what that part accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("image reference is empty; expected [registry[:port]/]repository[:tag][@digest]")]
    Empty,
    #[error(
        "image reference {}: registry {} is not a valid host[:port]",
        stockade_quote::quote(reference),
        stockade_quote::quote(registry)
    )]
    Registry { reference: String, registry: String },
    #[error(
        "image reference {reference:?}: repository component {component:?} is invalid; \
         components are lowercase letters and digits separated by '.', '_', '__' or dashes"
    )]
    Repository {
        reference: String,
        component: String,
    },
    #[error(
        "image reference {reference:?}: tag {tag:?} is invalid; a tag is 1 to 128 of \
         [A-Za-z0-9_.-] and does not start with '.' or '-'"
    )]
    Tag { reference: String, tag: String },
    #[error("image reference {}: {source}", stockade_quote::quote(reference))]
    Digest {
        reference: String,
        source: DigestError,
    },
    #[error(
        "image reference {}: repository name is longer than 255 characters",
        stockade_quote::quote(reference)
    )]
    TooLong { reference: String },
}

/// A parsed, normalised image reference. There is always a tag or a digest (or both).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// The registry, normalised (`docker.io` for Docker Hub).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path inside the registry (`library/alpine`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if the reference has one.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if the reference pins one.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// What to ask the registry's manifest endpoint for: the digest when pinned, else the tag.
    pub fn manifest_ref(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            // Parsing guarantees a tag or a digest.
            (None, None) => DEFAULT_TAG.to_string(),
        }
    }

    /// The `host[:port]` to send API requests to.
    pub fn api_host(&self) -> &str {
        if self.registry == DEFAULT_REGISTRY {
            DOCKER_HUB_API_HOST
        } else {
            &self.registry
        }
    }

    /// Whether the registry host is `localhost` or a loopback address, where plain HTTP is
    /// acceptable without `--insecure`.
    pub fn is_loopback_registry(&self) -> bool {
        let host = host_without_port(&self.registry);
        host == "localhost"
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// The same repository with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Result<Reference, ReferenceError> {
        let s = format!("{}/{}:{}", self.registry, self.repository, tag);
        s.parse()
    }

    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
}

fn host_without_port(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        // [v6]:port
        return rest.split(']').next().unwrap_or(rest);
    }
    registry.split(':').next().unwrap_or(registry)
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        if input.is_empty() {
            return Err(ReferenceError::Empty);
        }
        let (rest, digest) = match input.split_once('@') {
            Some((rest, d)) => {
                let digest = d
                    .parse::<Digest>()
                    .map_err(|source| ReferenceError::Digest {
                        reference: input.into(),
                        source,
                    })?;
                (rest, Some(digest))
            }
            None => (input, None),
        };
        // A tag follows the last ':' that comes after the last '/'; an earlier ':' is a port.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let at = last_slash + i;
                (&rest[..at], Some(&rest[at + 1..]))
            }
            None => (rest, None),
        };
        if let Some(t) = tag {
            if !valid_tag(t) {
                return Err(ReferenceError::Tag {
                    reference: input.into(),
                    tag: t.into(),
                });
            }
        }
        let (registry, path) = split_registry(name);
        let registry = match registry {
            Some(r) if valid_registry(r) => {
                if r == "index.docker.io" || r == DOCKER_HUB_API_HOST {
                    DEFAULT_REGISTRY.to_string()
                } else {
                    r.to_string()
                }
            }
            Some(r) => {
                return Err(ReferenceError::Registry {
                    reference: input.into(),
                    registry: r.into(),
                })
            }
            None => DEFAULT_REGISTRY.to_string(),
        };
        for component in path.split('/') {
            if !valid_path_component(component) {
                return Err(ReferenceError::Repository {
                    reference: input.into(),
                    component: component.into(),
                });
            }
        }
        let repository = if registry == DEFAULT_REGISTRY && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_string()
        };
        if registry.len() + 1 + repository.len() > MAX_NAME_LEN {
            return Err(ReferenceError::TooLong {
                reference: input.into(),
            });
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, Some(_)) => None,
            (None, None) => Some(DEFAULT_TAG.to_string()),
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }
}

/// Docker's rule: the first component is a registry when it has a '.' or a ':', is
/// `localhost`, or has an uppercase letter (repositories never do).
fn split_registry(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.starts_with('[')
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (Some(first), rest)
        }
        _ => (None, name),
    }
}

fn valid_registry(r: &str) -> bool {
    let (host, port) = if let Some(rest) = r.strip_prefix('[') {
        match rest.split_once(']') {
            Some((v6, after)) => {
                if v6.parse::<std::net::Ipv6Addr>().is_err() {
                    return false;
                }
                (None, after.strip_prefix(':'))
            }
            None => return false,
        }
    } else {
        match r.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(r), None),
        }
    };
    if let Some(host) = host {
        let ok = !host.is_empty()
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
        if !ok {
            return false;
        }
    }
    match port {
        Some(p) => !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()),
        None => true,
    }
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn valid_path_component(c: &str) -> bool {
    let bytes = c.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `[\w][\w.-]{0,127}`
fn valid_tag(t: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    !t.is_empty()
        && t.len() <= MAX_TAG_LEN
        && word(t.as_bytes()[0])
        && t.bytes().all(|b| word(b) || b == b'.' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn references_normalise_like_docker() {
        let table: &[(&str, &str, &str, Option<&str>, bool)] = &[
            // input, registry, repository, tag, has digest
            (
                "alpine",
                "docker.io",
                "library/alpine",
                Some("latest"),
                false,
            ),
            (
                "alpine:3.19",
                "docker.io",
                "library/alpine",
                Some("3.19"),
                false,
            ),
            (
                "freebsd/freebsd-runtime:14.3",
                "docker.io",
                "freebsd/freebsd-runtime",
                Some("14.3"),
                false,
            ),
            (
                "docker.io/alpine",
                "docker.io",
                "library/alpine",
                Some("latest"),
                false,
            ),
            (
                "index.docker.io/library/alpine",
                "docker.io",
                "library/alpine",
                Some("latest"),
                false,
            ),
            ("localhost/foo", "localhost", "foo", Some("latest"), false),
            (
                "localhost:5000/a/b/c:v1",
                "localhost:5000",
                "a/b/c",
                Some("v1"),
                false,
            ),
            (
                "127.0.0.1:35000/test/img:multi",
                "127.0.0.1:35000",
                "test/img",
                Some("multi"),
                false,
            ),
            (
                "ghcr.io/owner/repo",
                "ghcr.io",
                "owner/repo",
                Some("latest"),
                false,
            ),
            ("[::1]:5000/x", "[::1]:5000", "x", Some("latest"), false),
            (
                "my-reg.example.com/a__b/c-d.e",
                "my-reg.example.com",
                "a__b/c-d.e",
                Some("latest"),
                false,
            ),
        ];
        for (input, registry, repo, tag, _) in table {
            let r: Reference = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.registry(), *registry, "{input}");
            assert_eq!(r.repository(), *repo, "{input}");
            assert_eq!(r.tag(), *tag, "{input}");
            assert!(r.digest().is_none(), "{input}");
        }
    }

    #[test]
    fn digest_references_keep_the_digest_and_have_no_default_tag() {
        let r: Reference = format!("alpine@{D}").parse().unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest().unwrap().to_string(), D);
        assert_eq!(r.manifest_ref(), D);
        assert_eq!(r.to_string(), format!("docker.io/library/alpine@{D}"));

        let r: Reference = format!("localhost:5000/a:v1@{D}").parse().unwrap();
        assert_eq!(r.tag(), Some("v1"));
        assert_eq!(r.manifest_ref(), D, "the digest wins over the tag");
    }

    #[test]
    fn malformed_references_name_the_wrong_part() {
        type Check = fn(&ReferenceError) -> bool;
        let table: &[(&str, Check)] = &[
            ("", |e| matches!(e, ReferenceError::Empty)),
            ("Alpine", |e| matches!(e, ReferenceError::Repository { .. })),
            ("alpine:", |e| matches!(e, ReferenceError::Tag { .. })),
            ("alpine:-x", |e| matches!(e, ReferenceError::Tag { .. })),
            ("alpine:a/b", |e| {
                matches!(e, ReferenceError::Registry { .. })
            }),
            ("a//b", |e| matches!(e, ReferenceError::Repository { .. })),
            ("a/b_-c", |e| matches!(e, ReferenceError::Repository { .. })),
            ("bad_host.com:port/x", |e| {
                matches!(e, ReferenceError::Registry { .. })
            }),
            ("alpine@sha256:1234", |e| {
                matches!(e, ReferenceError::Digest { .. })
            }),
            ("alpine@md5:1234", |e| {
                matches!(e, ReferenceError::Digest { .. })
            }),
        ];
        for (input, check) in table {
            let err = input.parse::<Reference>().unwrap_err();
            assert!(check(&err), "{input:?}: unexpected {err:?}");
            if !input.is_empty() {
                assert!(err.to_string().contains(input), "{err} names the input");
            }
        }
        let long = format!("a/{}", "b".repeat(300));
        assert!(matches!(
            long.parse::<Reference>(),
            Err(ReferenceError::TooLong { .. })
        ));
    }

    #[test]
    fn docker_hub_is_served_by_its_api_host_and_loopback_is_recognised() {
        let hub: Reference = "alpine".parse().unwrap();
        assert_eq!(hub.api_host(), DOCKER_HUB_API_HOST);
        assert!(!hub.is_loopback_registry());
        for local in [
            "localhost:5000/x",
            "127.0.0.1:5000/x",
            "[::1]:5000/x",
            "127.9.9.9/x",
        ] {
            let r: Reference = local.parse().unwrap();
            assert!(r.is_loopback_registry(), "{local}");
            assert_eq!(r.api_host(), r.registry());
        }
        let remote: Reference = "10.0.0.1:5000/x".parse().unwrap();
        assert!(!remote.is_loopback_registry());
    }

    #[test]
    fn display_is_canonical_and_reparses_to_the_same_reference() {
        for input in ["alpine", "localhost:5000/a/b:v1", "ghcr.io/o/r:1.0"] {
            let r: Reference = input.parse().unwrap();
            let again: Reference = r.to_string().parse().unwrap();
            assert_eq!(r, again);
        }
        let r: Reference = "alpine:3".parse().unwrap();
        assert_eq!(r.to_string(), "docker.io/library/alpine:3");
        assert_eq!(
            r.with_tag("4").unwrap().to_string(),
            "docker.io/library/alpine:4"
        );
    }
}
