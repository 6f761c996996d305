//! The lifecycle commands: `spec`, `explain`, `create`, `start`, `state`, `kill`,
//! `delete`, `list`, `run`, `ps`. `create` and `run` share [`CreateFlags`].

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use stockade_runtime::container::CreateOptions;

use super::limits::LimitArgs;
use super::network::NetworkFlags;
use super::output::OutputFlags;
use super::registry::RegistryArgs;
use super::run_image::ImageRunFlags;
use super::service::ServiceFlags;
use super::storage::{StorageArgs, StorageLocation};

#[derive(Debug, Args)]
pub struct SpecArgs {
    /// Bundle directory to write config.json into (made when missing; its parent must exist).
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExplainFormat {
    #[value(name = "jail.conf")]
    JailConf,
    Json,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// Bundle directory holding config.json.
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ExplainFormat::JailConf)]
    pub format: ExplainFormat,
    /// Container id the jail would be named after.
    #[arg(default_value = "example")]
    pub id: String,
}

/// The flags `create` and `run` share: the bundle and what create hands the process.
#[derive(Debug, Clone, Args)]
pub struct CreateFlags {
    /// Bundle directory holding config.json.
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Write the container's init pid here (no trailing newline).
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// AF_UNIX socket that receives the pty master when process.terminal is set.
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// AF_UNIX socket that receives a pidfd of the init process (runc 1.2's protocol).
    #[arg(long = "pidfd-socket")]
    pub pidfd_socket: Option<PathBuf>,
    /// Pass this many extra file descriptors (3, 4, …) to the container process.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Accepted for runc compatibility; changes nothing (the root is entered with
    /// pivot_root on Linux, jail_attach on FreeBSD).
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Accepted for runc compatibility; changes nothing (stockade makes no session keyring).
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
}

impl CreateFlags {
    /// The runtime's options for these flags.
    pub fn options(&self) -> CreateOptions {
        CreateOptions {
            pid_file: self.pid_file.clone(),
            console_socket: self.console_socket.clone(),
            preserve_fds: self.preserve_fds,
            pidfd_socket: self.pidfd_socket.clone(),
        }
    }
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub create: CreateFlags,
    /// Accepted for runc compatibility; create always returns once the container exists.
    #[arg(short, long)]
    pub detach: bool,
    /// Container id.
    pub id: String,
}

#[derive(Debug, Args)]
pub struct IdArgs {
    /// Container id.
    pub id: String,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal every process in the container, not just its init.
    #[arg(short, long)]
    pub all: bool,
    /// Container id.
    pub id: String,
    /// Signal as a number (15) or a name with or without SIG (TERM, SIGKILL).
    #[arg(default_value = "TERM")]
    pub signal: String,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Kill a running container first; an unknown id is not an error.
    #[arg(short, long)]
    pub force: bool,
    /// For a container made by `run --image`: where its bundle and root filesystem are.
    #[command(flatten)]
    pub storage: StorageLocation,
    /// Container id.
    pub id: String,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    // `json`: runc's array of state objects, as `state` prints them.
    #[command(flatten)]
    pub output: OutputFlags,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: CreateFlags,
    /// Return once started instead of waiting for the process.
    #[arg(short, long)]
    pub detach: bool,
    /// Run this image (pulled when missing) instead of a bundle.
    #[arg(long, conflicts_with = "bundle")]
    pub image: Option<String>,
    /// With --image: remove the root filesystem and the bundle after the run.
    #[arg(long, requires = "image")]
    pub rm: bool,
    /// With --image: the container id (default: a generated one).
    #[arg(long, requires = "image", conflicts_with = "id")]
    pub name: Option<String>,
    /// With --image: where images and root filesystems are.
    #[command(flatten)]
    pub storage: StorageArgs,
    /// With --image: how to pull it when it is not in the store.
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// With --image: the container's resource limits.
    #[command(flatten)]
    pub limits: LimitArgs,
    /// With --image: its network and published ports.
    #[command(flatten)]
    pub network: NetworkFlags,
    /// The config file's `network`: the default for `--network` (as root).
    #[arg(skip)]
    pub default_network: Option<String>,
    /// With --image: Podman's flags for what runs (env, volumes, user, …).
    #[command(flatten)]
    pub flags: ImageRunFlags,
    /// With --image -d: the restart policy and the log.
    #[command(flatten)]
    pub service: ServiceFlags,
    /// Container id (required without --image).
    #[arg(required_unless_present = "image")]
    pub id: Option<String>,
    /// With --image, after `--`: the command to run instead of the image's Cmd.
    #[arg(last = true, requires = "image")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    // `table`: ps(1)'s lines of the container's processes; `json`: runc's array of host
    // pids; `-q`: the pids, one per line.
    #[command(flatten)]
    pub output: OutputFlags,
    /// Container id.
    pub id: String,
    /// Arguments for ps(1) (default -ef; -ax on FreeBSD), after the id or after `--`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}
