//! `stockade bundle …`: root filesystems from stored images, and the bundles around them.
//! Also the storage options and helpers that `run --image` shares.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use stockade_image::bundle::{self, BundleOptions, ResolvedImage};
use stockade_image::provision::Provisioner;
use stockade_image::registry::{self, PullOptions};
use stockade_image::rootfs::storage::dir::DirDriver;
use stockade_image::rootfs::storage::zfs::{SystemZfs, ZfsDriver};
use stockade_image::rootfs::storage::StorageDriver;
use stockade_image::rootfs::unpack::{SizeLimit, UnpackLimits};
use stockade_image::store::{Store, DEFAULT_IMAGE_ROOT};
use stockade_image::Reference;

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
    #[command(flatten)]
    pub location: StorageLocation,
    #[command(flatten)]
    pub unpack: UnpackArgs,
}

/// Where a storage root is and which driver it has: for the commands that remove from it
/// and unpack nothing (`image prune`, `delete`).
#[derive(Debug, Clone, Args)]
pub struct StorageLocation {
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

impl StorageLocation {
    /// The full storage options, with `image_root` and the default bounds.
    pub fn storage_args(&self, image_root: &Path) -> StorageArgs {
        StorageArgs {
            image_root: image_root.to_path_buf(),
            location: self.clone(),
            unpack: UnpackArgs::default(),
        }
    }
}

/// Bounds on what an image may unpack to (docs/storage.md, "Bounds on images").
#[derive(Debug, Clone, Args)]
pub struct UnpackArgs {
    /// Most bytes an image's layers may expand to together: `auto` (8x their compressed
    /// size, at least 1 GiB) or a size (suffixes k, m, g, t).
    #[arg(
        long = "max-unpacked-size",
        default_value = "auto",
        env = "STOCKADE_MAX_UNPACKED_SIZE"
    )]
    pub max_unpacked_size: SizeLimit,
    /// Most bytes the sparse files of an image may declare together (their apparent
    /// size): `auto` (as for --max-unpacked-size) or a size.
    #[arg(
        long = "max-sparse-size",
        default_value = "auto",
        env = "STOCKADE_MAX_SPARSE_SIZE"
    )]
    pub max_sparse_size: SizeLimit,
    /// Most entries (files, directories, links…) of an image's layers together.
    #[arg(long = "max-entries", default_value_t = UnpackLimits::default().max_entries, env = "STOCKADE_MAX_ENTRIES")]
    pub max_entries: u64,
    /// Most components of a path in a layer.
    #[arg(long = "max-path-depth", default_value_t = UnpackLimits::default().max_depth, env = "STOCKADE_MAX_PATH_DEPTH")]
    pub max_path_depth: usize,
    /// Most bytes of one entry's long name, long link target or pax header (suffixes k, m).
    #[arg(long = "max-header-size", default_value = "1m", value_parser = parse_bytes, env = "STOCKADE_MAX_HEADER_SIZE")]
    pub max_header_size: u64,
}

impl Default for UnpackArgs {
    fn default() -> Self {
        let d = UnpackLimits::default();
        UnpackArgs {
            max_unpacked_size: d.max_bytes,
            max_sparse_size: d.max_sparse_bytes,
            max_entries: d.max_entries,
            max_path_depth: d.max_depth,
            max_header_size: d.max_header_bytes,
        }
    }
}

impl UnpackArgs {
    /// The bounds these flags give.
    pub fn limits(&self) -> UnpackLimits {
        UnpackLimits {
            max_bytes: self.max_unpacked_size,
            max_sparse_bytes: self.max_sparse_size,
            max_entries: self.max_entries,
            max_depth: self.max_path_depth,
            max_header_bytes: self.max_header_size,
        }
    }
}

/// A byte count (no `auto`).
fn parse_bytes(s: &str) -> Result<u64, String> {
    match s.parse::<SizeLimit>() {
        Ok(SizeLimit::Bytes(b)) => Ok(b),
        Ok(SizeLimit::Auto) => Err("a number of bytes is needed here, not auto".into()),
        Err(e) => Err(e.to_string()),
    }
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
    /// Remove stored layer chains that no image of any store using this storage root
    /// needs, and temporaries that crashes left.
    Prune,
}

/// Opens the configured driver.
pub fn driver(args: &StorageArgs) -> anyhow::Result<Box<dyn StorageDriver>> {
    let s = &args.location;
    let kind = s.storage_driver.unwrap_or(if s.zfs_dataset.is_some() {
        DriverKind::Zfs
    } else {
        DriverKind::Dir
    });
    Ok(match kind {
        DriverKind::Dir => {
            Box::new(DirDriver::new(&s.storage_root)?.with_limits(args.unpack.limits()))
        }
        DriverKind::Zfs => {
            let ds = s
                .zfs_dataset
                .as_deref()
                .context("--storage-driver zfs needs --zfs-dataset POOL/NAME")?;
            // Container clones are mounted under the storage root, so their path is
            // known without asking zfs.
            Box::new(
                ZfsDriver::new(ds, Some(s.storage_root.join("zfs")), SystemZfs)
                    .with_limits(args.unpack.limits()),
            )
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

/// What a bundle made from an image gets from the host the runtime runs on: on Linux the
/// confinement Podman gives an image (default capabilities; masked and read-only /proc and
/// /sys paths), so `run --image` is never less confined than runc's own default config.
pub fn host_defaults() -> Option<fn(&mut serde_json::Value)> {
    if cfg!(target_os = "linux") {
        Some(linux_image_defaults)
    } else {
        None
    }
}

/// The Linux defaults, and for an unprivileged caller (rootless) a user namespace whose
/// root is the caller.
fn linux_image_defaults(spec: &mut serde_json::Value) {
    stockade_runtime::config::add_linux_image_defaults(spec);
    let (uid, gid) = (nix::unistd::geteuid(), nix::unistd::getegid());
    if !uid.is_root() {
        stockade_runtime::config::add_rootless_user_namespace(spec, uid.as_raw(), gid.as_raw());
    }
}

/// The base `config.json` and resource limits of a bundle for `limits`' flags.
pub fn bundle_base(
    limits: &LimitArgs,
) -> anyhow::Result<(serde_json::Value, Option<serde_json::Value>)> {
    // Checked before a root filesystem exists to be cleaned up.
    let resources = limits.resources()?;
    Ok((
        stockade_runtime::config::default_freebsd_config(),
        resources,
    ))
}

/// Runs `stockade bundle …`.
pub fn run(a: &BundleArgs) -> anyhow::Result<u8> {
    let store = Store::open(&a.storage.image_root)
        .with_context(|| format!("opening the image store {}", a.storage.image_root.display()))?;
    let driver = driver(&a.storage)?;
    let prov = Provisioner::new(&store, &a.storage.location.storage_root, driver.as_ref())?;
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
            let command = (!command.is_empty()).then(|| command.clone());
            let (base, resources) = bundle_base(limits)?;
            let rootfs = prov.create_bundle(
                &resolved,
                &id,
                dir,
                base,
                &BundleOptions {
                    command,
                    host_defaults: host_defaults(),
                },
                resources.as_ref(),
            )?;
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
            let p = prov.prepare(&resolved)?;
            println!("{}", p.chain);
        }
        BundleCommand::Rm { id } => driver.remove_rootfs(id)?,
        BundleCommand::Prune => {
            for c in prov.prune()? {
                println!("{c}");
            }
        }
    }
    Ok(0)
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
