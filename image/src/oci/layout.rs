//! OCI image layout directories (`oci-layout`, `index.json`, `blobs/<alg>/<hex>`): reading
//! one, creating one, and walking the blobs an image needs.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::oci::digest::Digest;
use crate::oci::manifest::{self, Descriptor, Index, ManifestError, Parsed, MAX_MANIFEST_SIZE};
use crate::oci::media;

/// The content of `oci-layout` that we write and accept.
pub const OCI_LAYOUT_FILE: &str = "oci-layout";
pub const INDEX_FILE: &str = "index.json";
pub const LAYOUT_VERSION_JSON: &str = "{\"imageLayoutVersion\":\"1.0.0\"}";

/// What went wrong reading or writing a layout.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("{path}: not an OCI image layout (no readable oci-layout file): {source}")]
    NotALayout { path: PathBuf, source: io::Error },
    #[error(
        "{path}: unsupported imageLayoutVersion {}; accepted: 1.x",
        stockade_quote::quote(version)
    )]
    Version { path: PathBuf, version: String },
    #[error("{path}: invalid JSON: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("blob {digest} is missing from {layout}")]
    MissingBlob { layout: PathBuf, digest: Digest },
    #[error("blob {digest} in {layout} is {actual} bytes, larger than the {limit}-byte limit for manifests and configs")]
    TooLarge {
        layout: PathBuf,
        digest: Digest,
        actual: u64,
        limit: u64,
    },
    #[error(transparent)]
    Manifest(#[from] ManifestError),
}

impl LayoutError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> LayoutError {
        let path = path.into();
        move |source| LayoutError::Io { path, source }
    }
}

/// An OCI image layout directory that exists and has a valid `oci-layout` file.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct LayoutVersion {
    image_layout_version: String,
}

impl Layout {
    /// Opens an existing layout, checking its `oci-layout` version.
    pub fn open(root: &Path) -> Result<Layout, LayoutError> {
        let path = root.join(OCI_LAYOUT_FILE);
        let bytes = fs::read(&path).map_err(|source| LayoutError::NotALayout {
            path: root.to_path_buf(),
            source,
        })?;
        let v: LayoutVersion =
            serde_json::from_slice(&bytes).map_err(|source| LayoutError::Json {
                path: path.clone(),
                source,
            })?;
        if !v.image_layout_version.starts_with("1.") {
            return Err(LayoutError::Version {
                path,
                version: v.image_layout_version,
            });
        }
        Ok(Layout {
            root: root.to_path_buf(),
        })
    }

    /// Creates the skeleton of a layout (`oci-layout`, `blobs/sha256/`, an empty `index.json`
    /// if there is none) and opens it.
    pub fn create(root: &Path) -> Result<Layout, LayoutError> {
        let blobs = root.join("blobs").join("sha256");
        fs::create_dir_all(&blobs).map_err(LayoutError::io(&blobs))?;
        let marker = root.join(OCI_LAYOUT_FILE);
        if !marker.exists() {
            fs::write(&marker, LAYOUT_VERSION_JSON).map_err(LayoutError::io(&marker))?;
        }
        let index = root.join(INDEX_FILE);
        if !index.exists() {
            write_json(&index, &Index::empty())?;
        }
        Layout::open(root)
    }

    /// The layout's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where a blob lives (whether or not it exists).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(digest.algorithm().name())
            .join(digest.hex())
    }

    /// The blob's size if it exists.
    pub fn blob_size(&self, digest: &Digest) -> Option<u64> {
        fs::metadata(self.blob_path(digest))
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len())
    }

    /// Opens a blob for reading.
    pub fn open_blob(&self, digest: &Digest) -> Result<fs::File, LayoutError> {
        fs::File::open(self.blob_path(digest)).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => LayoutError::MissingBlob {
                layout: self.root.clone(),
                digest: digest.clone(),
            },
            _ => LayoutError::Io {
                path: self.blob_path(digest),
                source,
            },
        })
    }

    /// Reads a small blob (a manifest, index or config) whole.
    pub fn read_small_blob(&self, digest: &Digest) -> Result<Vec<u8>, LayoutError> {
        let file = self.open_blob(digest)?;
        let path = self.blob_path(digest);
        let len = file.metadata().map_err(LayoutError::io(&path))?.len();
        if len > MAX_MANIFEST_SIZE {
            return Err(LayoutError::TooLarge {
                layout: self.root.clone(),
                digest: digest.clone(),
                actual: len,
                limit: MAX_MANIFEST_SIZE,
            });
        }
        let mut buf = Vec::with_capacity(len as usize);
        file.take(MAX_MANIFEST_SIZE)
            .read_to_end(&mut buf)
            .map_err(LayoutError::io(&path))?;
        Ok(buf)
    }

    /// Reads `index.json`.
    pub fn read_index(&self) -> Result<Index, LayoutError> {
        read_json(&self.root.join(INDEX_FILE))
    }

    /// Reads and parses the manifest or index a descriptor points to.
    pub fn read_manifest(&self, desc: &Descriptor) -> Result<(Vec<u8>, Parsed), LayoutError> {
        let bytes = self.read_small_blob(&desc.digest)?;
        let parsed = manifest::parse(&bytes, Some(&desc.media_type), &desc.digest.to_string())?;
        Ok((bytes, parsed))
    }
}

/// Whether a media type is a manifest or index whose children must be walked.
pub fn is_manifest_type(media_type: &str) -> bool {
    matches!(
        media_type,
        media::OCI_MANIFEST | media::OCI_INDEX | media::DOCKER_MANIFEST | media::DOCKER_LIST
    )
}

/// The descriptors a manifest or index refers to directly.
pub fn children(parsed: &Parsed) -> Vec<Descriptor> {
    match parsed {
        Parsed::Image(m) => std::iter::once(m.config.clone())
            .chain(m.layers.iter().cloned())
            .collect(),
        Parsed::Index(i) => i.manifests.clone(),
    }
}

/// Reads a JSON file.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, LayoutError> {
    let bytes = fs::read(path).map_err(LayoutError::io(path))?;
    serde_json::from_slice(&bytes).map_err(|source| LayoutError::Json {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes a JSON file atomically: a sibling temporary file, synced, then renamed over.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), LayoutError> {
    // Serialising our own plain data types cannot fail; map it anyway rather than panic.
    let bytes = serde_json::to_vec(value).map_err(|source| LayoutError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    write_atomic(path, &bytes)
}

/// Writes bytes to `path` through a temporary sibling and a rename, so readers see the old
/// content or the new, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), LayoutError> {
    use std::io::Write;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(LayoutError::io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_makes_a_layout_that_opens() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(dir.path()).unwrap();
        assert!(dir.path().join("blobs/sha256").is_dir());
        assert_eq!(
            fs::read_to_string(dir.path().join(OCI_LAYOUT_FILE)).unwrap(),
            LAYOUT_VERSION_JSON
        );
        assert!(layout.read_index().unwrap().manifests.is_empty());
    }

    #[test]
    fn open_refuses_a_directory_without_oci_layout_or_with_version_2() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            Layout::open(dir.path()),
            Err(LayoutError::NotALayout { .. })
        ));
        fs::write(
            dir.path().join(OCI_LAYOUT_FILE),
            r#"{"imageLayoutVersion":"2.0.0"}"#,
        )
        .unwrap();
        assert!(matches!(
            Layout::open(dir.path()),
            Err(LayoutError::Version { .. })
        ));
    }

    #[test]
    fn missing_blob_error_names_the_digest() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(dir.path()).unwrap();
        let d = Digest::sha256_of(b"absent");
        let err = layout.open_blob(&d).unwrap_err();
        assert!(matches!(err, LayoutError::MissingBlob { .. }));
        assert!(err.to_string().contains(&d.to_string()));
    }
}
