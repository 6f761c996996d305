//! The command line, mirroring runc's so that containerd, conmon, CRI-O and nerdctl can
//! call stockade unchanged. Only clap structs live here; behaviour is in `commands/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Default state directory, as ARCHITECTURE.md and docs/cli.md give it.
pub const DEFAULT_ROOT: &str = "/var/run/stockade";

/// The state directory when `--root` is not given: [`DEFAULT_ROOT`], or for an unprivileged
/// user (rootless) `$XDG_RUNTIME_DIR/stockade`, as runc does.
fn default_root() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !nix::unistd::geteuid().is_root() && !dir.is_empty() => {
            PathBuf::from(dir).join("stockade")
        }
        _ => PathBuf::from(DEFAULT_ROOT),
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "stockade",
    about = "OCI container runtime for FreeBSD jails",
    disable_version_flag = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Flags every caller may put before the command (runc's globals).
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Directory for container state.
    #[arg(long, global = true, default_value_os_t = default_root(), env = "STOCKADE_ROOT")]
    pub root: PathBuf,
    /// Write log lines to this file instead of stderr.
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// Log line format.
    #[arg(long = "log-format", global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log debug messages.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Accepted for runc compatibility; jails have no cgroups.
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    /// runc's `--rootless=true|false|auto`: stockade is rootless exactly when not run as
    /// root (`auto`); `true` as root and `false` as an unprivileged user are refused.
    #[arg(long, global = true, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub rootless: Option<String>,
    /// Print version information.
    #[arg(short = 'v', long = "version")]
    pub version: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a default FreeBSD config.json into the bundle directory.
    Spec(SpecArgs),
    /// Print what `create` would do (jail parameters, mounts, process) without doing it.
    Explain(ExplainArgs),
    /// Create a container from a bundle; it waits for `start`.
    Create(CreateArgs),
    /// Start a created container's process.
    Start(IdArgs),
    /// Print a container's state as JSON.
    State(IdArgs),
    /// Send a signal to a container's init process (or, with --all, every process).
    Kill(KillArgs),
    /// Delete a container and everything create made for it.
    Delete(DeleteArgs),
    /// List containers under --root.
    List(ListArgs),
    /// Create and start a container; in the foreground, wait and exit with its status.
    Run(RunArgs),
    /// Run an additional process in a running container.
    Exec(ExecArgs),
    /// List the host pids of a container's processes.
    Ps(PsArgs),
    /// Change a created or running container's resource limits (memory, swap, pids, CPU).
    Update(crate::commands::update::UpdateArgs),
    /// Print the runtime's features as JSON (runtime-spec features-schema).
    Features,
    /// Manage OCI images: pull, import, export, ls, inspect, tag, rm, prune.
    Image(crate::commands::image::ImageArgs),
    /// Make bundles from images: root filesystems from the storage driver plus config.json.
    Bundle(crate::commands::bundle::BundleArgs),
}

#[derive(Debug, Args)]
pub struct SpecArgs {
    /// Bundle directory to write config.json into.
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

#[derive(Debug, Args)]
pub struct CreateArgs {
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
    /// Accepted for runc compatibility (the root is entered with chroot semantics anyway).
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Accepted for runc compatibility; there are no session keyrings on FreeBSD.
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
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
    pub storage: crate::commands::bundle::StorageLocation,
    /// Container id.
    pub id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
    /// Print only the ids.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Bundle directory holding config.json.
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Return once started instead of waiting for the process.
    #[arg(short, long)]
    pub detach: bool,
    /// Write the container's init pid here (no trailing newline).
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// AF_UNIX socket that receives the pty master when process.terminal is set.
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// AF_UNIX socket that receives a pidfd of the init process (runc 1.2's protocol).
    #[arg(long = "pidfd-socket")]
    pub pidfd_socket: Option<PathBuf>,
    /// Pass this many extra file descriptors to the container process.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Accepted for runc compatibility.
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Accepted for runc compatibility.
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
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
    pub storage: crate::commands::bundle::StorageArgs,
    /// With --image: how to pull it when it is not in the store.
    #[command(flatten)]
    pub registry: crate::commands::registry_args::RegistryArgs,
    /// With --image: the container's resource limits.
    #[command(flatten)]
    pub limits: crate::commands::limit_args::LimitArgs,
    /// Container id (required without --image).
    #[arg(required_unless_present = "image")]
    pub id: Option<String>,
    /// With --image, after `--`: the command to run instead of the image's Cmd.
    #[arg(last = true, requires = "image")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// JSON file holding a runtime-spec `process` object.
    #[arg(short, long)]
    pub process: Option<PathBuf>,
    /// Allocate a pseudo-terminal.
    #[arg(short, long)]
    pub tty: bool,
    /// Return once started instead of waiting.
    #[arg(short, long)]
    pub detach: bool,
    /// Write the process's pid here (no trailing newline).
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// AF_UNIX socket that receives the pty master.
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// AF_UNIX socket that receives a pidfd of the process (runc 1.2's protocol).
    #[arg(long = "pidfd-socket")]
    pub pidfd_socket: Option<PathBuf>,
    /// Working directory inside the container.
    #[arg(long)]
    pub cwd: Option<String>,
    /// Extra environment variables (KEY=VALUE).
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// UID[:GID] to run as.
    #[arg(short, long)]
    pub user: Option<String>,
    /// Additional group ids.
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    /// Pass this many extra file descriptors.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Add a capability (CAP_*) to the bounding, effective and permitted sets (Linux).
    #[arg(short = 'c', long = "cap")]
    pub caps: Vec<String>,
    /// Set no_new_privs for the process.
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// AppArmor profile for the process (Linux).
    #[arg(long)]
    pub apparmor: Option<String>,
    /// SELinux label for the process (Linux).
    #[arg(long = "process-label")]
    pub process_label: Option<String>,
    /// Container id.
    pub id: String,
    /// Command and arguments (when --process is not given).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
    /// Container id.
    pub id: String,
}
