//! Importing OCI image layouts: a directory, or a tar of one.

use std::io::{self, Read};
use std::path::Path;

use super::{io_err, open_tar, store_name, ImportError, ImportOptions};
use crate::oci::digest::Digest;
use crate::oci::layout::{self, Layout, LayoutError};
use crate::oci::manifest::{ConfigSummary, Descriptor, Index, Parsed, MAX_MANIFEST_SIZE};
use crate::oci::platform::Platform;
use crate::oci::select;
use crate::store::{copy_blob, Store, StoredImage};

/// Imports the images of a layout directory.
pub(super) fn import_dir(
    store: &Store,
    path: &Path,
    opts: &ImportOptions,
) -> Result<Vec<StoredImage>, ImportError> {
    let source = Layout::open(path)?;
    let index = source.read_index()?;
    import_entries(store, &source, index, path, opts)
}

/// Imports the images of an OCI archive. Blobs are streamed straight into the store, each
/// verified against the digest its file name claims; `index.json` is then read from memory
/// and the images it names are checked (every blob present, sizes as described) before
/// they are named.
pub(super) fn import_archive(
    store: &Store,
    path: &Path,
    opts: &ImportOptions,
) -> Result<Vec<StoredImage>, ImportError> {
    let mut archive = open_tar(path)?;
    let mut index_bytes = None;
    let mut layout_bytes = None;
    for entry in archive.entries().map_err(io_err(path))? {
        let mut entry = entry.map_err(io_err(path))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry
            .path()
            .map_err(io_err(path))?
            .to_string_lossy()
            .into_owned();
        let name = name.trim_start_matches("./").to_string();
        match name.as_str() {
            layout::INDEX_FILE => index_bytes = Some(read_small(&mut entry, path, &name)?),
            layout::OCI_LAYOUT_FILE => layout_bytes = Some(read_small(&mut entry, path, &name)?),
            n => {
                let mut parts = n.split('/');
                let (Some("blobs"), Some(alg), Some(hex), None) =
                    (parts.next(), parts.next(), parts.next(), parts.next())
                else {
                    continue;
                };
                let digest: Digest =
                    format!("{alg}:{hex}")
                        .parse()
                        .map_err(|e| ImportError::Invalid {
                            path: path.to_path_buf(),
                            detail: format!("entry {n}: {e}"),
                        })?;
                let size = entry.header().size().map_err(io_err(path))?;
                if store.blob_size(&digest) == Some(size) {
                    continue;
                }
                copy_blob(store, &mut entry, &Descriptor::new("", digest, size))?;
            }
        }
    }
    let missing = |what: &str| ImportError::Invalid {
        path: path.to_path_buf(),
        detail: format!("not an OCI archive: it has no {what}"),
    };
    let layout_bytes = layout_bytes.ok_or_else(|| missing(layout::OCI_LAYOUT_FILE))?;
    check_layout_version(path, &layout_bytes)?;
    let index_bytes = index_bytes.ok_or_else(|| missing(layout::INDEX_FILE))?;
    let index: Index =
        serde_json::from_slice(&index_bytes).map_err(|source| LayoutError::Json {
            path: path.join(layout::INDEX_FILE),
            source,
        })?;
    // Every blob the archive had is in the store now; read the images from there.
    import_entries(store, store.layout(), index, path, opts)
}

fn read_small(entry: &mut impl Read, path: &Path, name: &str) -> Result<Vec<u8>, ImportError> {
    let mut buf = Vec::new();
    entry
        .take(MAX_MANIFEST_SIZE + 1)
        .read_to_end(&mut buf)
        .map_err(io_err(path))?;
    if buf.len() as u64 > MAX_MANIFEST_SIZE {
        return Err(ImportError::Invalid {
            path: path.to_path_buf(),
            detail: format!("{name} is larger than {MAX_MANIFEST_SIZE} bytes"),
        });
    }
    Ok(buf)
}

fn check_layout_version(path: &Path, bytes: &[u8]) -> Result<(), ImportError> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct V {
        image_layout_version: String,
    }
    let v: V = serde_json::from_slice(bytes).map_err(|source| LayoutError::Json {
        path: path.join(layout::OCI_LAYOUT_FILE),
        source,
    })?;
    if !v.image_layout_version.starts_with("1.") {
        return Err(LayoutError::Version {
            path: path.join(layout::OCI_LAYOUT_FILE),
            version: v.image_layout_version,
        }
        .into());
    }
    Ok(())
}

/// Names the images of `index` (whose blobs are in `source`) in the store.
fn import_entries(
    store: &Store,
    source: &Layout,
    index: Index,
    path: &Path,
    opts: &ImportOptions,
) -> Result<Vec<StoredImage>, ImportError> {
    let all_names = || {
        let names: Vec<&str> = index
            .manifests
            .iter()
            .map(|d| d.ref_name().unwrap_or("(unnamed)"))
            .collect();
        names.join(", ")
    };
    let entries: Vec<&Descriptor> = match &opts.source_ref {
        Some(wanted) => {
            let found: Vec<&Descriptor> = index
                .manifests
                .iter()
                .filter(|d| d.ref_name() == Some(wanted.as_str()))
                .collect();
            if found.is_empty() {
                return Err(ImportError::NoSuchRef {
                    path: path.to_path_buf(),
                    wanted: wanted.clone(),
                    names: all_names(),
                });
            }
            found
        }
        None => index.manifests.iter().collect(),
    };
    if entries.is_empty() {
        return Err(ImportError::Invalid {
            path: path.to_path_buf(),
            detail: "index.json names no images".into(),
        });
    }
    if opts.tag.is_some() && entries.len() > 1 {
        return Err(ImportError::Ambiguous {
            path: path.to_path_buf(),
            count: entries.len(),
            names: all_names(),
        });
    }
    // Decide every name before copying anything, so a bad name fails early.
    let mut named = Vec::new();
    for entry in entries {
        let name = match &opts.tag {
            Some(t) => t.to_string(),
            None => store_name(path, entry.ref_name().unwrap_or("(unnamed)"))?,
        };
        named.push((name, entry));
    }
    let mut out = Vec::new();
    for (name, entry) in named {
        let descriptor = copy_image(store, source, entry, path, &opts.platform)?;
        store.set_ref(&name, &descriptor)?;
        out.push(StoredImage { name, descriptor });
    }
    Ok(out)
}

/// Copies one image (choosing a platform if `entry` is an index) and returns the
/// descriptor of its manifest as the store should list it.
fn copy_image(
    store: &Store,
    source: &Layout,
    entry: &Descriptor,
    path: &Path,
    want: &Platform,
) -> Result<Descriptor, ImportError> {
    let (_, parsed) = source.read_manifest(entry)?;
    let (manifest_desc, manifest) = match parsed {
        Parsed::Image(m) => (entry.clone(), m),
        Parsed::Index(i) => {
            let chosen =
                select::entry_for(&i.manifests, want).map_err(|offered| ImportError::Platform {
                    path: path.to_path_buf(),
                    wanted: want.to_string(),
                    offered,
                })?;
            let (_, child) = source.read_manifest(chosen)?;
            let Parsed::Image(m) = child else {
                return Err(ImportError::Invalid {
                    path: path.to_path_buf(),
                    detail: format!(
                        "index entry {} is itself an index; nested indexes are not supported",
                        chosen.digest
                    ),
                });
            };
            (chosen.clone(), m)
        }
    };
    for blob in std::iter::once(&manifest.config).chain(&manifest.layers) {
        copy_if_missing(store, source, blob)?;
    }
    copy_if_missing(store, source, &manifest_desc)?;
    let mut desc = Descriptor::new(
        &manifest_desc.media_type,
        manifest_desc.digest.clone(),
        manifest_desc.size,
    );
    desc.platform = match manifest_desc.platform {
        Some(p) => Some(p),
        None => config_platform(store, &manifest.config.digest),
    };
    Ok(desc)
}

/// The platform an image config declares, if it declares one.
pub(super) fn config_platform(store: &Store, config: &Digest) -> Option<Platform> {
    let bytes = store.read_small_blob(config).ok()?;
    let c: ConfigSummary = serde_json::from_slice(&bytes).ok()?;
    (!c.os.is_empty()).then(|| Platform::new(&c.os, &c.architecture, c.variant.as_deref()))
}

fn copy_if_missing(store: &Store, source: &Layout, desc: &Descriptor) -> Result<(), ImportError> {
    if store.blob_size(&desc.digest) == Some(desc.size) {
        return Ok(());
    }
    let mut file = source.open_blob(&desc.digest)?;
    copy_blob(store, &mut file as &mut dyn io::Read, desc)?;
    Ok(())
}
