//! Manifests, indexes and descriptors in the OCI and Docker v2 schema 2 media types.
//!
//! These are our own small serde types rather than `oci-spec`'s: a manifest's bytes are
//! stored exactly as received (its digest is over those bytes), so parsing only needs the
//! fields that say which blobs to fetch, and it must accept both OCI and Docker documents
//! without rejecting fields or media types it does not know.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::oci::digest::Digest;
use crate::oci::media::{
    DOCKER_LIST, DOCKER_MANIFEST, DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED, OCI_INDEX, OCI_MANIFEST,
    REF_NAME_ANNOTATION,
};
use crate::oci::platform::Platform;

/// Manifests larger than this are refused before parsing (the distribution spec's limit).
pub const MAX_MANIFEST_SIZE: u64 = 4 * 1024 * 1024;

/// A content descriptor: what a blob is, its digest and size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
}

impl Descriptor {
    /// A descriptor without platform, annotations or urls.
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            platform: None,
            annotations: None,
            urls: None,
        }
    }

    /// The `org.opencontainers.image.ref.name` annotation, if any.
    pub fn ref_name(&self) -> Option<&str> {
        self.annotations
            .as_ref()
            .and_then(|a| a.get(REF_NAME_ANNOTATION))
            .map(String::as_str)
    }
}

/// An image manifest (OCI or Docker v2 schema 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// An image index (OCI) or manifest list (Docker).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl Index {
    /// An empty OCI index, as a fresh layout's `index.json`.
    pub fn empty() -> Index {
        Index {
            schema_version: 2,
            media_type: Some(OCI_INDEX.to_string()),
            manifests: Vec::new(),
            annotations: None,
        }
    }
}

/// A manifest document, after deciding what kind it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Image(Box<Manifest>),
    Index(Index),
}

/// Why manifest bytes could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest {what}: media type {} is not supported; accepted: OCI image manifest and index, Docker v2 schema 2 manifest and manifest list", stockade_quote::quote(media_type))]
    MediaType { what: String, media_type: String },
    #[error("manifest {what}: Docker v2 schema 1 manifests are not supported (the image must be re-pushed with schema 2 or OCI)")]
    Schema1 { what: String },
    #[error("manifest {what}: invalid JSON: {source}")]
    Json {
        what: String,
        source: serde_json::Error,
    },
}

/// The few fields that tell what kind of document a manifest is.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    #[serde(default)]
    schema_version: Option<u32>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<serde_json::Value>,
    #[serde(default)]
    config: Option<serde_json::Value>,
}

/// Parses manifest bytes. `content_type` is the media type the server or the referring
/// descriptor gave, if any; the document's own `mediaType` field wins when present.
/// `what` names the manifest in errors (a reference or digest).
pub fn parse(
    bytes: &[u8],
    content_type: Option<&str>,
    what: &str,
) -> Result<Parsed, ManifestError> {
    let json = |source| ManifestError::Json {
        what: what.to_string(),
        source,
    };
    let probe: Probe = serde_json::from_slice(bytes).map_err(json)?;
    let media_type = probe
        .media_type
        .clone()
        .or_else(|| content_type.map(|c| c.split(';').next().unwrap_or(c).trim().to_string()))
        .filter(|m| !m.is_empty() && m != "application/json" && m != "text/plain");
    let kind = match media_type.as_deref() {
        Some(OCI_MANIFEST | DOCKER_MANIFEST) => Kind::Image,
        Some(OCI_INDEX | DOCKER_LIST) => Kind::Index,
        Some(DOCKER_SCHEMA1 | DOCKER_SCHEMA1_SIGNED) => {
            return Err(ManifestError::Schema1 { what: what.into() })
        }
        Some(other) => {
            return Err(ManifestError::MediaType {
                what: what.into(),
                media_type: other.into(),
            })
        }
        None if probe.schema_version == Some(1) => {
            return Err(ManifestError::Schema1 { what: what.into() })
        }
        None if probe.manifests.is_some() => Kind::Index,
        None if probe.config.is_some() => Kind::Image,
        None => {
            return Err(ManifestError::MediaType {
                what: what.into(),
                media_type: "(none)".into(),
            })
        }
    };
    Ok(match kind {
        Kind::Image => Parsed::Image(Box::new(serde_json::from_slice(bytes).map_err(json)?)),
        Kind::Index => Parsed::Index(serde_json::from_slice(bytes).map_err(json)?),
    })
}

enum Kind {
    Image,
    Index,
}

/// The parts of an image config that stockade reads.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ConfigSummary {
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub variant: Option<String>,
    #[serde(default)]
    pub created: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::media::DOCKER_CONFIG;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn manifest_json(media_type: Option<&str>) -> String {
        let mt = media_type
            .map(|m| format!("\"mediaType\":\"{m}\","))
            .unwrap_or_default();
        format!(
            r#"{{"schemaVersion":2,{mt}"config":{{"mediaType":"{DOCKER_CONFIG}","digest":"{D}","size":2}},
            "layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"{D}","size":3,"x-unknown":1}}]}}"#
        )
    }

    #[test]
    fn docker_and_oci_manifests_parse_from_field_or_content_type() {
        for (mt, ct) in [
            (Some(DOCKER_MANIFEST), None),
            (Some(OCI_MANIFEST), None),
            (None, Some(OCI_MANIFEST)),
            (None, None),
        ] {
            let parsed = parse(manifest_json(mt).as_bytes(), ct, "test").unwrap();
            let Parsed::Image(m) = parsed else {
                panic!("{mt:?}/{ct:?} parsed as an index")
            };
            assert_eq!(m.layers.len(), 1);
            assert_eq!(m.layers[0].size, 3);
        }
    }

    #[test]
    fn indexes_parse_with_platforms() {
        let json = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_LIST}","manifests":[
            {{"mediaType":"{DOCKER_MANIFEST}","digest":"{D}","size":5,"platform":{{"os":"freebsd","architecture":"amd64"}}}}]}}"#
        );
        let Parsed::Index(i) = parse(json.as_bytes(), None, "test").unwrap() else {
            panic!("not an index")
        };
        assert_eq!(
            i.manifests[0].platform.as_ref().unwrap().to_string(),
            "freebsd/amd64"
        );
    }

    #[test]
    fn schema1_and_unknown_media_types_are_refused() {
        let s1 = r#"{"schemaVersion":1,"name":"x","fsLayers":[]}"#;
        assert!(matches!(
            parse(s1.as_bytes(), None, "x"),
            Err(ManifestError::Schema1 { .. })
        ));
        let other = manifest_json(Some("application/vnd.example+json"));
        let err = parse(other.as_bytes(), None, "x").unwrap_err();
        assert!(
            err.to_string().contains("application/vnd.example+json"),
            "{err}"
        );
        assert!(matches!(
            parse(b"not json", None, "x"),
            Err(ManifestError::Json { .. })
        ));
    }

    #[test]
    fn a_descriptor_with_an_invalid_digest_is_refused() {
        let bad = manifest_json(None).replace(D, "sha256:1234");
        assert!(matches!(
            parse(bad.as_bytes(), None, "x"),
            Err(ManifestError::Json { .. })
        ));
    }
}
