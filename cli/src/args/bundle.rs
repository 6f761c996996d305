//! `stockade bundle …`: create, prepare, rm, prune.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::limits::LimitArgs;
use super::registry::RegistryArgs;
use super::storage::StorageArgs;

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
