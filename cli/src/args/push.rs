//! `stockade image push`, `login` and `logout`.

use std::path::PathBuf;

use clap::Args;

use super::registry::RegistryArgs;

#[derive(Debug, Args)]
pub struct PushArgs {
    /// The stored image (name, short name or manifest digest).
    pub source: String,
    /// Where to push it: [registry[:port]/]repository[:tag] (default: the stored name).
    pub destination: Option<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Blobs to upload at once.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    /// Blobs up to this many bytes go in one request; larger ones in chunks of this size.
    #[arg(long = "chunk-size", default_value_t = 8 << 20, value_parser = clap::value_parser!(u64).range(4096..=(1 << 30)))]
    pub chunk_size: u64,
    /// No progress bars and no summary; print only the manifest digest.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The registry: host[:port] (docker.io for Docker Hub).
    pub registry: String,
    /// User name.
    #[arg(long, short)]
    pub username: String,
    /// Read the password from standard input (a trailing newline is dropped).
    #[arg(long = "password-stdin", conflicts_with = "password")]
    pub password_stdin: bool,
    /// The password (visible to other users in the process list: prefer --password-stdin).
    #[arg(long, short)]
    pub password: Option<String>,
    /// The auth file to write (default: $REGISTRY_AUTH_FILE, else
    /// $XDG_RUNTIME_DIR/containers/auth.json, else $DOCKER_CONFIG/config.json, else
    /// ~/.docker/config.json: the first of the files pulls read).
    #[arg(long)]
    pub authfile: Option<PathBuf>,
    /// Use plain HTTP for this registry (always done for localhost and loopback addresses).
    #[arg(long)]
    pub insecure: bool,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// The registry: host[:port].
    pub registry: String,
    /// The auth file to remove the entry from (default: as for login).
    #[arg(long)]
    pub authfile: Option<PathBuf>,
}
