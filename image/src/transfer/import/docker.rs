//! Importing `docker save` archives (both the classic layout and Docker 25's OCI-shaped
//! one): `manifest.json` lists, per image, a config file, layer files and `RepoTags`.

use std::collections::HashMap;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use super::oci::config_platform;
use super::{io_err, open_tar, store_name, Compression, ImportError, ImportOptions};
use crate::oci::digest::{Algorithm, Digest};
use crate::oci::manifest::Descriptor;
use crate::oci::media;

const SMALL_MEMBER: u64 = 1 << 20;
use crate::store::{Store, StoredImage};

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Entry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// A file of the archive: in memory (small JSON files) or already a blob in the store.
enum Member {
    Bytes(Vec<u8>),
    Blob(Digest, u64),
}

/// Imports every image of a `docker save` archive.
pub(super) fn import(
    store: &Store,
    path: &Path,
    opts: &ImportOptions,
) -> Result<Vec<StoredImage>, ImportError> {
    let invalid = |detail: String| ImportError::Invalid {
        path: path.to_path_buf(),
        detail,
    };
    let mut members: HashMap<String, Member> = HashMap::new();
    let mut links: HashMap<String, String> = HashMap::new();
    let mut archive = open_tar(path)?;
    for entry in archive.entries().map_err(io_err(path))? {
        let mut entry = entry.map_err(io_err(path))?;
        let name = normalize(&entry.path().map_err(io_err(path))?);
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            // Classic archives link a repeated layer to its first copy.
            if let Some(target) = entry.link_name().map_err(io_err(path))? {
                let target = if kind.is_symlink() {
                    let base = Path::new(&name).parent().unwrap_or(Path::new(""));
                    normalize(&base.join(target))
                } else {
                    normalize(&target)
                };
                links.insert(name, target);
            }
            continue;
        }
        if !kind.is_file() {
            continue;
        }
        let size = entry.header().size().map_err(io_err(path))?;
        // Small members (manifest.json, configs, VERSION files) stay in memory so that
        // only what manifest.json refers to ends up in the store.
        let member = if size <= SMALL_MEMBER {
            let mut buf = Vec::with_capacity(size as usize);
            entry.read_to_end(&mut buf).map_err(io_err(path))?;
            Member::Bytes(buf)
        } else {
            let mut w = store.blob_writer(Algorithm::Sha256)?;
            io::copy(&mut entry, &mut w).map_err(io_err(path))?;
            let (digest, size) = w.commit(None)?;
            Member::Blob(digest, size)
        };
        members.insert(name, member);
    }
    let manifest_json = match members.get("manifest.json") {
        Some(Member::Bytes(b)) => b,
        _ => {
            return Err(invalid(
                "not a docker archive: it has no manifest.json".into(),
            ))
        }
    };
    let entries: Vec<Entry> = serde_json::from_slice(manifest_json)
        .map_err(|e| invalid(format!("manifest.json is not a docker save manifest: {e}")))?;
    if entries.is_empty() {
        return Err(invalid("manifest.json lists no images".into()));
    }
    let tagged: usize = entries
        .iter()
        .map(|e| e.repo_tags.as_ref().map_or(1, Vec::len).max(1))
        .sum();
    if opts.tag.is_some() && entries.len() > 1 {
        let names: Vec<String> = entries
            .iter()
            .flat_map(|e| e.repo_tags.clone().unwrap_or_default())
            .collect();
        return Err(ImportError::Ambiguous {
            path: path.to_path_buf(),
            count: entries.len(),
            names: names.join(", "),
        });
    }
    let mut out = Vec::with_capacity(tagged);
    for entry in &entries {
        let names: Vec<String> = match (&opts.tag, &entry.repo_tags) {
            (Some(t), _) => vec![t.to_string()],
            (None, Some(tags)) if !tags.is_empty() => tags
                .iter()
                .map(|t| store_name(path, t))
                .collect::<Result<_, _>>()?,
            (None, _) => {
                return Err(ImportError::NeedsTag {
                    path: path.to_path_buf(),
                    name: entry.config.clone(),
                })
            }
        };
        let descriptor = build_image(store, path, entry, &members, &links)?;
        for name in names {
            store.set_ref(&name, &descriptor)?;
            out.push(StoredImage {
                name,
                descriptor: descriptor.clone(),
            });
        }
    }
    Ok(out)
}

/// Stores the config and an OCI manifest for one `manifest.json` entry.
fn build_image(
    store: &Store,
    path: &Path,
    entry: &Entry,
    members: &HashMap<String, Member>,
    links: &HashMap<String, String>,
) -> Result<Descriptor, ImportError> {
    let lookup = |name: &str| -> Result<&Member, ImportError> {
        let mut name = normalize(Path::new(name));
        // Follow links, but not forever.
        for _ in 0..16 {
            match links.get(&name) {
                Some(target) => name = target.clone(),
                None => break,
            }
        }
        members.get(&name).ok_or_else(|| ImportError::Invalid {
            path: path.to_path_buf(),
            detail: format!("manifest.json refers to {name}, which the archive does not contain"),
        })
    };
    let (config_digest, config_size) = match lookup(&entry.config)? {
        Member::Bytes(b) => (store.put_bytes(b, None)?, b.len() as u64),
        Member::Blob(d, s) => (d.clone(), *s),
    };
    let mut layers = Vec::with_capacity(entry.layers.len());
    for layer in &entry.layers {
        let (digest, size) = match lookup(layer)? {
            Member::Blob(d, s) => (d.clone(), *s),
            Member::Bytes(b) => (store.put_bytes(b, None)?, b.len() as u64),
        };
        let media_type = match sniff_blob(store, &digest)? {
            Compression::Gzip => media::OCI_LAYER_GZIP,
            Compression::Zstd => media::OCI_LAYER_ZSTD,
            _ => media::OCI_LAYER_TAR,
        };
        layers.push(Descriptor::new(media_type, digest, size));
    }
    let config = Descriptor::new(media::OCI_CONFIG, config_digest.clone(), config_size);
    let mut desc = super::put_manifest(store, config, layers, path)?;
    desc.platform = config_platform(store, &config_digest);
    Ok(desc)
}

fn sniff_blob(store: &Store, digest: &Digest) -> Result<Compression, ImportError> {
    let path = store.layout().blob_path(digest);
    let mut head = [0u8; 6];
    let mut f = store.layout().open_blob(digest)?;
    let n = f.read(&mut head).map_err(io_err(&path))?;
    Ok(Compression::sniff(&head[..n]))
}

/// A tar member name without `./` and with `..` resolved, for matching manifest.json's
/// references against the archive's names.
fn normalize(p: &Path) -> String {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_names_are_normalised() {
        assert_eq!(normalize(Path::new("./abc/layer.tar")), "abc/layer.tar");
        assert_eq!(
            normalize(Path::new("abc/../def/layer.tar")),
            "def/layer.tar"
        );
        assert_eq!(normalize(Path::new("/x/y")), "x/y");
    }
}
