//! The registry options that every command able to pull takes (`image pull`, `run
//! --image`, `bundle create|prepare`); the credentials they lead to are found by
//! `stockade_image::provision::PullSettings`.

use std::path::PathBuf;

use clap::Args;
use stockade_image::provision::PullSettings;
use stockade_image::registry::RegistryHosts;
use stockade_image::Platform;

/// How to reach a registry and which platform to take from it.
#[derive(Debug, Clone, Default, Args)]
pub struct RegistryArgs {
    /// Platform to select from a multi-platform image: os/arch[/variant]. Default: this host's.
    #[arg(long)]
    pub platform: Option<String>,
    /// Registry credentials as user:password.
    #[arg(long)]
    pub creds: Option<String>,
    /// A Docker-style config.json (or containers auth.json): its credHelpers, auths and
    /// credsStore are used, in that order.
    #[arg(long)]
    pub authfile: Option<PathBuf>,
    /// Use plain HTTP for this registry (always done for localhost and loopback addresses).
    #[arg(long)]
    pub insecure: bool,
    /// The config file's `[registries."HOST"]` tables (set after parsing).
    #[arg(skip)]
    pub hosts: RegistryHosts,
}

/// A `--platform os/arch[/variant]` value (`None`: the host's).
pub fn platform_flag(value: Option<&str>) -> anyhow::Result<Option<Platform>> {
    Ok(value.map(str::parse).transpose()?)
}

impl RegistryArgs {
    /// Whether any option was given (they mean nothing without an image to pull).
    pub fn any(&self) -> bool {
        self.platform.is_some() || self.creds.is_some() || self.authfile.is_some() || self.insecure
    }

    /// The provisioning library's pull settings for these flags.
    pub fn settings(&self) -> anyhow::Result<PullSettings> {
        Ok(PullSettings {
            platform: platform_flag(self.platform.as_deref())?,
            creds: self.creds.clone(),
            authfile: self.authfile.clone(),
            insecure: self.insecure,
            registries: self.hosts.clone(),
        })
    }
}
