//! `stockade image …`: pull, import, export, ls, inspect, tag, rm, prune. Thin wrappers
//! over `stockade_image`; docs/images.md describes the commands and the store.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use stockade_image::oci::manifest::Parsed;
use stockade_image::oci::media::REF_NAME_ANNOTATION;
use stockade_image::provision::Provisioner;
use stockade_image::registry::{self, PullOptions, PullReport};
use stockade_image::transfer::export::{self, ExportFormat};
use stockade_image::transfer::import::{self, ImportFormat, ImportOptions, RootfsConfig};

use super::registry_args::RegistryArgs;
use stockade_image::store::{Store, StoredImage, DEFAULT_IMAGE_ROOT};
use stockade_image::{Platform, Reference};

/// Arguments of `stockade image`.
#[derive(Debug, Args)]
pub struct ImageArgs {
    /// The image store (an OCI image layout).
    #[arg(long = "image-root", global = true, default_value = DEFAULT_IMAGE_ROOT, env = "STOCKADE_IMAGE_ROOT")]
    pub image_root: PathBuf,
    #[command(subcommand)]
    pub command: ImageCommand,
}

/// `image prune`: where the layer chains to prune are kept.
pub type PruneArgs = super::bundle::StorageLocation;

/// The `stockade image` subcommands.
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Pull an image from a registry into the store.
    Pull(PullArgs),
    /// Import an OCI layout directory or archive, a docker-save archive, or a rootfs tarball.
    Import(ImportArgs),
    /// Export a stored image as an OCI layout directory or an OCI archive.
    Export(ExportArgs),
    /// List stored images.
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Print a stored image's manifest and config as JSON.
    Inspect(InspectArgs),
    /// Give a stored image another name.
    Tag(TagArgs),
    /// Remove image names, then the blobs no remaining image uses.
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Remove blobs and stored layer chains that no image references, and stale temporary files.
    Prune(PruneArgs),
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// Image reference: [registry[:port]/]repository[:tag][@sha256:…].
    pub reference: String,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Blobs to download at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    /// No progress bars and no summary; print only the manifest digest.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ImportFormatArg {
    Auto,
    OciDir,
    OciArchive,
    DockerArchive,
    Rootfs,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The file or directory to import.
    pub source: PathBuf,
    /// Name for the image (required for a rootfs tarball, or when the source's own names
    /// are not full references).
    #[arg(long)]
    pub tag: Option<String>,
    /// What the source is.
    #[arg(long, value_enum, default_value = "auto")]
    pub format: ImportFormatArg,
    /// For a layout with several images: the org.opencontainers.image.ref.name to import.
    #[arg(long = "source-ref")]
    pub source_ref: Option<String>,
    /// Platform to select when the source holds an index: os/arch[/variant].
    #[arg(long)]
    pub platform: Option<String>,
    /// rootfs: the image's os.
    #[arg(long, default_value = "freebsd")]
    pub os: String,
    /// rootfs: the image's architecture (default: this host's).
    #[arg(long)]
    pub arch: Option<String>,
    /// rootfs: the image's architecture variant.
    #[arg(long)]
    pub variant: Option<String>,
    /// rootfs: Entrypoint, as a JSON array or a shell command string.
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// rootfs: Cmd, as a JSON array or a shell command string (default: ["/bin/sh"]).
    #[arg(long)]
    pub cmd: Option<String>,
    /// rootfs: an environment variable NAME=value (repeatable; replaces the default PATH).
    #[arg(long = "env", short = 'e')]
    pub env: Vec<String>,
    /// rootfs: working directory.
    #[arg(long)]
    pub workdir: Option<String>,
    /// rootfs: user to run as.
    #[arg(long)]
    pub user: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormatArg {
    /// Directory if DEST does not end in .tar, archive otherwise.
    Auto,
    Dir,
    Archive,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The stored image.
    pub image: String,
    /// Destination directory or archive file.
    pub dest: PathBuf,
    /// Layout directory or archive.
    #[arg(long, value_enum, default_value = "auto")]
    pub format: ExportFormatArg,
    /// The org.opencontainers.image.ref.name in the export (default: the stored name).
    #[arg(long)]
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Print names only.
    #[arg(long, short)]
    pub quiet: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The stored image (name, short name or manifest digest).
    pub image: String,
}

#[derive(Debug, Args)]
pub struct TagArgs {
    /// The stored image.
    pub source: String,
    /// The new name.
    pub target: String,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Stored images to remove.
    #[arg(required = true)]
    pub images: Vec<String>,
}

/// Runs `stockade image …` and returns the process exit code.
pub fn run(_global: &crate::args::GlobalArgs, args: &ImageArgs) -> anyhow::Result<i32> {
    run_command(args).map_err(one_line)
}

/// Library errors already put their cause in their message; printing the chain as well
/// (`{:#}`) would say everything twice. Keep each cause once.
fn one_line(e: anyhow::Error) -> anyhow::Error {
    let mut msg = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if msg.contains(&text) {
            continue;
        }
        if !msg.is_empty() {
            msg.push_str(": ");
        }
        msg.push_str(&text);
    }
    anyhow::anyhow!(msg)
}

fn run_command(args: &ImageArgs) -> anyhow::Result<i32> {
    let store = Store::open(&args.image_root)
        .with_context(|| format!("opening the image store {}", args.image_root.display()))?;
    match &args.command {
        ImageCommand::Pull(a) => pull(&store, a),
        ImageCommand::Import(a) => import_cmd(&store, a),
        ImageCommand::Export(a) => export_cmd(&store, a),
        ImageCommand::Ls(a) => ls(&store, a),
        ImageCommand::Inspect(a) => inspect(&store, a),
        ImageCommand::Tag(a) => tag(&store, a),
        ImageCommand::Rm(a) => rm(&store, a),
        ImageCommand::Prune(a) => prune(&store, a),
    }
}

/// A single-platform image for another platform is pulled (its config says what it is),
/// with a warning.
pub fn warn_platform_mismatch(report: &PullReport, wanted: &Platform) {
    if let Some(p) = &report.platform_mismatch {
        eprintln!(
            "warning: {} is a single-platform image for {p}, not {wanted}",
            report.name
        );
    }
}

fn pull(store: &Store, a: &PullArgs) -> anyhow::Result<i32> {
    let reference: Reference = a.reference.parse()?;
    let (platform, platform_explicit) = a.registry.platform()?;
    let opts = PullOptions {
        client: a.registry.client_options(&reference)?,
        platform,
        platform_explicit,
        jobs: usize::from(a.jobs),
        progress: !a.quiet,
    };
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

/// A JSON array (`["/bin/sh","-c"]`) or a shell command run with `/bin/sh -c`.
fn command_arg(value: &str, flag: &str) -> anyhow::Result<Vec<String>> {
    if value.trim_start().starts_with('[') {
        serde_json::from_str(value)
            .with_context(|| format!("--{flag} {value:?}: not a JSON array of strings"))
    } else {
        Ok(vec!["/bin/sh".into(), "-c".into(), value.into()])
    }
}

fn import_cmd(store: &Store, a: &ImportArgs) -> anyhow::Result<i32> {
    let mut rootfs = RootfsConfig {
        os: a.os.clone(),
        ..RootfsConfig::default()
    };
    if let Some(arch) = &a.arch {
        rootfs.architecture = Platform::new(&a.os, arch, None).architecture;
    }
    rootfs.variant = a.variant.clone();
    if let Some(e) = &a.entrypoint {
        rootfs.entrypoint = Some(command_arg(e, "entrypoint")?);
        // Like docker: a new entrypoint drops the default command.
        if a.cmd.is_none() {
            rootfs.cmd = None;
        }
    }
    if let Some(c) = &a.cmd {
        rootfs.cmd = Some(command_arg(c, "cmd")?);
    }
    if !a.env.is_empty() {
        for e in &a.env {
            if !e.contains('=') || e.starts_with('=') {
                bail!("--env {e:?}: expected NAME=value");
            }
        }
        rootfs.env = a.env.clone();
    }
    if a.workdir.is_some() {
        rootfs.workdir = a.workdir.clone();
    }
    rootfs.user = a.user.clone();
    let (platform, _) = super::registry_args::platform_flag(a.platform.as_deref())?;
    let opts = ImportOptions {
        format: match a.format {
            ImportFormatArg::Auto => ImportFormat::Auto,
            ImportFormatArg::OciDir => ImportFormat::OciDir,
            ImportFormatArg::OciArchive => ImportFormat::OciArchive,
            ImportFormatArg::DockerArchive => ImportFormat::DockerArchive,
            ImportFormatArg::Rootfs => ImportFormat::Rootfs,
        },
        tag: a.tag.as_deref().map(str::parse).transpose()?,
        source_ref: a.source_ref.clone(),
        platform,
        rootfs,
    };
    for image in import::import(store, &a.source, &opts)? {
        println!("{} {}", image.name, image.descriptor.digest);
    }
    Ok(0)
}

fn export_cmd(store: &Store, a: &ExportArgs) -> anyhow::Result<i32> {
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

fn ls(store: &Store, a: &LsArgs) -> anyhow::Result<i32> {
    let images = store.images()?;
    if a.quiet {
        for i in &images {
            println!("{}", i.name);
        }
        return Ok(0);
    }
    if a.json {
        let list: Vec<serde_json::Value> = images
            .iter()
            .map(|i| {
                serde_json::json!({
                    "name": i.name,
                    "digest": i.descriptor.digest.to_string(),
                    "mediaType": i.descriptor.media_type,
                    "platform": i.descriptor.platform.as_ref().map(ToString::to_string),
                    "size": image_size(store, i),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(0);
    }
    let width = images
        .iter()
        .map(|i| i.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    println!(
        "{:width$}  {:12}  {:14}  SIZE",
        "NAME", "DIGEST", "PLATFORM"
    );
    for i in &images {
        let platform = i
            .descriptor
            .platform
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_else(|| "-".into());
        println!(
            "{:width$}  {:12}  {:14}  {}",
            i.name,
            i.descriptor.digest.short(),
            platform,
            human(image_size(store, i))
        );
    }
    Ok(0)
}

fn inspect(store: &Store, a: &InspectArgs) -> anyhow::Result<i32> {
    let image = store.resolve(&a.image)?;
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
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(0)
}

fn tag(store: &Store, a: &TagArgs) -> anyhow::Result<i32> {
    let _writer = store.writer_lock()?;
    let image = store.resolve(&a.source)?;
    let target: Reference = a.target.parse()?;
    let mut desc = image.descriptor.clone();
    if let Some(ann) = desc.annotations.as_mut() {
        ann.remove(REF_NAME_ANNOTATION);
    }
    store.set_ref(&target.to_string(), &desc)?;
    println!("{target}");
    Ok(0)
}

fn rm(store: &Store, a: &RmArgs) -> anyhow::Result<i32> {
    let mut failed = false;
    for name in &a.images {
        match store.remove_ref(name) {
            Ok(image) => println!("untagged {}", image.name),
            Err(e) => {
                eprintln!("stockade: {e}");
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

fn prune(store: &Store, a: &PruneArgs) -> anyhow::Result<i32> {
    // Layer chains first: they are derived from the images, which the blob prune keeps.
    let storage = a.storage_args(store.root());
    let driver = super::bundle::driver(&storage)?;
    let prov = Provisioner::new(store, &storage.location.storage_root, driver.as_ref())?;
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

fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_flags_take_json_arrays_or_shell_strings() {
        assert_eq!(
            command_arg(r#"["/init","-v"]"#, "cmd").unwrap(),
            vec!["/init", "-v"]
        );
        assert_eq!(
            command_arg("echo hi", "cmd").unwrap(),
            vec!["/bin/sh", "-c", "echo hi"]
        );
        assert!(command_arg("[1,2]", "cmd").is_err());
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human(12), "12 B");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(200 * 1024 * 1024), "200.0 MiB");
    }
}
