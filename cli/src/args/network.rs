//! `stockade network ls|create|rm` and the network flags of `run --image`.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use stockade_image::provision::DEFAULT_STORAGE_ROOT;

use super::output::OutputFlags;

/// Arguments of `stockade network`.
#[derive(Debug, Args)]
pub struct NetworkArgs {
    /// The storage root whose networks/ directory holds the networks.
    #[arg(long = "storage-root", global = true, default_value = DEFAULT_STORAGE_ROOT, env = "STOCKADE_STORAGE_ROOT")]
    pub storage_root: PathBuf,
    #[command(subcommand)]
    pub command: NetworkCommand,
}

/// The `stockade network` subcommands.
#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// List the networks (the default one once it was used).
    #[command(alias = "list")]
    Ls {
        // `-q` prints the names.
        #[command(flatten)]
        output: OutputFlags,
    },
    /// Make a bridge network with its own subnet.
    Create {
        /// The network's name.
        name: String,
        /// Its IPv4 subnet, A.B.C.D/N (default: the first free 10.89.N.0/24).
        #[arg(long)]
        subnet: Option<String>,
    },
    /// Remove a network no container is attached to.
    #[command(alias = "remove")]
    Rm {
        /// The networks to remove.
        #[arg(required = true)]
        names: Vec<String>,
    },
}

/// The network flags of `run --image`.
#[derive(Debug, Clone, Args)]
pub struct NetworkFlags {
    /// With --image: `host` (the host's network), `none` (loopback only) or a network's
    /// name (default as root: the config file's `network`, else the bridge network `stockade`
    /// on Linux; `host` otherwise).
    #[arg(long, requires = "image")]
    pub network: Option<String>,
    /// With --image: publish a container port, [IP:]HOST:CONTAINER[/tcp|udp] (repeatable).
    #[arg(short = 'p', long = "publish", requires = "image")]
    pub publish: Vec<String>,
}
