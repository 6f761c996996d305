//! Platforms (`os/architecture[/variant]`) and the choice of one manifest from an index.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
