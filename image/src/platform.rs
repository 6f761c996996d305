//! Platforms (`os/architecture[/variant]`) and the choice of one manifest from an index.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::manifest::Descriptor;

/// A platform as OCI descriptors and image configs describe it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(
        rename = "os.features",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_features: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// Why a `--platform` value is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("platform {} is invalid; expected os/architecture[/variant], e.g. freebsd/amd64 or linux/arm64/v8", stockade_quote::quote(value))]
pub struct PlatformParseError {
    pub value: String,
}

impl Platform {
    /// A platform from its parts, with Go's architecture names (`amd64`, `arm64`).
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        Platform {
            os: os.to_string(),
            architecture: normalize_arch(architecture).to_string(),
            variant: variant.map(str::to_string),
            ..Platform::default()
        }
    }

    /// The platform this program was built for: freebsd/amd64 on FreeBSD amd64.
    pub fn host() -> Platform {
        let os = match std::env::consts::OS {
            "macos" => "darwin",
            other => other,
        };
        let (arch, variant) = match std::env::consts::ARCH {
            "aarch64" => ("arm64", None),
            "arm" => ("arm", Some("v7")),
            other => (other, None),
        };
        Platform::new(os, arch, variant)
    }

    /// Whether an index entry with platform `offered` serves a request for `self`. A
    /// request without a variant accepts any variant; `arm64` without a variant is `v8`.
    pub fn matches(&self, offered: &Platform) -> bool {
        if self.os != offered.os
            || normalize_arch(&self.architecture) != normalize_arch(&offered.architecture)
        {
            return false;
        }
        match &self.variant {
            None => true,
            Some(want) => {
                let arch = normalize_arch(&self.architecture);
                normalize_variant(arch, Some(want))
                    == normalize_variant(arch, offered.variant.as_deref())
            }
        }
    }
}

fn normalize_arch(arch: &str) -> &str {
    match arch {
        "x86_64" | "x86-64" => "amd64",
        "aarch64" => "arm64",
        "i386" | "i686" | "x86" => "386",
        other => other,
    }
}

fn normalize_variant<'a>(arch: &str, variant: Option<&'a str>) -> Option<&'a str> {
    match (arch, variant) {
        ("arm64", None) => Some("v8"),
        (_, v) => v,
    }
}

impl FromStr for Platform {
    type Err = PlatformParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split('/').collect();
        let ok_part = |p: &&str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        };
        if !(2..=3).contains(&parts.len()) || !parts.iter().all(ok_part) {
            return Err(PlatformParseError { value: s.into() });
        }
        Ok(Platform::new(
            &parts[0].to_ascii_lowercase(),
            &parts[1].to_ascii_lowercase(),
            parts.get(2).map(|v| v.to_ascii_lowercase()).as_deref(),
        ))
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// The first entry of an index that serves `want`, or the list of what the index offers.
/// Entries without a platform and attestation entries (`unknown/unknown`) are never chosen.
pub fn select<'a>(
    manifests: &'a [Descriptor],
    want: &Platform,
) -> Result<&'a Descriptor, Vec<String>> {
    manifests
        .iter()
        .find(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| p.os != "unknown" && want.matches(p))
        })
        .ok_or_else(|| offered(manifests))
}

/// The platforms an index lists, as `os/arch[/variant]` strings, without attestations.
pub fn offered(manifests: &[Descriptor]) -> Vec<String> {
    manifests
        .iter()
        .filter_map(|d| d.platform.as_ref())
        .filter(|p| p.os != "unknown")
        .map(Platform::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;

    fn entry(platform: Option<Platform>, tag: &[u8]) -> Descriptor {
        Descriptor {
            media_type: crate::manifest::OCI_MANIFEST.into(),
            digest: Digest::sha256_of(tag),
            size: 1,
            platform,
            annotations: None,
            urls: None,
        }
    }

    #[test]
    fn host_platform_uses_go_names() {
        let host = Platform::host();
        assert_eq!(host.os, std::env::consts::OS);
        if cfg!(target_arch = "x86_64") {
            assert_eq!(host.architecture, "amd64");
        }
        if cfg!(all(target_os = "freebsd", target_arch = "x86_64")) {
            assert_eq!(host.to_string(), "freebsd/amd64");
        }
    }

    #[test]
    fn parse_accepts_two_or_three_parts_and_normalises_arch() {
        let p: Platform = "freebsd/amd64".parse().unwrap();
        assert_eq!(
            (p.os.as_str(), p.architecture.as_str(), p.variant.as_deref()),
            ("freebsd", "amd64", None)
        );
        let p: Platform = "linux/aarch64/v8".parse().unwrap();
        assert_eq!(p.to_string(), "linux/arm64/v8");
        let p: Platform = "Linux/X86_64".parse().unwrap();
        assert_eq!(p.to_string(), "linux/amd64");
        for bad in ["", "linux", "linux/", "a/b/c/d", "linux/am d64"] {
            assert!(bad.parse::<Platform>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn select_picks_the_matching_entry_not_the_first() {
        let list = vec![
            entry(Some(Platform::new("linux", "amd64", None)), b"linux"),
            entry(Some(Platform::new("freebsd", "amd64", None)), b"freebsd"),
        ];
        let got = select(&list, &"freebsd/amd64".parse().unwrap()).unwrap();
        assert_eq!(got.digest, Digest::sha256_of(b"freebsd"));
        let got = select(&list, &"linux/amd64".parse().unwrap()).unwrap();
        assert_eq!(got.digest, Digest::sha256_of(b"linux"));
    }

    #[test]
    fn variants_must_match_when_asked_and_arm64_defaults_to_v8() {
        let list = vec![
            entry(Some(Platform::new("linux", "arm", Some("v6"))), b"v6"),
            entry(Some(Platform::new("linux", "arm", Some("v7"))), b"v7"),
            entry(Some(Platform::new("linux", "arm64", None)), b"arm64"),
        ];
        let got = select(&list, &"linux/arm/v7".parse().unwrap()).unwrap();
        assert_eq!(got.digest, Digest::sha256_of(b"v7"));
        let got = select(&list, &"linux/arm64/v8".parse().unwrap()).unwrap();
        assert_eq!(got.digest, Digest::sha256_of(b"arm64"));
        assert!(select(&list, &"linux/arm/v5".parse().unwrap()).is_err());
    }

    #[test]
    fn no_match_lists_what_the_index_offers_without_attestations() {
        let list = vec![
            entry(Some(Platform::new("freebsd", "amd64", None)), b"a"),
            entry(Some(Platform::new("linux", "amd64", None)), b"b"),
            entry(Some(Platform::new("unknown", "unknown", None)), b"att"),
            entry(None, b"none"),
        ];
        let offered = select(&list, &"linux/riscv64".parse().unwrap()).unwrap_err();
        assert_eq!(
            offered,
            vec!["freebsd/amd64".to_string(), "linux/amd64".to_string()]
        );
        assert!(select(&list, &"unknown/unknown".parse().unwrap()).is_err());
    }
}
