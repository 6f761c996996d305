//! `stockade image …`: pull, import, export, ls, inspect, tag, rm, prune.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use stockade_image::store::DEFAULT_IMAGE_ROOT;

use super::registry::RegistryArgs;
use super::storage::StorageLocation;

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
pub type PruneArgs = StorageLocation;

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
