//! Importing a root filesystem tarball (`.tar`, `.tar.gz`, `.tar.zst`, `.tar.xz` such as
//! FreeBSD's `base.txz`) as a one-layer image with a config made from flags.
//!
//! Plain, gzip and zstd tarballs are stored byte for byte as the layer. xz is not an OCI
//! layer encoding, so an xz tarball is recompressed to zstd in the same pass that checks it.

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::Path;

use super::{io_err, Compression, ImportError, ImportOptions};
use crate::oci::digest::{Algorithm, Digest, Hasher};
use crate::oci::manifest::Descriptor;
use crate::oci::media;
use crate::oci::platform::Platform;
use crate::store::{Store, StoredImage};

/// The default `PATH` of an image made from a FreeBSD root filesystem.
pub const FREEBSD_PATH: &str = "PATH=/sbin:/bin:/usr/sbin:/usr/bin:/usr/local/sbin:/usr/local/bin";

/// The config of an image made from a rootfs tarball.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootfsConfig {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
}

impl Default for RootfsConfig {
    /// FreeBSD on this machine's architecture, `/bin/sh`, FreeBSD's standard `PATH`.
    fn default() -> Self {
        RootfsConfig {
            os: "freebsd".into(),
            architecture: Platform::host().architecture,
            variant: None,
            entrypoint: None,
            cmd: Some(vec!["/bin/sh".into()]),
            env: vec![FREEBSD_PATH.into()],
            workdir: Some("/".into()),
            user: None,
        }
    }
}

impl RootfsConfig {
    /// The image config JSON for a single layer whose uncompressed digest is `diff_id`.
    pub fn to_config_json(&self, diff_id: &Digest, source: &str) -> serde_json::Value {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let mut config = serde_json::Map::new();
        if !self.env.is_empty() {
            config.insert("Env".into(), self.env.clone().into());
        }
        if let Some(e) = &self.entrypoint {
            config.insert("Entrypoint".into(), e.clone().into());
        }
        if let Some(c) = &self.cmd {
            config.insert("Cmd".into(), c.clone().into());
        }
        if let Some(w) = &self.workdir {
            config.insert("WorkingDir".into(), w.clone().into());
        }
        if let Some(u) = &self.user {
            config.insert("User".into(), u.clone().into());
        }
        let mut v = serde_json::json!({
            "created": now,
            "architecture": self.architecture,
            "os": self.os,
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]},
            "history": [{"created": now, "created_by": format!("stockade image import {source}")}],
        });
        if let (Some(variant), Some(obj)) = (&self.variant, v.as_object_mut()) {
            obj.insert("variant".into(), variant.clone().into());
        }
        v
    }
}

/// A reader that hashes (and optionally copies) everything read through it.
struct Tee<R, W> {
    inner: R,
    copy: W,
    hasher: Hasher,
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.copy.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// Reads a whole tar stream through `tee`, failing if it is not a tar; returns the tee.
fn check_tar<R: Read, W: Write>(tee: Tee<R, W>, path: &Path) -> Result<Tee<R, W>, ImportError> {
    let mut archive = tar::Archive::new(tee);
    let mut count = 0usize;
    for entry in archive.entries().map_err(io_err(path))? {
        entry.map_err(|e| {
            // tar's messages can quote the raw bytes of a bad header; keep the reason only.
            let text = e.to_string();
            let reason: String = text.chars().take_while(|c| *c != ':').take(120).collect();
            ImportError::Invalid {
                path: path.to_path_buf(),
                detail: format!("not a valid tar archive ({reason})"),
            }
        })?;
        count += 1;
    }
    if count == 0 {
        return Err(ImportError::Invalid {
            path: path.to_path_buf(),
            detail: "the tarball is empty".into(),
        });
    }
    let mut tee = archive.into_inner();
    // The end-of-archive blocks and any padding belong to the layer's diff_id too.
    io::copy(&mut tee, &mut io::sink()).map_err(io_err(path))?;
    Ok(tee)
}

/// Imports `path` as a one-layer image named `opts.tag`.
pub(super) fn import(
    store: &Store,
    path: &Path,
    opts: &ImportOptions,
) -> Result<StoredImage, ImportError> {
    let name = opts
        .tag
        .as_ref()
        .ok_or_else(|| ImportError::NeedsTag {
            path: path.to_path_buf(),
            name: path.display().to_string(),
        })?
        .to_string();
    let compression = Compression::of_file(path)?;
    let open = || -> Result<BufReader<File>, ImportError> {
        Ok(BufReader::with_capacity(
            1 << 20,
            File::open(path).map_err(io_err(path))?,
        ))
    };
    let (layer, diff_id) = match compression {
        Compression::Xz => {
            let decoded = compression.decoder(open()?).map_err(io_err(path))?;
            let writer = store.blob_writer(Algorithm::Sha256)?;
            let encoder = zstd::stream::write::Encoder::new(writer, 3).map_err(io_err(path))?;
            let tee = check_tar(
                Tee {
                    inner: decoded,
                    copy: encoder,
                    hasher: Hasher::new(Algorithm::Sha256),
                },
                path,
            )?;
            let writer = tee.copy.finish().map_err(io_err(path))?;
            let (digest, size) = writer.commit(None)?;
            (
                Descriptor::new(media::OCI_LAYER_ZSTD, digest, size),
                tee.hasher.finish(),
            )
        }
        Compression::None | Compression::Gzip | Compression::Zstd => {
            let mut writer = store.blob_writer(Algorithm::Sha256)?;
            io::copy(&mut open()?, &mut writer).map_err(io_err(path))?;
            let (digest, size) = writer.commit(None)?;
            let media_type = match compression {
                Compression::Gzip => media::OCI_LAYER_GZIP,
                Compression::Zstd => media::OCI_LAYER_ZSTD,
                _ => media::OCI_LAYER_TAR,
            };
            let blob = store.layout().open_blob(&digest)?;
            let decoded = compression
                .decoder(BufReader::with_capacity(1 << 20, blob))
                .map_err(io_err(path))?;
            let tee = check_tar(
                Tee {
                    inner: decoded,
                    copy: io::sink(),
                    hasher: Hasher::new(Algorithm::Sha256),
                },
                path,
            )?;
            (
                Descriptor::new(media_type, digest, size),
                tee.hasher.finish(),
            )
        }
    };
    let config = opts
        .rootfs
        .to_config_json(&diff_id, &path.display().to_string());
    let config_bytes = serde_json::to_vec(&config).map_err(|e| ImportError::Invalid {
        path: path.to_path_buf(),
        detail: format!("encoding the config: {e}"),
    })?;
    let config_digest = store.put_bytes(&config_bytes, None)?;
    let config = Descriptor::new(media::OCI_CONFIG, config_digest, config_bytes.len() as u64);
    let mut descriptor = super::put_manifest(store, config, vec![layer], path)?;
    descriptor.platform = Some(Platform::new(
        &opts.rootfs.os,
        &opts.rootfs.architecture,
        opts.rootfs.variant.as_deref(),
    ));
    store.set_ref(&name, &descriptor)?;
    Ok(StoredImage { name, descriptor })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::manifest::{Manifest, Parsed};
    use crate::transfer::import::{ImportFormat, ImportOptions};

    fn rootfs_tar() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, body) in [("bin/sh", &b"#!fake"[..]), ("etc/motd", &b"hello"[..])] {
            let mut h = tar::Header::new_gnu();
            h.set_size(body.len() as u64);
            h.set_mode(0o755);
            h.set_cksum();
            b.append_data(&mut h, name, body).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn opts(tag: &str) -> ImportOptions {
        ImportOptions {
            format: ImportFormat::Rootfs,
            tag: Some(tag.parse().unwrap()),
            source_ref: None,
            platform: Platform::host(),
            rootfs: RootfsConfig::default(),
        }
    }

    fn diff_id_of(store: &Store, image: &StoredImage) -> (Manifest, serde_json::Value) {
        let (_, parsed) = store.read_manifest(&image.descriptor).unwrap();
        let Parsed::Image(m) = parsed else {
            panic!("not a manifest")
        };
        let config: serde_json::Value =
            serde_json::from_slice(&store.read_small_blob(&m.config.digest).unwrap()).unwrap();
        (*m, config)
    }

    #[test]
    fn plain_and_xz_tarballs_become_one_layer_freebsd_images_with_the_right_diff_id() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store")).unwrap();
        let tar_bytes = rootfs_tar();
        let expected_diff_id = Digest::sha256_of(&tar_bytes).to_string();

        let plain = dir.path().join("rootfs.tar");
        std::fs::write(&plain, &tar_bytes).unwrap();
        let img = import(&store, &plain, &opts("local/plain:1")).unwrap();
        let (m, config) = diff_id_of(&store, &img);
        assert_eq!(m.layers[0].media_type, media::OCI_LAYER_TAR);
        assert_eq!(m.layers[0].digest.to_string(), expected_diff_id);
        assert_eq!(config["rootfs"]["diff_ids"][0], expected_diff_id);
        assert_eq!(config["os"], "freebsd");
        assert_eq!(config["config"]["Cmd"][0], "/bin/sh");
        assert_eq!(config["config"]["Env"][0], FREEBSD_PATH);

        let xz = dir.path().join("base.txz");
        let mut enc = liblzma::write::XzEncoder::new(File::create(&xz).unwrap(), 6);
        enc.write_all(&tar_bytes).unwrap();
        enc.finish().unwrap();
        let img = import(&store, &xz, &opts("local/xz:1")).unwrap();
        let (m, config) = diff_id_of(&store, &img);
        assert_eq!(m.layers[0].media_type, media::OCI_LAYER_ZSTD);
        assert_eq!(config["rootfs"]["diff_ids"][0], expected_diff_id);
        let stored = std::fs::read(store.layout().blob_path(&m.layers[0].digest)).unwrap();
        assert_eq!(
            zstd::decode_all(&stored[..]).unwrap(),
            tar_bytes,
            "the layer decodes to the tarball"
        );
        assert_eq!(store.temporaries().unwrap(), 0);
    }

    #[test]
    fn a_file_that_is_not_a_tar_is_refused_and_nothing_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store")).unwrap();
        let junk = dir.path().join("junk.tar.gz");
        let mut enc = flate2::write::GzEncoder::new(
            File::create(&junk).unwrap(),
            flate2::Compression::fast(),
        );
        enc.write_all(&[0x55u8; 4096]).unwrap();
        enc.finish().unwrap();
        let err = import(&store, &junk, &opts("local/junk:1")).unwrap_err();
        assert!(matches!(err, ImportError::Invalid { .. }), "{err}");
        assert!(store.images().unwrap().is_empty());
    }

    #[test]
    fn config_flags_override_the_freebsd_defaults() {
        let cfg = RootfsConfig {
            os: "linux".into(),
            architecture: "arm64".into(),
            variant: Some("v8".into()),
            entrypoint: Some(vec!["/init".into()]),
            cmd: None,
            env: vec!["A=1".into()],
            workdir: None,
            user: Some("nobody".into()),
        };
        let v = cfg.to_config_json(&Digest::sha256_of(b""), "x.tar");
        assert_eq!(
            (
                v["os"].as_str(),
                v["architecture"].as_str(),
                v["variant"].as_str()
            ),
            (Some("linux"), Some("arm64"), Some("v8"))
        );
        assert_eq!(v["config"]["Entrypoint"][0], "/init");
        assert!(v["config"].get("Cmd").is_none());
        assert_eq!(v["config"]["User"], "nobody");
    }
}
