//! Per-registry settings from the config file (`[registries."HOST"]`): plain HTTP, the auth
//! file to read, and mirrors. A pull tries each mirror of the image's registry in order,
//! asking it for the same repository path (as containers-registries.conf mirrors do), and
//! falls back to the registry itself. A mirror is trusted no more than the registry: the
//! pull verifies every digest whichever host answered.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::oci::reference::{Reference, ReferenceError};

/// What the config file says about one registry host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostSettings {
    /// Plain HTTP for this host (loopback hosts always get it).
    pub insecure: bool,
    /// `host[:port]` of mirrors, tried in order before the registry.
    pub mirrors: Vec<String>,
    /// The auth file to read credentials for this host from (when no `--authfile` or
    /// `--creds` is given).
    pub auth_file: Option<PathBuf>,
}

/// The `[registries."HOST"]` tables, by host as references name it (`docker.io` for Docker
/// Hub).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryHosts(BTreeMap<String, HostSettings>);

impl RegistryHosts {
    pub fn new(hosts: BTreeMap<String, HostSettings>) -> RegistryHosts {
        RegistryHosts(hosts)
    }

    /// The settings for `registry`, if the file has any.
    pub fn get(&self, registry: &str) -> Option<&HostSettings> {
        self.0.get(registry)
    }
}

/// Errors of a mirror's name.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error(
        "mirror {}: expected host[:port] (no scheme, no path), e.g. mirror.example:5000",
        stockade_quote::quote(mirror)
    )]
    NotAHost { mirror: String },
    #[error("mirror {}: {source}", stockade_quote::quote(mirror))]
    Reference {
        mirror: String,
        source: ReferenceError,
    },
}

/// Checks that `mirror` is a `host[:port]` a reference can name as its registry.
pub fn check_mirror(mirror: &str) -> Result<(), MirrorError> {
    let probe = format!("{mirror}/probe:latest");
    let not_a_host = || MirrorError::NotAHost {
        mirror: mirror.to_string(),
    };
    if mirror.is_empty() || mirror.contains(['/', '@', ' ']) || mirror.contains("://") {
        return Err(not_a_host());
    }
    match probe.parse::<Reference>() {
        Ok(r) if r.registry() == mirror => Ok(()),
        Ok(_) => Err(not_a_host()),
        Err(source) => Err(MirrorError::Reference {
            mirror: mirror.to_string(),
            source,
        }),
    }
}

/// `reference` with its registry replaced by `mirror`: same repository, tag and digest.
pub fn on_mirror(reference: &Reference, mirror: &str) -> Result<Reference, MirrorError> {
    check_mirror(mirror)?;
    let mut s = format!("{mirror}/{}", reference.repository());
    if let Some(t) = reference.tag() {
        s.push(':');
        s.push_str(t);
    }
    if let Some(d) = reference.digest() {
        s.push('@');
        s.push_str(&d.to_string());
    }
    s.parse().map_err(|source| MirrorError::Reference {
        mirror: mirror.to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrors_are_hosts_and_keep_the_repository_path() {
        check_mirror("mirror.example:5000").unwrap();
        check_mirror("127.0.0.1:5001").unwrap();
        for bad in [
            "",
            "http://m.example",
            "m.example/path",
            "m.example@x",
            "nodots",
        ] {
            assert!(check_mirror(bad).is_err(), "{bad}");
        }
        let r: Reference = "alpine:3.20".parse().unwrap();
        let m = on_mirror(&r, "127.0.0.1:5001").unwrap();
        assert_eq!(m.to_string(), "127.0.0.1:5001/library/alpine:3.20");
    }
}
