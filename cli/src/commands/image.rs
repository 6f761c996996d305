//! `stockade image …`: pull, push, login, logout, import, export, ls, inspect, tag, rm, prune. Thin wrappers
//! over `stockade_image`; docs/images.md describes the commands and the store.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use stockade_image::bundle::ResolvedImage;
use stockade_image::oci::manifest::Parsed;
use stockade_image::oci::media::REF_NAME_ANNOTATION;
use stockade_image::provision::{self, Provisioner, PullSettings, StorageConfig};
use stockade_image::registry::progress::UnpackProgress;
use stockade_image::registry::{self, PullReport};
use stockade_image::rootfs::storage::StorageDriver;
use stockade_image::store::{Store, StoredImage};
use stockade_image::transfer::export::{self, ExportFormat};
use stockade_image::transfer::import;
use stockade_image::{Platform, Reference};

use super::human::human;
use super::listing::Listed;
use crate::args::image::{
    ExportArgs, ExportFormatArg, ImageArgs, ImageCommand, ImportArgs, InspectArgs, InspectFormat,
    LsArgs, PruneArgs, PullArgs, RmArgs, TagArgs,
};
use crate::args::output::OutputFormat;

/// Opens the image store at `root`.
pub fn open_store(root: &Path) -> anyhow::Result<Store> {
    Store::open(root).with_context(|| format!("opening the image store {}", root.display()))
}

/// Opens the storage driver of `config` with an unpack progress bar when stderr is a
/// terminal: the caller sets its layer count once the image is known and finishes it.
pub fn open_unpacking(
    config: &StorageConfig,
) -> anyhow::Result<(Box<dyn StorageDriver>, Arc<UnpackProgress>)> {
    let mut driver = config.open()?;
    let progress = UnpackProgress::new(true);
    if progress.is_drawn() {
        driver.set_layer_hook(progress.hook());
    }
    Ok((driver, progress))
}

/// Runs `stockade image …` and returns the process exit code.
pub fn run(args: &ImageArgs) -> anyhow::Result<u8> {
    // Opened only by the commands that use the store (login and logout do not).
    let open = || open_store(&args.image_root);
    match &args.command {
        ImageCommand::Pull(a) => pull(&open()?, a),
        ImageCommand::Push(a) => super::image_push::push(&open()?, a),
        ImageCommand::Login(a) => super::image_push::login(a),
        ImageCommand::Logout(a) => super::image_push::logout(a),
        ImageCommand::Import(a) => import_cmd(&open()?, a),
        ImageCommand::Export(a) => export_cmd(&open()?, a),
        ImageCommand::Ls(a) => ls(&open()?, a),
        ImageCommand::Inspect(a) => inspect(&open()?, a),
        ImageCommand::Tag(a) => tag(&open()?, a),
        ImageCommand::Rm(a) => rm(&open()?, a),
        ImageCommand::Prune(a) => prune(&open()?, a),
    }
}

/// Finds `image` in the store, pulling it first when it is missing (saying so on stderr).
pub fn ensure_image(
    store: &Store,
    image: &str,
    settings: &PullSettings,
) -> anyhow::Result<ResolvedImage> {
    let ensured = provision::ensure_image(store, image, settings, &mut |reference| {
        eprintln!("{image} is not in the store; pulling {reference}");
    })?;
    if let Some(report) = &ensured.pulled {
        warn_platform_mismatch(report, &settings.platform().0);
    }
    Ok(ensured.image)
}

/// A single-platform image for another platform is pulled (its config says what it is),
/// with a warning.
fn warn_platform_mismatch(report: &PullReport, wanted: &Platform) {
    if let Some(p) = &report.platform_mismatch {
        eprintln!(
            "warning: {} is a single-platform image for {p}, not {wanted}",
            report.name
        );
    }
}

fn pull(store: &Store, a: &PullArgs) -> anyhow::Result<u8> {
    let reference: Reference = a.reference.parse()?;
    let opts = a
        .registry
        .settings()?
        .pull_options(&reference, usize::from(a.jobs), !a.quiet)?;
    let report = registry::pull(store, &reference, &opts)?;
    warn_platform_mismatch(&report, &opts.platform);
    if a.quiet {
        println!("{}", report.descriptor.digest);
    } else {
        eprintln!(
            "pulled {} ({} blobs, {} downloaded; {} already stored)",
            report.name,
            report.fetched,
            human(report.fetched_bytes),
            report.reused
        );
        println!("{}", report.descriptor.digest);
    }
    Ok(0)
}

fn import_cmd(store: &Store, a: &ImportArgs) -> anyhow::Result<u8> {
    let opts = a.options()?;
    for image in import::import(store, &a.source, &opts)? {
        println!("{} {}", image.name, image.descriptor.digest);
    }
    Ok(0)
}

fn export_cmd(store: &Store, a: &ExportArgs) -> anyhow::Result<u8> {
    let format = match a.format {
        ExportFormatArg::Dir => ExportFormat::Dir,
        ExportFormatArg::Archive => ExportFormat::Archive,
        ExportFormatArg::Auto => {
            if is_tar_name(&a.dest) {
                ExportFormat::Archive
            } else {
                ExportFormat::Dir
            }
        }
    };
    let desc = export::export(store, &a.image, &a.dest, format, a.name.as_deref())?;
    let name = desc
        .annotations
        .as_ref()
        .and_then(|m| m.get(REF_NAME_ANNOTATION))
        .cloned()
        .unwrap_or_default();
    println!("{} {} -> {}", name, desc.digest, a.dest.display());
    Ok(0)
}

fn is_tar_name(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == "tar")
}

/// The total size of an image's blobs (manifest, config, layers).
fn image_size(store: &Store, image: &StoredImage) -> u64 {
    match store.read_manifest(&image.descriptor) {
        Ok((_, Parsed::Image(m))) => {
            image.descriptor.size + m.config.size + m.layers.iter().map(|l| l.size).sum::<u64>()
        }
        _ => image.descriptor.size,
    }
}

/// An image in `image ls`.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct ListedImage {
    name: String,
    digest: String,
    media_type: String,
    platform: Option<String>,
    size: u64,
    /// The table's DIGEST column (what `image inspect` and `run --image` accept).
    #[serde(skip)]
    short_digest: String,
}

impl Listed for ListedImage {
    fn id(&self) -> String {
        self.name.clone()
    }
    fn cells(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            self.short_digest.clone(),
            self.platform.clone().unwrap_or_else(|| "-".into()),
            human(self.size),
        ]
    }
}

fn ls(store: &Store, a: &LsArgs) -> anyhow::Result<u8> {
    let images: Vec<ListedImage> = store
        .images()?
        .iter()
        .map(|i| ListedImage {
            name: i.name.clone(),
            digest: i.descriptor.digest.to_string(),
            media_type: i.descriptor.media_type.to_string(),
            platform: i.descriptor.platform.as_ref().map(ToString::to_string),
            size: image_size(store, i),
            short_digest: i.descriptor.digest.short().to_string(),
        })
        .collect();
    let mut output = a.output.clone();
    if a.json {
        output.format = OutputFormat::Json;
    }
    super::listing::print(&output, &["NAME", "DIGEST", "PLATFORM", "SIZE"], &images)?;
    Ok(0)
}

fn inspect(store: &Store, a: &InspectArgs) -> anyhow::Result<u8> {
    let image = provision::find_image(store, &a.image)?;
    if a.quiet {
        println!("{}", image.descriptor.digest);
        return Ok(0);
    }
    let (bytes, parsed) = store.read_manifest(&image.descriptor)?;
    let manifest: serde_json::Value = serde_json::from_slice(&bytes)?;
    let config = match &parsed {
        Parsed::Image(m) => serde_json::from_slice(&store.read_small_blob(&m.config.digest)?)?,
        Parsed::Index(_) => serde_json::Value::Null,
    };
    let out = serde_json::json!({
        "name": image.name,
        "digest": image.descriptor.digest.to_string(),
        "mediaType": image.descriptor.media_type,
        "size": image_size(store, &image),
        "platform": image.descriptor.platform.as_ref().map(ToString::to_string),
        "manifest": manifest,
        "config": config,
    });
    match a.format {
        InspectFormat::Json => println!("{}", serde_json::to_string_pretty(&out)?),
    }
    Ok(0)
}

fn tag(store: &Store, a: &TagArgs) -> anyhow::Result<u8> {
    let _writer = store.writer_lock()?;
    let image = provision::find_image(store, &a.source)?;
    let target: Reference = a.target.parse()?;
    let mut desc = image.descriptor.clone();
    if let Some(ann) = desc.annotations.as_mut() {
        ann.remove(REF_NAME_ANNOTATION);
    }
    store.set_ref(&target.to_string(), &desc)?;
    println!("{target}");
    Ok(0)
}

fn rm(store: &Store, a: &RmArgs) -> anyhow::Result<u8> {
    let mut failed = false;
    for name in &a.images {
        match store.remove_ref(name) {
            Ok(image) => println!("untagged {}", image.name),
            Err(e) => {
                crate::report::print_error(&crate::report::error_text(&e.into()));
                failed = true;
            }
        }
    }
    let report = store.prune()?;
    if !report.removed.is_empty() {
        let bytes: u64 = report.removed.iter().map(|(_, s)| s).sum();
        println!("deleted {} blobs ({})", report.removed.len(), human(bytes));
    }
    Ok(if failed { 1 } else { 0 })
}

fn prune(store: &Store, a: &PruneArgs) -> anyhow::Result<u8> {
    // Layer chains first: they are derived from the images, which the blob prune keeps.
    let driver = a.config(Default::default()).open()?;
    let prov = Provisioner::new(store, &a.storage_root, driver.as_ref())?;
    for chain in prov.prune()? {
        println!("deleted layer chain {chain}");
    }
    let report = store.prune()?;
    let bytes: u64 = report.removed.iter().map(|(_, s)| s).sum();
    for (d, _) in &report.removed {
        println!("deleted {d}");
    }
    println!(
        "pruned {} blobs ({}), {} temporary files",
        report.removed.len(),
        human(bytes),
        report.temporaries
    );
    Ok(0)
}
