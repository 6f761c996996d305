//! `stockade bundle …`: root filesystems from stored images, and the bundles around them.
//! Also the storage options and helpers that `run --image` shares.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use stockade_image::bundle::{self, BundleOptions, ResolvedImage};
use stockade_image::registry::{self, PullOptions};
use stockade_image::storage::dir::DirDriver;
use stockade_image::storage::zfs::{SystemZfs, ZfsDriver};
use stockade_image::storage::{chain_ids, StorageDriver, StorageError};
use stockade_image::store::{Store, DEFAULT_IMAGE_ROOT};
use stockade_image::{Platform, Reference};

use super::limit_args::LimitArgs;
use super::registry_args::RegistryArgs;

/// Default root of the dir driver's storage (and of the bundles `run --image` writes).
pub const DEFAULT_STORAGE_ROOT: &str = "/var/db/stockade/storage";

/// Which storage driver makes root filesystems.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DriverKind {
    /// Plain directories (any filesystem).
    Dir,
    /// ZFS datasets, snapshots and clones (needs --zfs-dataset).
    Zfs,
}

/// Where images and root filesystems are kept.
#[derive(Debug, Clone, Args)]
pub struct StorageArgs {
    /// The image store (an OCI image layout).
    #[arg(long = "image-root", default_value = DEFAULT_IMAGE_ROOT, env = "STOCKADE_IMAGE_ROOT")]
    pub image_root: PathBuf,
    /// Root of the dir driver's layer chains and container root filesystems, and of the
    /// bundles `run --image` writes.
    #[arg(long = "storage-root", default_value = DEFAULT_STORAGE_ROOT, env = "STOCKADE_STORAGE_ROOT")]
    pub storage_root: PathBuf,
    /// Storage driver; default: zfs when --zfs-dataset is given, else dir.
    #[arg(long = "storage-driver", value_enum, env = "STOCKADE_STORAGE_DRIVER")]
    pub storage_driver: Option<DriverKind>,
    /// Parent dataset of the zfs driver (e.g. pool/stockade).
    #[arg(long = "zfs-dataset", env = "STOCKADE_ZFS_DATASET")]
    pub zfs_dataset: Option<String>,
}

/// Arguments of `stockade bundle`.
#[derive(Debug, Args)]
pub struct BundleArgs {
    #[command(flatten)]
    pub storage: StorageArgs,
    #[command(subcommand)]
    pub command: BundleCommand,
}

/// The `stockade bundle` subcommands.
#[derive(Debug, Subcommand)]
pub enum BundleCommand {
    /// Write a bundle (config.json, rootfs from the storage driver) for an image.
    Create {
        /// The image (pulled when it is not in the store).
        #[arg(long)]
        image: String,
        #[command(flatten)]
        registry: RegistryArgs,
        #[command(flatten)]
        limits: LimitArgs,
        /// Name of the root filesystem in storage (default: from DIR).
        #[arg(long)]
        name: Option<String>,
        /// The bundle directory.
        dir: PathBuf,
        /// Command to run instead of the image's Cmd.
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// Unpack an image's layers into storage (once) without making a root filesystem;
    /// prints the top chainID.
    Prepare {
        /// The image (pulled when it is not in the store).
        #[arg(long)]
        image: String,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Remove a root filesystem made by `bundle create --name ID` or `run --image`.
    Rm {
        /// Its name.
        id: String,
    },
    /// Remove stored layer chains that no image in the store uses.
    Prune,
}

/// Opens the configured driver.
pub fn driver(s: &StorageArgs) -> anyhow::Result<Box<dyn StorageDriver>> {
    let kind = s.storage_driver.unwrap_or(if s.zfs_dataset.is_some() {
        DriverKind::Zfs
    } else {
        DriverKind::Dir
    });
    Ok(match kind {
        DriverKind::Dir => Box::new(DirDriver::new(&s.storage_root)?),
        DriverKind::Zfs => {
            let ds = s
                .zfs_dataset
                .as_deref()
                .context("--storage-driver zfs needs --zfs-dataset POOL/NAME")?;
            // Container clones are mounted under the storage root, so their path is
            // known without asking zfs.
            Box::new(ZfsDriver::new(
                ds,
                Some(s.storage_root.join("zfs")),
                SystemZfs,
            ))
        }
    })
}

/// Finds `image` in the store, pulling it first when it is not there, with `registry`'s
/// credentials and platform.
pub fn ensure_image(
    store: &Store,
    image: &str,
    registry: &RegistryArgs,
) -> anyhow::Result<ResolvedImage> {
    let (platform, platform_explicit) = registry.platform()?;
    if store.resolve(image).is_err() {
        let reference: Reference = image.parse()?;
        eprintln!("{image} is not in the store; pulling {reference}");
        let opts = PullOptions {
            client: registry.client_options(&reference)?,
            platform: platform.clone(),
            platform_explicit,
            jobs: 4,
            progress: false,
        };
        let report = registry::pull(store, &reference, &opts)?;
        super::image::warn_platform_mismatch(&report, &platform);
    }
    Ok(bundle::resolve(store, image, &platform)?)
}

/// Makes the root filesystem `id` for `image` and writes the bundle in `dir`.
pub fn create_bundle(
    driver: &dyn StorageDriver,
    image: &ResolvedImage,
    id: &str,
    dir: &Path,
    command: Option<Vec<String>>,
    limits: &LimitArgs,
) -> anyhow::Result<PathBuf> {
    // Checked before a root filesystem exists to be cleaned up.
    let resources = limits.resources()?;
    // An image already in storage costs just the rootfs (one `zfs clone` with the zfs
    // driver): the top chainID follows from the diffIDs, so try it before preparing.
    let diff_ids: Vec<_> = image.layers.iter().map(|l| l.diff_id.clone()).collect();
    let known = chain_ids(&diff_ids).pop();
    let rootfs = match known.map(|c| driver.create_rootfs(&c, id)) {
        Some(Ok(rootfs)) => rootfs,
        Some(Err(StorageError::NoChain { .. })) | None => {
            let prepared = driver.prepare(&image.layers)?;
            driver.create_rootfs(&prepared.chain, id)?
        }
        Some(Err(e)) => return Err(e.into()),
    };
    let base = stockade_runtime::config::default_freebsd_config();
    let made = bundle::make_config(base, image, &rootfs, &BundleOptions { command }).and_then(
        |mut config| {
            if let Some(r) = &resources {
                config["linux"]["resources"] = r.clone();
            }
            bundle::write_bundle(dir, &config)
        },
    );
    if let Err(e) = made {
        let _ = driver.remove_rootfs(id);
        return Err(e.into());
    }
    Ok(rootfs)
}

/// Runs `stockade bundle …`.
pub fn run(a: &BundleArgs) -> anyhow::Result<u8> {
    let store = Store::open(&a.storage.image_root)
        .with_context(|| format!("opening the image store {}", a.storage.image_root.display()))?;
    let driver = driver(&a.storage)?;
    match &a.command {
        BundleCommand::Create {
            image,
            registry,
            limits,
            name,
            dir,
            command,
        } => {
            let resolved = ensure_image(&store, image, registry)?;
            let id = match name {
                Some(n) => n.clone(),
                None => default_name(dir)?,
            };
            let cmd = (!command.is_empty()).then(|| command.clone());
            let rootfs = create_bundle(driver.as_ref(), &resolved, &id, dir, cmd, limits)?;
            eprintln!(
                "bundle {} for {} (rootfs {} on {})",
                dir.display(),
                resolved.name,
                rootfs.display(),
                driver.name()
            );
            println!("{id}");
        }
        BundleCommand::Prepare { image, registry } => {
            let resolved = ensure_image(&store, image, registry)?;
            let p = driver.prepare(&resolved.layers)?;
            println!("{}", p.chain);
        }
        BundleCommand::Rm { id } => driver.remove_rootfs(id)?,
        BundleCommand::Prune => {
            for c in prune_storage(&store, driver.as_ref())? {
                println!("{c}");
            }
        }
    }
    Ok(0)
}

/// Removes the stored layer chains that no image in `store` uses; returns their chainIDs.
pub fn prune_storage(store: &Store, driver: &dyn StorageDriver) -> anyhow::Result<Vec<String>> {
    let mut keep = Vec::new();
    for img in store.images()? {
        if let Ok(r) = bundle::resolve(store, &img.name, &Platform::host()) {
            let diff: Vec<_> = r.layers.iter().map(|l| l.diff_id.clone()).collect();
            keep.extend(chain_ids(&diff));
        }
    }
    Ok(driver
        .prune(&keep)?
        .into_iter()
        .map(|c| c.to_string())
        .collect())
}

/// A storage name for a bundle directory: its last component, made name-safe.
fn default_name(dir: &Path) -> anyhow::Result<String> {
    let abs =
        std::path::absolute(dir).with_context(|| format!("bundle directory {}", dir.display()))?;
    let base: String = abs
        .file_name()
        .map(|n| {
            n.to_string_lossy()
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let hash = stockade_image::Digest::sha256_of(abs.as_os_str().as_encoded_bytes());
    Ok(format!(
        "bundle-{}-{}",
        base.trim_start_matches('.'),
        &hash.hex()[..12]
    ))
}
