//! `stockade image …`: pull, push, login, logout, import, export, ls, inspect, tag, rm, prune.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use stockade_image::store::DEFAULT_IMAGE_ROOT;
use stockade_image::transfer::import::{ImportFormat, ImportOptions, RootfsConfig};
use stockade_image::Platform;

use super::output::OutputFlags;
use super::registry::{platform_flag, RegistryArgs};
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
    /// Push a stored image to a registry.
    Push(super::push::PushArgs),
    /// Check credentials against a registry and save them in an auth file.
    Login(super::push::LoginArgs),
    /// Remove a registry's credentials from an auth file.
    Logout(super::push::LogoutArgs),
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
    // `-q` prints the names.
    #[command(flatten)]
    pub output: OutputFlags,
    /// The same as --format json (kept for scripts written before --format).
    #[arg(long, hide = true)]
    pub json: bool,
}

/// `image inspect`'s only format: a manifest and a config are nested documents, which no
/// table shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum InspectFormat {
    #[default]
    Json,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Output format: json only (an image's manifest and config are nested documents, which
    /// make no table).
    #[arg(short, long, value_enum, default_value_t = InspectFormat::Json)]
    pub format: InspectFormat,
    /// Print only the image's manifest digest.
    #[arg(short, long)]
    pub quiet: bool,
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

/// A JSON array (`["/bin/sh","-c"]`) or a shell command run with `/bin/sh -c`.
fn command_arg(value: &str, flag: &str) -> anyhow::Result<Vec<String>> {
    if value.trim_start().starts_with('[') {
        serde_json::from_str(value)
            .with_context(|| format!("--{flag} {value:?}: not a JSON array of strings"))
    } else {
        Ok(vec!["/bin/sh".into(), "-c".into(), value.into()])
    }
}

impl ImportArgs {
    /// The import library's options for these flags.
    pub fn options(&self) -> anyhow::Result<ImportOptions> {
        let mut rootfs = RootfsConfig {
            os: self.os.clone(),
            ..RootfsConfig::default()
        };
        if let Some(arch) = &self.arch {
            rootfs.architecture = Platform::new(&self.os, arch, None).architecture;
        }
        rootfs.variant = self.variant.clone();
        if let Some(e) = &self.entrypoint {
            rootfs.entrypoint = Some(command_arg(e, "entrypoint")?);
            // Like docker: a new entrypoint drops the default command.
            if self.cmd.is_none() {
                rootfs.cmd = None;
            }
        }
        if let Some(c) = &self.cmd {
            rootfs.cmd = Some(command_arg(c, "cmd")?);
        }
        if !self.env.is_empty() {
            for e in &self.env {
                if !e.contains('=') || e.starts_with('=') {
                    bail!("--env {e:?}: expected NAME=value");
                }
            }
            rootfs.env = self.env.clone();
        }
        if self.workdir.is_some() {
            rootfs.workdir = self.workdir.clone();
        }
        rootfs.user = self.user.clone();
        let platform = platform_flag(self.platform.as_deref())?.unwrap_or_else(Platform::host);
        Ok(ImportOptions {
            format: match self.format {
                ImportFormatArg::Auto => ImportFormat::Auto,
                ImportFormatArg::OciDir => ImportFormat::OciDir,
                ImportFormatArg::OciArchive => ImportFormat::OciArchive,
                ImportFormatArg::DockerArchive => ImportFormat::DockerArchive,
                ImportFormatArg::Rootfs => ImportFormat::Rootfs,
            },
            tag: self.tag.as_deref().map(str::parse).transpose()?,
            source_ref: self.source_ref.clone(),
            platform,
            rootfs,
        })
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
}
