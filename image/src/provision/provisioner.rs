//! [`Provisioner`]: layer chains, root filesystems and bundles in one storage root, for
//! one image store; and the prune of the chains no store using the root still needs.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::record::{self, Record};
use super::volumes;
use super::{io, ProvisionError};
use crate::bundle::{self, BundleOptions, ResolvedImage};
use crate::oci::digest::Digest;
use crate::oci::manifest::Parsed;
use crate::oci::platform::Platform;
use crate::rootfs::storage::{chain_ids, check_id, users, Prepared, StorageDriver, StorageError};
use crate::store::Store;
use stockade_fault as fault;

/// A bundle to make from an image.
#[derive(Debug, Clone)]
pub struct BundleRequest {
    /// The root filesystem's name in storage; for `run --image` also the container id.
    pub id: String,
    /// The complete `config.json` the image config is laid over.
    pub base: Value,
    /// The command and host defaults.
    pub options: BundleOptions,
    /// `linux.resources` of the bundle, when given.
    pub resources: Option<Value>,
}

/// A store, the storage root it provisions into and the driver that makes chains there.
pub struct Provisioner<'a> {
    store: &'a Store,
    storage_root: PathBuf,
    driver: &'a dyn StorageDriver,
}

/// A bundle made by [`Provisioner::create_bundle`] or [`Provisioner::run_bundle`].
#[derive(Debug, Clone)]
pub struct MadeBundle {
    /// The bundle directory (`<storage>/bundles/<id>` for `run --image`).
    pub bundle: PathBuf,
    /// The container's root filesystem.
    pub rootfs: PathBuf,
    /// The `config.json` written there, so that a caller running it need not read it back.
    pub config: Value,
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

    /// Makes the root filesystem `req.id` and writes the bundle `dir` around it: the image
    /// config laid over `req.base`, with `req.resources` as `linux.resources` when given.
    /// On failure the root filesystem made here is removed again.
    pub fn create_bundle(
        &self,
        image: &ResolvedImage,
        dir: &Path,
        req: BundleRequest,
    ) -> Result<MadeBundle, ProvisionError> {
        let rootfs = self.create_rootfs(image, &req.id)?;
        let made =
            bundle::make_config(req.base, image, &rootfs, &req.options).and_then(|mut config| {
                if let Some(r) = req.resources {
                    config["linux"]["resources"] = r;
                }
                bundle::write_bundle(dir, &config).map(|_| config)
            });
        let config = match made {
            Ok(c) => c,
            Err(e) => {
                let _ = self.driver.remove_rootfs(&req.id);
                return Err(e.into());
            }
        };
        fault::point("provision:bundle-written");
        Ok(MadeBundle {
            bundle: dir.to_path_buf(),
            rootfs,
            config,
        })
    }

    /// For `run --image`: records container `req.id`, then makes its root filesystem and
    /// its bundle in `<storage>/bundles/<id>`. [`super::remove_container`] undoes all of
    /// it, from any point a crash may have stopped this at. With `remove_on_failure`
    /// (`--rm`) a failure removes what was made at once: nobody ran the container, so it
    /// is ours alone; without it `delete` takes it.
    pub fn run_bundle(
        &self,
        image: &ResolvedImage,
        req: BundleRequest,
        remove_on_failure: bool,
    ) -> Result<MadeBundle, ProvisionError> {
        let id = req.id.clone();
        let made = self.record_and_make(image, req);
        if let Err(e) = &made {
            // What carries the name of an earlier container, or a root filesystem someone
            // else made under that name, is not ours to remove.
            let taken = matches!(
                e,
                ProvisionError::Exists { .. }
                    | ProvisionError::Storage(StorageError::Exists { .. })
            );
            if remove_on_failure && !taken {
                let _ = record::remove_container(&self.storage_root, self.driver, &id);
            }
        }
        made
    }

    fn record_and_make(
        &self,
        image: &ResolvedImage,
        mut req: BundleRequest,
    ) -> Result<MadeBundle, ProvisionError> {
        // A root filesystem of that name from `bundle create --name` is someone else's:
        // refused before the record, which would make `delete` remove it.
        check_id(&req.id)?;
        let rootfs = self.driver.rootfs_path(&req.id)?;
        if fs::symlink_metadata(&rootfs).is_ok()
            && !record::is_provisioned(&self.storage_root, &req.id)
        {
            return Err(StorageError::Exists {
                id: req.id,
                path: rootfs,
            }
            .into());
        }
        record::write(
            &self.storage_root,
            &Record {
                id: req.id.clone(),
                driver: self.driver.name().to_string(),
                image: image.name.clone(),
            },
        )?;
        fault::point("run-image:recorded");
        let dir = record::bundle_path(&self.storage_root, &req.id);
        // Anonymous volumes live in the bundle, so whatever removes it removes them.
        volumes::resolve(
            &self.storage_root,
            image,
            &mut req.options.run,
            &dir.join(volumes::VOLUMES_DIR),
        )?;
        self.create_bundle(image, &dir, req)
    }

    /// Removes what `run --image` made for container `id`; see [`super::remove_container`].
    pub fn remove_container(&self, id: &str) -> Result<bool, ProvisionError> {
        record::remove_container(&self.storage_root, self.driver, id)
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
        record::remove_stale_temporaries(&self.storage_root.join(record::PROVISIONS_DIR))?;
        // Interrupted rewrites of image-roots.json.
        record::remove_stale_temporaries(&self.storage_root)?;
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
