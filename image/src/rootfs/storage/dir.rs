//! The `dir` driver: plain directories on any filesystem.
//!
//! ```text
//! <root>/chains/<chainID hex>/       the image's layers, flattened, unpacked once
//! <root>/chains/.tmp-<hex>-<pid>/    an unpack in progress (renamed into place when done)
//! <root>/containers/<id>/            a container's root filesystem (a copy of a chain)
//! ```
//!
//! Without copy-on-write there is nothing to gain from keeping each intermediate chain:
//! building chain N from chain N-1 would copy it anyway. So an image's whole layer list
//! is unpacked at once into the directory of its top chainID (which lets the unpacker skip
//! every file an upper layer removes), and images with the same top chain share it.

use std::fs;
use std::path::{Path, PathBuf};

use crate::oci::digest::Digest;
use crate::rootfs::remove::remove_tree;
use crate::rootfs::unpack::{unpack_layers, LayerHook, LayerSource, UnpackLimits, UnpackOptions};

use super::copy::copy_tree;
use super::tmpdir::{remove_if_abandoned, remove_renamed, TmpTree};
use super::{chain_ids, check_id, Prepared, StorageDriver, StorageError};

/// Plain-directory storage under a root directory.
#[derive(Debug, Clone)]
pub struct DirDriver {
    root: PathBuf,
    options: UnpackOptions,
}

impl DirDriver {
    /// Storage under `root` (created when missing).
    pub fn new(root: &Path) -> Result<DirDriver, StorageError> {
        for sub in ["chains", "containers"] {
            let p = root.join(sub);
            fs::create_dir_all(&p).map_err(StorageError::io("creating", &p))?;
        }
        Ok(DirDriver {
            root: root.to_path_buf(),
            options: UnpackOptions::default(),
        })
    }

    /// The same driver with other bounds on what an image may unpack to.
    pub fn with_limits(mut self, limits: UnpackLimits) -> Self {
        self.options.limits = limits;
        self
    }

    /// The storage root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of a chain.
    pub fn chain_path(&self, chain: &Digest) -> PathBuf {
        self.root.join("chains").join(chain.hex())
    }
}

impl StorageDriver for DirDriver {
    fn set_layer_hook(&mut self, hook: LayerHook) {
        self.options.on_layer = Some(hook);
    }

    fn name(&self) -> &'static str {
        "dir"
    }

    fn prepare(&self, layers: &[LayerSource]) -> Result<Prepared, StorageError> {
        let diff_ids: Vec<Digest> = layers.iter().map(|l| l.diff_id.clone()).collect();
        let Some(chain) = chain_ids(&diff_ids).pop() else {
            // No layers: an empty root filesystem is a valid (if useless) image.
            let chain = Digest::sha256_of(b"");
            let p = self.chain_path(&chain);
            fs::create_dir_all(&p).map_err(StorageError::io("creating", &p))?;
            return Ok(Prepared {
                chain,
                unpacked_layers: 0,
            });
        };
        let dest = self.chain_path(&chain);
        if dest.is_dir() {
            return Ok(Prepared {
                chain,
                unpacked_layers: 0,
            });
        }
        let tmp = TmpTree::create(&self.root.join("chains"), &chain, "unpack:tmp-created")?;
        let (tmp, _) = tmp.unpack(&chain, |t| unpack_layers(t, layers, &self.options))?;
        stockade_fault::point("unpack:before-rename");
        tmp.place(&dest)?;
        Ok(Prepared {
            chain,
            unpacked_layers: layers.len(),
        })
    }

    fn create_rootfs(&self, chain: &Digest, id: &str) -> Result<PathBuf, StorageError> {
        let src = self.chain_path(chain);
        if !src.is_dir() {
            return Err(StorageError::NoChain {
                chain: chain.clone(),
            });
        }
        let dst = self.rootfs_path(id)?;
        if fs::symlink_metadata(&dst).is_ok() {
            return Err(StorageError::Exists {
                id: id.to_string(),
                path: dst,
            });
        }
        if let Err(e) = copy_tree(&src, &dst, self.options.threads) {
            let _ = remove_tree(&dst);
            return Err(e);
        }
        Ok(dst)
    }

    fn rootfs_path(&self, id: &str) -> Result<PathBuf, StorageError> {
        check_id(id)?;
        Ok(self.root.join("containers").join(id))
    }

    fn remove_rootfs(&self, id: &str) -> Result<(), StorageError> {
        let p = self.rootfs_path(id)?;
        match remove_tree(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StorageError::io("removing", &p)(e)),
        }
    }

    fn prune(&self, keep: &[Digest]) -> Result<Vec<Digest>, StorageError> {
        let dir = self.root.join("chains");
        let mut removed = Vec::new();
        for ent in fs::read_dir(&dir).map_err(StorageError::io("reading", &dir))? {
            let ent = ent.map_err(StorageError::io("reading", &dir))?;
            let name = ent.file_name().to_string_lossy().into_owned();
            // An unpack a crash interrupted; a live one holds the lock.
            if remove_if_abandoned(&ent.path(), &name)? {
                continue;
            }
            let Ok(d) = format!("sha256:{name}").parse::<Digest>() else {
                continue;
            };
            if keep.contains(&d) {
                continue;
            }
            // Container root filesystems are copies, so no container needs a chain.
            remove_renamed(&ent.path(), &name, "prune:chain-renamed")?;
            removed.push(d);
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::MetadataExt;

    fn layer(dir: &Path, name: &str, files: &[(&str, &[u8])]) -> LayerSource {
        let mut b = tar::Builder::new(Vec::new());
        for (p, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, p, *data).unwrap();
        }
        let tar = b.into_inner().unwrap();
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&tar).unwrap();
        let blob = e.finish().unwrap();
        let path = dir.join(name);
        fs::write(&path, &blob).unwrap();
        LayerSource {
            digest: Digest::sha256_of(&blob),
            media_type: crate::oci::media::OCI_LAYER_GZIP.into(),
            path,
            diff_id: Digest::sha256_of(&tar),
        }
    }

    #[test]
    fn a_chain_is_unpacked_once_and_copied_per_container() {
        let tmp = tempfile::tempdir().unwrap();
        let d = DirDriver::new(&tmp.path().join("storage")).unwrap();
        let l1 = layer(tmp.path(), "l1", &[("a", b"1"), ("b", b"2")]);
        let l2 = layer(tmp.path(), "l2", &[(".wh.b", b""), ("c", b"3")]);
        let p = d.prepare(&[l1.clone(), l2.clone()]).unwrap();
        assert_eq!(p.unpacked_layers, 2);
        assert_eq!(d.prepare(&[l1, l2]).unwrap().unpacked_layers, 0);
        let r1 = d.create_rootfs(&p.chain, "c1").unwrap();
        let r2 = d.create_rootfs(&p.chain, "c2").unwrap();
        assert!(matches!(
            d.create_rootfs(&p.chain, "c2"),
            Err(StorageError::Exists { .. })
        ));
        fs::write(r1.join("a"), b"changed").unwrap();
        assert_eq!(
            fs::read(r2.join("a")).unwrap(),
            b"1",
            "containers do not share files"
        );
        assert_eq!(fs::read(d.chain_path(&p.chain).join("a")).unwrap(), b"1");
        assert!(!r2.join("b").exists());
        assert_ne!(
            fs::metadata(r2.join("a")).unwrap().ino(),
            fs::metadata(d.chain_path(&p.chain).join("a"))
                .unwrap()
                .ino()
        );
        d.remove_rootfs("c1").unwrap();
        d.remove_rootfs("c1").unwrap();
        assert!(!r1.exists());
        assert_eq!(d.prune(std::slice::from_ref(&p.chain)).unwrap(), vec![]);
        assert_eq!(d.prune(&[]).unwrap(), vec![p.chain.clone()]);
    }

    #[test]
    fn a_failed_unpack_leaves_no_chain() {
        let tmp = tempfile::tempdir().unwrap();
        let d = DirDriver::new(&tmp.path().join("storage")).unwrap();
        let mut l1 = layer(tmp.path(), "l1", &[("a", b"1")]);
        l1.diff_id = Digest::sha256_of(b"wrong");
        assert!(d.prepare(&[l1]).is_err());
        assert_eq!(
            fs::read_dir(tmp.path().join("storage/chains"))
                .unwrap()
                .count(),
            0
        );
    }
}
