//! Provisioning: from a stored image to layer chains, root filesystems and bundles in a
//! storage root, and back. The CLI's `bundle`, `run --image`, `image prune` and `delete`
//! are thin wrappers over this module.
//!
//! Crash safety of `run --image`: before anything of a container exists on disk, a record
//! `<storage>/provisions/<id>.json` is written atomically. Everything made after it (the
//! root filesystem, `<storage>/bundles/<id>/`) is therefore known to belong to `id`, and
//! [`remove_container`] removes it all, the record last, whatever instant a crash hit.
//! Without the record nothing of the container existed yet.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bundle::{self, BundleError, BundleOptions, ResolvedImage};
use crate::oci::digest::Digest;
use crate::oci::manifest::Parsed;
use crate::oci::platform::Platform;
use crate::rootfs::remove::remove_tree;
use crate::rootfs::storage::{
    chain_ids, check_id, stale, users, Prepared, StorageDriver, StorageError,
};
use crate::store::{Store, StoreError};
use stockade_fault as fault;

/// Where `run --image` keeps the records of the containers it made.
pub const PROVISIONS_DIR: &str = "provisions";
/// Where `run --image` writes bundles.
pub const BUNDLES_DIR: &str = "bundles";

/// Why provisioning failed.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The name is taken by an earlier `run --image` (running, stopped or crashed).
    #[error("container {id} already has a bundle from `run --image` ({path}); remove it with `stockade delete --force {id}` or choose another --name")]
    Exists { id: String, path: PathBuf },
    /// A file operation on a provisioning path failed.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// The record was made with another storage driver than the one given now.
    #[error("container {id} was made with the {recorded} storage driver, not {given}; pass --storage-driver {recorded} (and its options)")]
    Driver {
        id: String,
        recorded: String,
        given: &'static str,
    },
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ProvisionError {
    let path = path.to_path_buf();
    move |source| ProvisionError::Io { op, path, source }
}

/// What `run --image` records about a container before making anything of it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    id: String,
    driver: String,
    image: String,
}

/// A store, the storage root it provisions into and the driver that makes chains there.
pub struct Provisioner<'a> {
    store: &'a Store,
    storage_root: PathBuf,
    driver: &'a dyn StorageDriver,
}

/// A container's bundle made by [`Provisioner::run_bundle`].
#[derive(Debug, Clone)]
pub struct RunBundle {
    /// The bundle directory (`<storage>/bundles/<id>`).
    pub bundle: PathBuf,
    /// The container's root filesystem.
    pub rootfs: PathBuf,
}

impl<'a> Provisioner<'a> {
    /// Opens the storage root (created when missing) and records the store as one of its
    /// users, so that no other store's prune removes chains this store's images need.
    pub fn new(
        store: &'a Store,
        storage_root: &Path,
        driver: &'a dyn StorageDriver,
    ) -> Result<Provisioner<'a>, ProvisionError> {
        fs::create_dir_all(storage_root).map_err(io("creating", storage_root))?;
        {
            let _shared = users::lock(storage_root, false)?;
            users::record(storage_root, store.root())?;
        }
        Ok(Provisioner {
            store,
            storage_root: storage_root.to_path_buf(),
            driver,
        })
    }

    /// The driver.
    pub fn driver(&self) -> &dyn StorageDriver {
        self.driver
    }

    /// Unpacks the image's chain (once).
    pub fn prepare(&self, image: &ResolvedImage) -> Result<Prepared, ProvisionError> {
        let _shared = users::lock(&self.storage_root, false)?;
        Ok(self.driver.prepare(&image.layers)?)
    }

    /// Makes the root filesystem `id` for `image`, preparing its chain first when needed.
    fn create_rootfs(&self, image: &ResolvedImage, id: &str) -> Result<PathBuf, ProvisionError> {
        let _shared = users::lock(&self.storage_root, false)?;
        // An image already in storage costs just the rootfs (one `zfs clone` with the zfs
        // driver): the top chainID follows from the diffIDs, so try it before preparing.
        let diff_ids: Vec<_> = image.layers.iter().map(|l| l.diff_id.clone()).collect();
        let known = chain_ids(&diff_ids).pop();
        let rootfs = match known.map(|c| self.driver.create_rootfs(&c, id)) {
            Some(Ok(rootfs)) => rootfs,
            Some(Err(StorageError::NoChain { .. })) | None => {
                let prepared = self.driver.prepare(&image.layers)?;
                fault::point("provision:chain-prepared");
                self.driver.create_rootfs(&prepared.chain, id)?
            }
            Some(Err(e)) => return Err(e.into()),
        };
        fault::point("provision:rootfs-created");
        Ok(rootfs)
    }

    /// Makes the root filesystem `id` and writes the bundle `dir` around it: the image
    /// config laid over `base`, with `resources` as `linux.resources` when given. On
    /// failure the root filesystem made here is removed again.
    pub fn create_bundle(
        &self,
        image: &ResolvedImage,
        id: &str,
        dir: &Path,
        base: Value,
        opts: &BundleOptions,
        resources: Option<&Value>,
    ) -> Result<PathBuf, ProvisionError> {
        let rootfs = self.create_rootfs(image, id)?;
        let made = bundle::make_config(base, image, &rootfs, opts).and_then(|mut config| {
            if let Some(r) = resources {
                config["linux"]["resources"] = r.clone();
            }
            bundle::write_bundle(dir, &config)
        });
        if let Err(e) = made {
            let _ = self.driver.remove_rootfs(id);
            return Err(e.into());
        }
        fault::point("provision:bundle-written");
        Ok(rootfs)
    }

    /// For `run --image`: records container `id`, then makes its root filesystem and its
    /// bundle in `<storage>/bundles/<id>`. [`remove_container`] undoes all of it, from any
    /// point a crash may have stopped this at.
    pub fn run_bundle(
        &self,
        image: &ResolvedImage,
        id: &str,
        base: Value,
        opts: &BundleOptions,
        resources: Option<&Value>,
    ) -> Result<RunBundle, ProvisionError> {
        check_id(id)?;
        let record = record_path(&self.storage_root, id);
        let bundle = self.storage_root.join(BUNDLES_DIR).join(id);
        for p in [&record, &bundle] {
            if fs::symlink_metadata(p).is_ok() {
                return Err(ProvisionError::Exists {
                    id: id.to_string(),
                    path: p.clone(),
                });
            }
        }
        let dir = self.storage_root.join(PROVISIONS_DIR);
        fs::create_dir_all(&dir).map_err(io("creating", &dir))?;
        let r = Record {
            id: id.to_string(),
            driver: self.driver.name().to_string(),
            image: image.name.clone(),
        };
        crate::oci::layout::write_json(&record, &r).map_err(|e| ProvisionError::Io {
            op: "writing",
            path: record.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
        fault::point("run-image:recorded");
        let rootfs = self.create_bundle(image, id, &bundle, base, opts, resources)?;
        Ok(RunBundle { bundle, rootfs })
    }

    /// Removes every chain no image of any store using this storage root needs, and the
    /// temporaries crashes left (unpacks nobody holds, record files older than an hour).
    /// Returns the chains removed.
    pub fn prune(&self) -> Result<Vec<Digest>, ProvisionError> {
        let _exclusive = users::lock(&self.storage_root, true)?;
        let mut keep = Vec::new();
        for root in users::live(&self.storage_root, self.store.root())? {
            let other;
            let store = if same_dir(&root, self.store.root()) {
                self.store
            } else {
                other = Store::open(&root)?;
                &other
            };
            keep.extend(needed_chains(store)?);
        }
        fault::point("prune:keep-computed");
        let removed = self.driver.prune(&keep)?;
        remove_stale_records(&self.storage_root.join(PROVISIONS_DIR))?;
        // Interrupted rewrites of image-roots.json.
        remove_stale_records(&self.storage_root)?;
        Ok(removed)
    }
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (fs::canonicalize(a), fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// The chains the images of `store` need: of a plain manifest, and of every platform an
/// index lists (a store may hold an image for another platform, run with `--platform`).
/// An image that does not resolve (a platform whose manifest was not pulled) needs none.
fn needed_chains(store: &Store) -> Result<Vec<Digest>, ProvisionError> {
    let mut keep = Vec::new();
    for img in store.images()? {
        let platforms = match store.read_manifest(&img.descriptor) {
            Ok((_, Parsed::Index(ix))) => ix
                .manifests
                .iter()
                .filter_map(|d| d.platform.clone())
                .collect(),
            _ => vec![Platform::host()],
        };
        for p in platforms {
            if let Ok(r) = bundle::resolve(store, &img.name, &p) {
                let diff: Vec<_> = r.layers.iter().map(|l| l.diff_id.clone()).collect();
                keep.extend(chain_ids(&diff));
            }
        }
    }
    Ok(keep)
}

fn record_path(storage_root: &Path, id: &str) -> PathBuf {
    storage_root.join(PROVISIONS_DIR).join(format!("{id}.json"))
}

/// Temporary files of interrupted atomic writes (`.NAME.PID.tmp`) in `dir`, once old.
fn remove_stale_records(dir: &Path) -> Result<(), ProvisionError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io("reading", dir)(e)),
    };
    for ent in entries {
        let ent = ent.map_err(io("reading", dir))?;
        let name = ent.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && name.ends_with(".tmp") && stale::old(&ent.path()) {
            remove_tree(&ent.path()).map_err(io("removing", &ent.path()))?;
        }
    }
    Ok(())
}

/// Whether container `id` was made by `run --image` and not yet removed.
pub fn is_provisioned(storage_root: &Path, id: &str) -> bool {
    check_id(id).is_ok() && fs::symlink_metadata(record_path(storage_root, id)).is_ok()
}

/// Removes what `run --image` made for container `id` (root filesystem, bundle, record);
/// returns whether there was anything. Call after the runtime deleted the container.
pub fn remove_container(
    storage_root: &Path,
    driver: &dyn StorageDriver,
    id: &str,
) -> Result<bool, ProvisionError> {
    if !is_provisioned(storage_root, id) {
        return Ok(false);
    }
    let record = record_path(storage_root, id);
    // A record cut short by a crash is empty or partial: its driver is then unknown, and
    // the one given is used.
    let recorded: Option<Record> = fs::read(&record)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    if let Some(r) = &recorded {
        if r.driver != driver.name() {
            return Err(ProvisionError::Driver {
                id: id.to_string(),
                recorded: r.driver.clone(),
                given: driver.name(),
            });
        }
    }
    driver.remove_rootfs(id)?;
    fault::point("delete:rootfs-removed");
    let bundle = storage_root.join(BUNDLES_DIR).join(id);
    remove_tree(&bundle).map_err(io("removing", &bundle))?;
    fault::point("delete:bundle-removed");
    match fs::remove_file(&record) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(io("removing", &record)(e)),
    }
}

#[cfg(test)]
#[path = "provision_tests.rs"]
mod tests;
