//! Importing images from files: OCI image layout directories and archives, `docker save`
//! archives, and plain root filesystem tarballs (which become one-layer images).

mod docker;
mod oci;
mod rootfs;

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

pub use rootfs::RootfsConfig;

use crate::oci::layout::LayoutError;
use crate::oci::magic::{self, read_up_to, Magic};
use crate::oci::manifest::ManifestError;
use crate::oci::platform::Platform;
use crate::oci::reference::{Reference, ReferenceError};
use crate::store::{Store, StoreError, StoredImage};

/// What kind of file an import reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportFormat {
    /// Decide from the content.
    Auto,
    /// An OCI image layout directory.
    OciDir,
    /// A tar of an OCI image layout.
    OciArchive,
    /// The output of `docker save`.
    DockerArchive,
    /// A root filesystem tarball (`.tar`, `.tar.gz`, `.tar.xz`, `.tar.zst`).
    Rootfs,
}

/// What `import` needs besides the source.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub format: ImportFormat,
    /// The name to give the image; required for a rootfs tarball and for sources whose
    /// images have no full reference as a name.
    pub tag: Option<Reference>,
    /// For a layout holding several images: the `org.opencontainers.image.ref.name` of the
    /// one to import.
    pub source_ref: Option<String>,
    /// The platform to select when an image is an index.
    pub platform: Platform,
    /// The config of an image made from a rootfs tarball.
    pub rootfs: RootfsConfig,
}

/// Errors of importing.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("{path}: {detail}")]
    Invalid { path: PathBuf, detail: String },
    #[error(
        "{path}: the image {name:?} has no usable name; give one with --tag registry/repo:tag"
    )]
    NeedsTag { path: PathBuf, name: String },
    #[error("{path}: holds {count} images ({names}); choose one with --source-ref, or import without --tag to keep their own names")]
    Ambiguous {
        path: PathBuf,
        count: usize,
        names: String,
    },
    #[error(
        "{path}: no image named {}; it has: {names}",
        stockade_quote::quote(wanted)
    )]
    NoSuchRef {
        path: PathBuf,
        wanted: String,
        names: String,
    },
    #[error("{path}: no image for platform {wanted}; it offers: {}", offered.join(", "))]
    Platform {
        path: PathBuf,
        wanted: String,
        offered: Vec<String>,
    },
    #[error("{path}: name {} is invalid: {source}", stockade_quote::quote(name))]
    Name {
        path: PathBuf,
        name: String,
        source: ReferenceError,
    },
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ImportError + '_ {
    move |source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Imports `source` into `store` and returns the images it named.
pub fn import(
    store: &Store,
    source: &Path,
    opts: &ImportOptions,
) -> Result<Vec<StoredImage>, ImportError> {
    let format = match opts.format {
        ImportFormat::Auto => detect(source)?,
        f => f,
    };
    let _writer = store.writer_lock()?;
    match format {
        ImportFormat::OciDir => oci::import_dir(store, source, opts),
        ImportFormat::OciArchive => oci::import_archive(store, source, opts),
        ImportFormat::DockerArchive => docker::import(store, source, opts),
        ImportFormat::Rootfs => rootfs::import(store, source, opts).map(|i| vec![i]),
        // detect() never answers Auto.
        ImportFormat::Auto => Err(ImportError::Invalid {
            path: source.to_path_buf(),
            detail: "could not tell the format".into(),
        }),
    }
}

/// Writes an OCI image manifest for `config` and `layers` into the store; returns its
/// descriptor (without platform). `source` is the file being imported, for errors.
pub(crate) fn put_manifest(
    store: &Store,
    config: crate::oci::manifest::Descriptor,
    layers: Vec<crate::oci::manifest::Descriptor>,
    source: &Path,
) -> Result<crate::oci::manifest::Descriptor, ImportError> {
    use crate::oci::manifest::{Descriptor, Manifest};
    use crate::oci::media::OCI_MANIFEST;
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.to_string()),
        config,
        layers,
        annotations: None,
    };
    let bytes = serde_json::to_vec(&manifest).map_err(|e| ImportError::Invalid {
        path: source.to_path_buf(),
        detail: format!("encoding the manifest: {e}"),
    })?;
    let digest = store.put_bytes(&bytes, None)?;
    Ok(Descriptor::new(OCI_MANIFEST, digest, bytes.len() as u64))
}

/// Compression of a stream, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
    Xz,
}

impl Compression {
    /// Sniffs the magic number.
    pub fn sniff(head: &[u8]) -> Compression {
        match magic::sniff(head) {
            Magic::Gzip => Compression::Gzip,
            Magic::Zstd => Compression::Zstd,
            Magic::Xz => Compression::Xz,
            Magic::Bzip2 | Magic::Other => Compression::None,
        }
    }

    /// Sniffs the first bytes of a file.
    pub fn of_file(path: &Path) -> Result<Compression, ImportError> {
        let mut head = [0u8; magic::MAGIC_LEN];
        let mut f = File::open(path).map_err(io_err(path))?;
        let n = read_up_to(&mut f, &mut head).map_err(io_err(path))?;
        Ok(Compression::sniff(&head[..n]))
    }

    /// Wraps `r` in the matching decoder.
    pub fn decoder<'a>(self, r: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
        Ok(match self {
            Compression::None => Box::new(r),
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(r)),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(r)?),
            Compression::Xz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(r)),
        })
    }
}

/// Opens a possibly compressed tar file for reading.
pub(crate) fn open_tar(path: &Path) -> Result<tar::Archive<Box<dyn Read>>, ImportError> {
    let compression = Compression::of_file(path)?;
    let file = File::open(path).map_err(io_err(path))?;
    let reader = compression
        .decoder(BufReader::with_capacity(1 << 20, file))
        .map_err(io_err(path))?;
    Ok(tar::Archive::new(reader))
}

/// Tells a layout directory, an OCI archive, a docker archive and a rootfs tarball apart.
/// Archives are recognised by their top-level names; the first name that no archive has
/// (`bin/`, `./etc`) means a root filesystem.
pub fn detect(path: &Path) -> Result<ImportFormat, ImportError> {
    let meta = std::fs::metadata(path).map_err(io_err(path))?;
    if meta.is_dir() {
        return if path.join(crate::oci::layout::OCI_LAYOUT_FILE).is_file() {
            Ok(ImportFormat::OciDir)
        } else {
            Err(ImportError::Invalid {
                path: path.to_path_buf(),
                detail:
                    "a directory to import must be an OCI image layout (it has no oci-layout file)"
                        .into(),
            })
        };
    }
    let mut archive = open_tar(path)?;
    let (mut oci, mut docker) = (false, false);
    for entry in archive.entries().map_err(io_err(path))? {
        let entry = entry.map_err(io_err(path))?;
        let name = entry
            .path()
            .map_err(io_err(path))?
            .to_string_lossy()
            .into_owned();
        let name = name.trim_start_matches("./");
        match name {
            "manifest.json" | "repositories" => docker = true,
            "oci-layout" | "index.json" => oci = true,
            "" => {}
            n if n == "blobs" || n.starts_with("blobs/") => {}
            n if looks_like_docker_v1_entry(n) => {}
            _ => return Ok(ImportFormat::Rootfs),
        }
        if docker && oci {
            break;
        }
    }
    Ok(match (docker, oci) {
        (true, _) => ImportFormat::DockerArchive,
        (false, true) => ImportFormat::OciArchive,
        (false, false) => ImportFormat::Rootfs,
    })
}

/// `docker save` (before 25) and skopeo docker-archive entries: `<64 hex>/…`,
/// `<64 hex>.json` and `<64 hex>.tar`.
fn looks_like_docker_v1_entry(name: &str) -> bool {
    let first = name.split('/').next().unwrap_or(name);
    let stem = first
        .strip_suffix(".json")
        .or_else(|| first.strip_suffix(".tar"))
        .unwrap_or(first);
    stem.len() == 64 && stem.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The store name for an image whose source calls it `name`: a full reference
/// (`repo:tag`, `registry/repo:tag`) in canonical form; a bare tag like `latest` is no
/// name and needs `--tag`.
pub(crate) fn store_name(path: &Path, name: &str) -> Result<String, ImportError> {
    if !name.contains(['/', ':', '@']) {
        return Err(ImportError::NeedsTag {
            path: path.to_path_buf(),
            name: name.to_string(),
        });
    }
    name.parse::<Reference>()
        .map(|r| r.to_string())
        .map_err(|source| ImportError::Name {
            path: path.to_path_buf(),
            name: name.to_string(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_magic_numbers() {
        assert_eq!(Compression::sniff(&[0x1f, 0x8b, 8]), Compression::Gzip);
        assert_eq!(
            Compression::sniff(&[0x28, 0xb5, 0x2f, 0xfd, 0]),
            Compression::Zstd
        );
        assert_eq!(Compression::sniff(b"\xfd7zXZ\x00"), Compression::Xz);
        assert_eq!(Compression::sniff(b"bin/"), Compression::None);
        assert_eq!(Compression::sniff(b""), Compression::None);
    }

    #[test]
    fn store_names_need_a_repository() {
        let p = Path::new("x.tar");
        assert_eq!(
            store_name(p, "alpine:3").unwrap(),
            "docker.io/library/alpine:3"
        );
        assert_eq!(
            store_name(p, "localhost:5000/a:b").unwrap(),
            "localhost:5000/a:b"
        );
        assert!(matches!(
            store_name(p, "latest"),
            Err(ImportError::NeedsTag { .. })
        ));
        assert!(matches!(
            store_name(p, "Bad/Name:x"),
            Err(ImportError::Name { .. })
        ));
    }

    fn tar_with(names: &[&str], out: &Path) {
        let mut b = tar::Builder::new(File::create(out).unwrap());
        for n in names {
            let mut h = tar::Header::new_gnu();
            h.set_size(1);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, n, &b"x"[..]).unwrap();
        }
        b.finish().unwrap();
    }

    #[test]
    fn detect_tells_archives_from_root_filesystems() {
        let dir = tempfile::tempdir().unwrap();
        let cases: &[(&[&str], ImportFormat)] = &[
            (
                &["oci-layout", "index.json", "blobs/sha256/aa"],
                ImportFormat::OciArchive,
            ),
            (&["blobs/sha256/aa", "index.json"], ImportFormat::OciArchive),
            (
                &[&format!("{}/layer.tar", "a".repeat(64)), "manifest.json"],
                ImportFormat::DockerArchive,
            ),
            (
                &[
                    &format!("{}.tar", "b".repeat(64)),
                    &format!("{}.json", "c".repeat(64)),
                    "manifest.json",
                ],
                ImportFormat::DockerArchive,
            ),
            (
                &["blobs/sha256/aa", "oci-layout", "manifest.json"],
                ImportFormat::DockerArchive,
            ),
            (&["./bin/sh", "manifest.json"], ImportFormat::Rootfs),
            (&["etc/passwd"], ImportFormat::Rootfs),
        ];
        for (i, (names, want)) in cases.iter().enumerate() {
            let p = dir.path().join(format!("{i}.tar"));
            tar_with(names, &p);
            assert_eq!(detect(&p).unwrap(), *want, "{names:?}");
        }
        let layout = dir.path().join("layout");
        crate::oci::layout::Layout::create(&layout).unwrap();
        assert_eq!(detect(&layout).unwrap(), ImportFormat::OciDir);
        assert!(detect(dir.path()).is_err(), "a plain directory is refused");
    }
}
