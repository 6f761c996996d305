//! Exporting a stored image as an OCI image layout directory or an OCI archive (a tar of
//! a layout), readable by skopeo (`oci:` / `oci-archive:`) and umoci.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::oci::digest::{Digest, HashingWriter};
use crate::oci::layout::{self, Layout, LayoutError};
use crate::oci::manifest::{self, Descriptor, Index, Parsed};
use crate::oci::media;
use crate::oci::media::REF_NAME_ANNOTATION;
use crate::store::{self, Store, StoreError, VerifyError};

/// The shape of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// An OCI image layout directory (created, or added to if it is one already).
    Dir,
    /// A tar of an OCI image layout.
    Archive,
}

/// Errors of exporting.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("stored blob {0}")]
    Corrupt(VerifyError),
    #[error("ref name {} is not valid in an OCI layout; expected letters, digits and -._:@+ separated by /", stockade_quote::quote(name))]
    BadName { name: String },
    #[error("{path} exists and is not an OCI image layout; refusing to write into it")]
    NotALayout { path: PathBuf },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ExportError + '_ {
    move |source| ExportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One blob of an export: from the store, or made in memory (a converted manifest).
enum Blob {
    Stored(Descriptor),
    Made(Descriptor, Vec<u8>),
}

impl Blob {
    fn descriptor(&self) -> &Descriptor {
        match self {
            Blob::Stored(d) | Blob::Made(d, _) => d,
        }
    }
}

/// Every blob an image needs, manifest first, each once. A Docker v2 schema 2 manifest is
/// converted to an OCI manifest (config and layer media types renamed, blobs unchanged),
/// because OCI layout readers such as skopeo only list OCI-typed entries; the returned
/// descriptor is then the converted manifest's.
fn image_blobs(store: &Store, top: &Descriptor) -> Result<(Descriptor, Vec<Blob>), ExportError> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut todo = vec![top.clone()];
    let mut new_top = top.clone();
    while let Some(desc) = todo.pop() {
        if !seen.insert(desc.digest.clone()) {
            continue;
        }
        if !layout::is_manifest_type(&desc.media_type) {
            out.push(Blob::Stored(desc));
            continue;
        }
        let (_, parsed) = store.read_manifest(&desc)?;
        todo.extend(layout::children(&parsed));
        match parsed {
            Parsed::Image(m)
                if desc.media_type == media::DOCKER_MANIFEST && desc.digest == top.digest =>
            {
                let converted = to_oci(&m);
                let bytes = serde_json::to_vec(&converted).map_err(|e| ExportError::Io {
                    path: store.root().to_path_buf(),
                    source: io::Error::other(e),
                })?;
                let d = Descriptor::new(
                    media::OCI_MANIFEST,
                    Digest::sha256_of(&bytes),
                    bytes.len() as u64,
                );
                new_top.media_type = d.media_type.clone();
                new_top.digest = d.digest.clone();
                new_top.size = d.size;
                out.push(Blob::Made(d, bytes));
            }
            _ => out.push(Blob::Stored(desc)),
        }
    }
    Ok((new_top, out))
}

/// The OCI equivalent of a Docker v2 schema 2 manifest: same blobs, OCI media types.
fn to_oci(m: &manifest::Manifest) -> manifest::Manifest {
    let rename = |d: &Descriptor| {
        let mut d = d.clone();
        d.media_type = match d.media_type.as_str() {
            media::DOCKER_CONFIG => media::OCI_CONFIG.to_string(),
            "application/vnd.docker.image.rootfs.diff.tar.gzip" => {
                media::OCI_LAYER_GZIP.to_string()
            }
            "application/vnd.docker.image.rootfs.diff.tar" => media::OCI_LAYER_TAR.to_string(),
            "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => {
                "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip".to_string()
            }
            other => other.to_string(),
        };
        d
    };
    manifest::Manifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.to_string()),
        config: rename(&m.config),
        layers: m.layers.iter().map(rename).collect(),
        annotations: m.annotations.clone(),
    }
}

/// Exports the stored image `query` to `dest`, naming it `ref_name` there (default: its
/// store name). Blobs are re-verified as they are copied, so a damaged store never
/// produces a damaged export. Returns the exported manifest's descriptor (which differs
/// from the stored one when a Docker manifest was converted to OCI).
pub fn export(
    store: &Store,
    query: &str,
    dest: &Path,
    format: ExportFormat,
    ref_name: Option<&str>,
) -> Result<Descriptor, ExportError> {
    let image = store.resolve(query)?;
    let name = ref_name.unwrap_or(&image.name).to_string();
    if !store::valid_ref_name(&name) {
        return Err(ExportError::BadName { name });
    }
    let (mut top, blobs) = image_blobs(store, &image.descriptor)?;
    top.annotations
        .get_or_insert_with(Default::default)
        .insert(REF_NAME_ANNOTATION.to_string(), name.clone());
    match format {
        ExportFormat::Dir => export_dir(store, &blobs, &top, &name, dest)?,
        ExportFormat::Archive => export_archive(store, &blobs, &top, dest)?,
    }
    Ok(top)
}

fn export_dir(
    store: &Store,
    blobs: &[Blob],
    top: &Descriptor,
    name: &str,
    dest: &Path,
) -> Result<(), ExportError> {
    if dest.exists() && !dest.join(layout::OCI_LAYOUT_FILE).exists() {
        let empty = fs::read_dir(dest).map_err(io_err(dest))?.next().is_none();
        if !empty {
            return Err(ExportError::NotALayout {
                path: dest.to_path_buf(),
            });
        }
    }
    let out = Layout::create(dest)?;
    for blob in blobs {
        let desc = blob.descriptor();
        if out.blob_size(&desc.digest) == Some(desc.size) {
            continue;
        }
        let target = out.blob_path(&desc.digest);
        if let Some(dir) = target.parent() {
            fs::create_dir_all(dir).map_err(io_err(dir))?;
        }
        let tmp = target.with_extension(format!("tmp{}", std::process::id()));
        let result = match blob {
            Blob::Stored(desc) => copy_verified(store, desc, &tmp),
            Blob::Made(_, bytes) => fs::write(&tmp, bytes).map_err(io_err(&tmp)),
        }
        .and_then(|()| fs::rename(&tmp, &target).map_err(io_err(&target)));
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result?;
    }
    let mut index = out.read_index().unwrap_or_else(|_| Index::empty());
    index.manifests.retain(|d| d.ref_name() != Some(name));
    index.manifests.push(top.clone());
    layout::write_json(&dest.join(layout::INDEX_FILE), &index)?;
    Ok(())
}

/// Copies a stored blob to `to`, checking digest and size on the way.
fn copy_verified(store: &Store, desc: &Descriptor, to: &Path) -> Result<(), ExportError> {
    let mut src = store.layout().open_blob(&desc.digest)?;
    let file = File::create(to).map_err(io_err(to))?;
    let mut w = HashingWriter::new(
        BufWriter::with_capacity(1 << 18, file),
        desc.digest.algorithm(),
    );
    io::copy(&mut src, &mut w).map_err(io_err(to))?;
    let (buf, digest, size) = w.finish();
    let file = buf.into_inner().map_err(|e| ExportError::Io {
        path: to.to_path_buf(),
        source: e.into_error(),
    })?;
    check(desc, &digest, size)?;
    file.sync_all().map_err(io_err(to))
}

fn check(desc: &Descriptor, digest: &Digest, size: u64) -> Result<(), ExportError> {
    if size != desc.size {
        return Err(ExportError::Corrupt(VerifyError::Size {
            digest: desc.digest.clone(),
            expected: desc.size,
            actual: size,
        }));
    }
    if digest != &desc.digest {
        return Err(ExportError::Corrupt(VerifyError::Digest {
            expected: desc.digest.clone(),
            actual: digest.clone(),
        }));
    }
    Ok(())
}

fn export_archive(
    store: &Store,
    blobs: &[Blob],
    top: &Descriptor,
    dest: &Path,
) -> Result<(), ExportError> {
    let file_name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dest.with_file_name(format!(".{file_name}.{}.tmp", std::process::id()));
    let result = write_archive(store, blobs, top, &tmp)
        .and_then(|()| fs::rename(&tmp, dest).map_err(io_err(dest)));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn write_archive(
    store: &Store,
    blobs: &[Blob],
    top: &Descriptor,
    path: &Path,
) -> Result<(), ExportError> {
    let file = File::create(path).map_err(io_err(path))?;
    let mut tar = tar::Builder::new(BufWriter::with_capacity(1 << 20, file));
    let mut add = |name: &str, size: u64, data: &mut dyn Read, dir: bool| -> io::Result<()> {
        let mut h = tar::Header::new_ustar();
        h.set_size(size);
        h.set_mode(if dir { 0o755 } else { 0o644 });
        h.set_entry_type(if dir {
            tar::EntryType::Directory
        } else {
            tar::EntryType::Regular
        });
        // Fixed times keep the archive reproducible.
        h.set_mtime(0);
        h.set_cksum();
        tar.append_data(&mut h, name, data)
    };
    add("blobs/", 0, &mut io::empty(), true).map_err(io_err(path))?;
    let mut algs: Vec<&str> = blobs
        .iter()
        .map(|b| b.descriptor().digest.algorithm().name())
        .collect();
    algs.sort_unstable();
    algs.dedup();
    for alg in algs {
        add(&format!("blobs/{alg}/"), 0, &mut io::empty(), true).map_err(io_err(path))?;
    }
    for blob in blobs {
        let desc = match blob {
            Blob::Made(d, bytes) => {
                let name = format!("blobs/{}/{}", d.digest.algorithm().name(), d.digest.hex());
                add(&name, d.size, &mut &bytes[..], false).map_err(io_err(path))?;
                continue;
            }
            Blob::Stored(d) => d,
        };
        let src = store.layout().open_blob(&desc.digest)?;
        let mut hashing = HashingReader::new(src, desc.digest.algorithm());
        let name = format!(
            "blobs/{}/{}",
            desc.digest.algorithm().name(),
            desc.digest.hex()
        );
        add(&name, desc.size, &mut hashing, false).map_err(io_err(path))?;
        let (digest, size) = hashing.finish();
        check(desc, &digest, size)?;
    }
    let mut index = Index::empty();
    index.manifests.push(top.clone());
    let index_bytes = serde_json::to_vec(&index).map_err(|e| ExportError::Io {
        path: path.to_path_buf(),
        source: io::Error::other(e),
    })?;
    add(
        layout::INDEX_FILE,
        index_bytes.len() as u64,
        &mut &index_bytes[..],
        false,
    )
    .map_err(io_err(path))?;
    let marker = layout::LAYOUT_VERSION_JSON.as_bytes();
    add(
        layout::OCI_LAYOUT_FILE,
        marker.len() as u64,
        &mut &marker[..],
        false,
    )
    .map_err(io_err(path))?;
    let mut out = tar.into_inner().map_err(io_err(path))?;
    out.flush().map_err(io_err(path))?;
    let file = out.into_inner().map_err(|e| ExportError::Io {
        path: path.to_path_buf(),
        source: e.into_error(),
    })?;
    file.sync_all().map_err(io_err(path))
}

/// A reader that hashes and counts what passes through it.
struct HashingReader<R> {
    inner: R,
    hasher: crate::oci::digest::Hasher,
    read: u64,
}

impl<R: Read> HashingReader<R> {
    fn new(inner: R, alg: crate::oci::digest::Algorithm) -> Self {
        HashingReader {
            inner,
            hasher: crate::oci::digest::Hasher::new(alg),
            read: 0,
        }
    }

    fn finish(self) -> (Digest, u64) {
        (self.hasher.finish(), self.read)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::platform::Platform;
    use crate::transfer::import::{self, ImportFormat, ImportOptions, RootfsConfig};

    fn store_with_image(dir: &Path) -> Store {
        let store = Store::open(&dir.join("store")).unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(2);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "etc/x", &b"hi"[..]).unwrap();
        let tarball = dir.join("rootfs.tar");
        fs::write(&tarball, b.into_inner().unwrap()).unwrap();
        let opts = ImportOptions {
            format: ImportFormat::Rootfs,
            tag: Some("local/img:1".parse().unwrap()),
            source_ref: None,
            platform: Platform::host(),
            rootfs: RootfsConfig::default(),
        };
        import::import(&store, &tarball, &opts).unwrap();
        store
    }

    fn import_opts(format: ImportFormat) -> ImportOptions {
        ImportOptions {
            format,
            tag: None,
            source_ref: None,
            platform: Platform::host(),
            rootfs: RootfsConfig::default(),
        }
    }

    #[test]
    fn dir_and_archive_exports_import_back_to_the_same_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_image(dir.path());
        let original = store.resolve("local/img:1").unwrap();

        let out_dir = dir.path().join("out");
        export(&store, "local/img:1", &out_dir, ExportFormat::Dir, None).unwrap();
        let exported = Layout::open(&out_dir).unwrap().read_index().unwrap();
        assert_eq!(exported.manifests.len(), 1);
        assert_eq!(
            exported.manifests[0].ref_name(),
            Some("docker.io/local/img:1")
        );

        let archive = dir.path().join("out.tar");
        export(&store, "local/img:1", &archive, ExportFormat::Archive, None).unwrap();

        for (src, fmt) in [
            (&out_dir, ImportFormat::OciDir),
            (&archive, ImportFormat::OciArchive),
        ] {
            let other = Store::open(&dir.path().join(format!("other-{fmt:?}"))).unwrap();
            let got = import::import(&other, src, &import_opts(ImportFormat::Auto)).unwrap();
            assert_eq!(import::detect(src).unwrap(), fmt);
            assert_eq!(got.len(), 1);
            assert_eq!(got[0].name, original.name);
            assert_eq!(got[0].descriptor.digest, original.descriptor.digest);
            assert!(
                other.reachable().unwrap().len() >= 3,
                "manifest, config and layer arrived"
            );
        }
    }

    #[test]
    fn a_corrupt_store_blob_is_not_exported() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_image(dir.path());
        let image = store.resolve("local/img:1").unwrap();
        let (_, parsed) = store.read_manifest(&image.descriptor).unwrap();
        let crate::oci::manifest::Parsed::Image(m) = parsed else {
            panic!()
        };
        let layer = store.layout().blob_path(&m.layers[0].digest);
        let mut bytes = fs::read(&layer).unwrap();
        bytes[600] ^= 0xff;
        fs::write(&layer, bytes).unwrap();

        let archive = dir.path().join("bad.tar");
        let err = export(&store, "local/img:1", &archive, ExportFormat::Archive, None).unwrap_err();
        assert!(
            matches!(err, ExportError::Corrupt(VerifyError::Digest { .. })),
            "{err}"
        );
        assert!(!archive.exists());
        let out_dir = dir.path().join("bad");
        assert!(export(&store, "local/img:1", &out_dir, ExportFormat::Dir, None).is_err());
        assert!(!Layout::open(&out_dir)
            .unwrap()
            .blob_path(&m.layers[0].digest)
            .exists());
    }

    #[test]
    fn docker_manifests_convert_to_oci_with_the_same_blobs() {
        let d = |b: &[u8]| Digest::sha256_of(b);
        let docker = manifest::Manifest {
            schema_version: 2,
            media_type: Some(media::DOCKER_MANIFEST.into()),
            config: Descriptor::new(media::DOCKER_CONFIG, d(b"c"), 1),
            layers: vec![Descriptor::new(
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
                d(b"l"),
                2,
            )],
            annotations: None,
        };
        let oci = to_oci(&docker);
        assert_eq!(oci.media_type.as_deref(), Some(media::OCI_MANIFEST));
        assert_eq!(oci.config.media_type, media::OCI_CONFIG);
        assert_eq!(oci.config.digest, docker.config.digest);
        assert_eq!(oci.layers[0].media_type, media::OCI_LAYER_GZIP);
        assert_eq!(
            (oci.layers[0].digest.clone(), oci.layers[0].size),
            (d(b"l"), 2)
        );
    }

    #[test]
    fn an_exported_ref_name_can_be_chosen_and_must_be_valid() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_image(dir.path());
        let out = dir.path().join("o");
        export(&store, "local/img:1", &out, ExportFormat::Dir, Some("v1")).unwrap();
        assert_eq!(
            Layout::open(&out).unwrap().read_index().unwrap().manifests[0].ref_name(),
            Some("v1")
        );
        assert!(matches!(
            export(&store, "local/img:1", &out, ExportFormat::Dir, Some("a b")),
            Err(ExportError::BadName { .. })
        ));
    }
}
