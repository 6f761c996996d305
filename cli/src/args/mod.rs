//! The command line, mirroring runc's so that containerd, conmon, CRI-O and nerdctl can
//! call stockade unchanged. Only clap structs live here, one file per command family, and
//! their conversions into the libraries' typed options; behaviour is in `commands/`.
//! This module imports the libraries and nothing of `commands/`.

pub mod bundle;
pub mod docs;
pub mod exec;
pub mod image;
pub mod lifecycle;
pub mod limits;
pub mod network;
pub mod output;
pub mod push;
pub mod registry;
pub mod run_image;
pub mod service;
pub mod specs;
pub mod storage;
pub mod update;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Default state directory, as docs/cli.md gives it.
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
    /// The config file (TOML) giving defaults for these flags; default: /etc/stockade/stockade.conf
    /// on Linux, /usr/local/etc/stockade.conf on FreeBSD (used when it exists).
    #[arg(long, global = true, env = "STOCKADE_CONFIG")]
    pub config: Option<PathBuf>,
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
    /// Accepted for runc compatibility and ignored: Linux cgroups are managed directly
    /// (cgroupfs, never systemd); FreeBSD uses rctl.
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
    Spec(lifecycle::SpecArgs),
    /// Print what `create` would do (jail parameters, mounts, process) without doing it.
    Explain(lifecycle::ExplainArgs),
    /// Create a container from a bundle; it waits for `start`.
    Create(lifecycle::CreateArgs),
    /// Start a created container's process, or a stopped service (`run --image -d`) again.
    Start(service::StartArgs),
    /// Print a container's state as JSON.
    State(lifecycle::IdArgs),
    /// Send a signal to a container's init process (or, with --all, every process).
    Kill(lifecycle::KillArgs),
    /// Delete a container and everything create made for it.
    Delete(lifecycle::DeleteArgs),
    /// List containers under --root.
    List(lifecycle::ListArgs),
    /// Create and start a container; in the foreground, wait and exit with its status.
    Run(Box<lifecycle::RunArgs>),
    /// Run an additional process in a running container.
    Exec(exec::ExecArgs),
    /// List the host pids of a container's processes.
    Ps(lifecycle::PsArgs),
    /// Change a created or running container's resource limits (memory, swap, pids, CPU).
    Update(update::UpdateArgs),
    /// Print the runtime's features as JSON (runtime-spec features-schema).
    Features,
    /// Manage OCI images: pull, import, export, ls, inspect, tag, rm, prune.
    Image(image::ImageArgs),
    /// Make bundles from images: root filesystems from the storage driver plus config.json.
    Bundle(bundle::BundleArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completion(docs::CompletionArgs),
    /// Write the man pages (stockade.8 and one per command) into a directory.
    Man(docs::ManArgs),
    /// Manage container networks (CNI): ls, create, rm.
    Network(network::NetworkArgs),
    /// Print the log of a service started with `run --image -d`.
    Logs(service::LogsArgs),
    /// Stop services: their stop signal, then SIGKILL after the timeout; no restart follows.
    Stop(service::StopArgs),
    /// Remove containers made by `run --image`: state, root filesystem, bundle, network, logs.
    Rm(service::RmArgs),
    /// Print containers made by `run --image` as JSON: config, state, mounts, network, log.
    Inspect(service::InspectArgs),
    /// The monitor of one service (started by `run --image -d`).
    #[command(hide = true)]
    Monitor(service::MonitorArgs),
}

#[cfg(test)]
mod tests;
