//! Choosing an index entry for a platform: the one place that reads both descriptors and
//! platforms, so that neither of those modules needs the other.

use crate::oci::manifest::Descriptor;
use crate::oci::platform::Platform;

/// The first entry of an index that serves `want`, or the list of what the index offers.
/// Entries without a platform and attestation entries (`unknown/unknown`) are never chosen.
pub fn entry_for<'a>(
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
    use crate::oci::digest::Digest;

    fn entry(platform: Option<Platform>, tag: &[u8]) -> Descriptor {
        Descriptor {
            media_type: crate::oci::media::OCI_MANIFEST.into(),
            digest: Digest::sha256_of(tag),
            size: 1,
            platform,
            annotations: None,
            urls: None,
        }
    }

    #[test]
    fn select_picks_the_matching_entry_not_the_first() {
        let list = vec![
            entry(Some(Platform::new("linux", "amd64", None)), b"linux"),
            entry(Some(Platform::new("freebsd", "amd64", None)), b"freebsd"),
        ];
        let got = entry_for(&list, &"freebsd/amd64".parse().unwrap()).unwrap();
        assert_eq!(got.digest, Digest::sha256_of(b"freebsd"));
        let got = entry_for(&list, &"linux/amd64".parse().unwrap()).unwrap();
        assert_eq!(got.digest, Digest::sha256_of(b"linux"));
    }

    #[test]
    fn variants_must_match_when_asked_and_arm64_defaults_to_v8() {
        let list = vec![
            entry(Some(Platform::new("linux", "arm", Some("v6"))), b"v6"),
            entry(Some(Platform::new("linux", "arm", Some("v7"))), b"v7"),
            entry(Some(Platform::new("linux", "arm64", None)), b"arm64"),
        ];
        let got = entry_for(&list, &"linux/arm/v7".parse().unwrap()).unwrap();
        assert_eq!(got.digest, Digest::sha256_of(b"v7"));
        let got = entry_for(&list, &"linux/arm64/v8".parse().unwrap()).unwrap();
        assert_eq!(got.digest, Digest::sha256_of(b"arm64"));
        assert!(entry_for(&list, &"linux/arm/v5".parse().unwrap()).is_err());
    }

    #[test]
    fn no_match_lists_what_the_index_offers_without_attestations() {
        let list = vec![
            entry(Some(Platform::new("freebsd", "amd64", None)), b"a"),
            entry(Some(Platform::new("linux", "amd64", None)), b"b"),
            entry(Some(Platform::new("unknown", "unknown", None)), b"att"),
            entry(None, b"none"),
        ];
        let offered = entry_for(&list, &"linux/riscv64".parse().unwrap()).unwrap_err();
        assert_eq!(
            offered,
            vec!["freebsd/amd64".to_string(), "linux/amd64".to_string()]
        );
        assert!(entry_for(&list, &"unknown/unknown".parse().unwrap()).is_err());
    }
}
