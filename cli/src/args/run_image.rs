//! The flags `run --image` takes beyond `run`'s, with Podman's names, and their
//! conversion into the image library's [`RunOverrides`].

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use stockade_image::bundle::run::{check_hostname, hostname_for};
use stockade_image::bundle::RunOverrides;

use super::specs;

/// Podman's `run` flags for an image.
#[derive(Debug, Clone, Args)]
pub struct ImageRunFlags {
    /// With --image: set an environment variable, NAME=value (NAME alone: this process's value).
    #[arg(short = 'e', long = "env", requires = "image")]
    pub env: Vec<String>,
    /// With --image: read environment variables from a file (NAME=value lines, # comments).
    #[arg(long = "env-file", requires = "image")]
    pub env_file: Vec<PathBuf>,
    /// With --image: SRC:DST[:ro|rw]; SRC is a host path (starting with / or .) or a volume name.
    #[arg(short = 'v', long = "volume", requires = "image")]
    pub volume: Vec<String>,
    /// With --image: type=bind|volume|tmpfs,source=…,destination=…[,readonly][,tmpfs-size=…][,tmpfs-mode=…].
    #[arg(long = "mount", requires = "image")]
    pub mount: Vec<String>,
    /// With --image: the working directory (absolute), instead of the image's WorkingDir.
    #[arg(short = 'w', long = "workdir", requires = "image")]
    pub workdir: Option<String>,
    /// With --image: USER[:GROUP], names looked up in the image's /etc/passwd and /etc/group.
    #[arg(short = 'u', long = "user", requires = "image")]
    pub user: Option<String>,
    /// With --image: the container's hostname (default: the container name).
    #[arg(long, requires = "image")]
    pub hostname: Option<String>,
    /// With --image: the program to run instead of the image's Entrypoint (a path, or a JSON
    /// array; "" for none); the image's Cmd is then dropped.
    #[arg(long, requires = "image", allow_hyphen_values = true)]
    pub entrypoint: Option<String>,
    /// With --image: mount the root file system read-only.
    #[arg(long = "read-only", requires = "image")]
    pub read_only: bool,
    /// With --image: the signal `stop` sends first (default: the image's StopSignal, else TERM).
    #[arg(long = "stop-signal", requires = "image")]
    pub stop_signal: Option<String>,
    /// With --image: seconds `stop` waits after the stop signal before it kills.
    #[arg(long = "stop-timeout", requires = "image")]
    pub stop_timeout: Option<u32>,
    /// With --image: give the process a terminal; from a terminal, stockade relays it.
    #[arg(short = 't', long = "tty", requires = "image")]
    pub tty: bool,
    /// With --image: keep stdin attached. The container's stdin is always this process's
    /// stdin, so this only completes Podman's `-it`.
    #[arg(short = 'i', long = "interactive", requires = "image")]
    pub interactive: bool,
}

impl ImageRunFlags {
    /// The typed overrides for container `name`.
    pub fn overrides(&self, name: &str) -> anyhow::Result<RunOverrides> {
        let mut env = Vec::new();
        for f in &self.env_file {
            env.extend(specs::read_env_file(f)?);
        }
        for e in &self.env {
            let lookup = |n: &str| std::env::var(n).ok();
            if let Some(kv) = specs::env_entry(e, &lookup).context("--env")? {
                env.push(kv);
            }
        }
        let mut mounts = Vec::new();
        for v in &self.volume {
            mounts.push(specs::parse_volume(v)?);
        }
        for m in &self.mount {
            mounts.push(specs::parse_mount(m)?);
        }
        if let Some(w) = &self.workdir {
            stockade_image::bundle::run::check_destination(w)
                .or_else(|e| if w == "/" { Ok(()) } else { Err(e) })
                .map_err(|r| anyhow::anyhow!("--workdir {w:?} {r}"))?;
        }
        let hostname = match &self.hostname {
            Some(h) => {
                check_hostname(h).map_err(|r| anyhow::anyhow!("--hostname {h:?}: {r}"))?;
                h.clone()
            }
            None => hostname_for(name),
        };
        let stop_signal = match &self.stop_signal {
            Some(s) => {
                let sig = stockade_runtime::container::parse_signal(s)
                    .with_context(|| format!("--stop-signal {s:?}"))?;
                Some(sig.as_str().to_string())
            }
            None => None,
        };
        Ok(RunOverrides {
            entrypoint: self
                .entrypoint
                .as_deref()
                .map(specs::entrypoint)
                .transpose()?,
            env,
            workdir: self.workdir.clone(),
            user: self.user.as_deref().map(specs::user).transpose()?,
            hostname: Some(hostname),
            read_only: self.read_only,
            stop_signal,
            stop_timeout: self.stop_timeout,
            mounts,
            terminal: self.tty,
        })
    }
}
