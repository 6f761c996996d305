//! The registry options that every command able to pull takes (`image pull`, `run
//! --image`, `bundle create|prepare`), and the credentials they lead to.

use std::path::PathBuf;

use anyhow::bail;
use clap::Args;
use stockade_image::registry::{auth_file as auth, ClientOptions, Credentials};
use stockade_image::{Platform, Reference};

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
}

/// A `--platform os/arch[/variant]` value, and whether one was given (else the host's).
pub fn platform_flag(value: Option<&str>) -> anyhow::Result<(Platform, bool)> {
    match value {
        Some(p) => Ok((p.parse()?, true)),
        None => Ok((Platform::host(), false)),
    }
}

impl RegistryArgs {
    /// Whether any option was given (they mean nothing without an image to pull).
    pub fn any(&self) -> bool {
        self.platform.is_some() || self.creds.is_some() || self.authfile.is_some() || self.insecure
    }

    /// The platform asked for, and whether it was asked for (else the host's).
    pub fn platform(&self) -> anyhow::Result<(Platform, bool)> {
        platform_flag(self.platform.as_deref())
    }

    /// Connection settings for `reference`'s registry: `--creds`, else the first auth
    /// file (`--authfile`, or the default ones) that has credentials for it.
    pub fn client_options(&self, reference: &Reference) -> anyhow::Result<ClientOptions> {
        Ok(ClientOptions {
            credentials: self.credentials(reference)?,
            insecure: self.insecure,
        })
    }

    fn credentials(&self, reference: &Reference) -> anyhow::Result<Option<Credentials>> {
        if let Some(c) = &self.creds {
            return Ok(Some(Credentials::from_flag(c)?));
        }
        let files = match &self.authfile {
            Some(f) if !f.exists() => bail!("auth file {} does not exist", f.display()),
            Some(f) => vec![f.clone()],
            None => auth::default_auth_files(),
        };
        for f in &files {
            if let Some(c) = auth::from_auth_file(f, reference.registry())? {
                return Ok(Some(c));
            }
        }
        Ok(None)
    }
}
