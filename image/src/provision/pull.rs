//! Finding an image in the store, pulling it first when it is missing: the typed form of
//! the registry flags every command able to pull takes (`image pull`, `run --image`,
//! `bundle create|prepare`), and the credentials they lead to.

use std::path::PathBuf;

use super::ProvisionError;
use crate::bundle::{self, ResolvedImage};
use crate::oci::platform::Platform;
use crate::oci::reference::Reference;
use crate::registry::{
    self, auth_file as auth, mirrors, ClientOptions, Credentials, HostSettings, Mirror,
    PullOptions, PullReport, RegistryHosts,
};
use crate::store::{Store, StoreError};

/// How to reach a registry and which platform to take from it.
#[derive(Debug, Clone, Default)]
pub struct PullSettings {
    /// The platform asked for; `None`: this host's.
    pub platform: Option<Platform>,
    /// Credentials as `user:password` (they win over any auth file).
    pub creds: Option<String>,
    /// The auth file to read; `None`: the default ones, where they exist.
    pub authfile: Option<PathBuf>,
    /// Plain HTTP (always used for localhost and loopback addresses).
    pub insecure: bool,
    /// The config file's per-registry settings (plain HTTP, auth file, mirrors).
    pub registries: RegistryHosts,
}

impl PullSettings {
    /// The platform to take, and whether it was asked for (else the host's).
    pub fn platform(&self) -> (Platform, bool) {
        match &self.platform {
            Some(p) => (p.clone(), true),
            None => (Platform::host(), false),
        }
    }

    /// Connection settings for `reference`'s registry: the credentials given, else the
    /// first auth file (the one given, or the default ones) that has some for it.
    pub fn client_options(&self, reference: &Reference) -> Result<ClientOptions, ProvisionError> {
        Ok(ClientOptions {
            credentials: self.credentials(reference)?,
            insecure: self.insecure || self.host(reference.registry()).insecure,
        })
    }

    /// The config file's settings for `registry` (all defaults when it has none).
    fn host(&self, registry: &str) -> HostSettings {
        self.registries.get(registry).cloned().unwrap_or_default()
    }

    /// The mirrors of `reference`'s registry, each with its own connection settings:
    /// `--creds` belong to the registry and are never sent to a mirror.
    fn mirrors(&self, reference: &Reference) -> Result<Vec<Mirror>, ProvisionError> {
        let mut out = Vec::new();
        for m in &self.host(reference.registry()).mirrors {
            let mirrored = mirrors::on_mirror(reference, m)?;
            let host = self.host(mirrored.registry());
            let file = self.authfile.clone().or(host.auth_file.clone());
            out.push(Mirror {
                client: ClientOptions {
                    credentials: file_credentials(file.as_ref(), &mirrored)?,
                    insecure: self.insecure || host.insecure,
                },
                reference: mirrored,
            });
        }
        Ok(out)
    }

    /// Everything `registry::pull` needs for `reference`.
    pub fn pull_options(
        &self,
        reference: &Reference,
        jobs: usize,
        progress: bool,
    ) -> Result<PullOptions, ProvisionError> {
        let (platform, platform_explicit) = self.platform();
        Ok(PullOptions {
            client: self.client_options(reference)?,
            platform,
            platform_explicit,
            jobs,
            progress,
            mirrors: self.mirrors(reference)?,
        })
    }

    fn credentials(&self, reference: &Reference) -> Result<Option<Credentials>, ProvisionError> {
        if let Some(c) = &self.creds {
            return Ok(Some(Credentials::from_flag(c)?));
        }
        let file = self
            .authfile
            .clone()
            .or(self.host(reference.registry()).auth_file);
        file_credentials(file.as_ref(), reference)
    }
}

/// Credentials for `reference`'s registry from `file` (which must exist), or from the
/// first default auth file that has some.
fn file_credentials(
    file: Option<&PathBuf>,
    reference: &Reference,
) -> Result<Option<Credentials>, ProvisionError> {
    let files = match file {
        Some(f) if !f.exists() => return Err(ProvisionError::AuthFileMissing { path: f.clone() }),
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

/// An image found in the store, and the pull that put it there if there was one.
#[derive(Debug)]
pub struct Ensured {
    /// The image, resolved for the platform asked for.
    pub image: ResolvedImage,
    /// Set when the image was missing and has been pulled.
    pub pulled: Option<PullReport>,
}

/// Blobs `ensure_image` downloads at once.
const PULL_JOBS: usize = 4;

/// Finds `image` in `store`, pulling it first when it is not there; `announce` is told
/// the reference just before a pull starts (a pull may take a while).
pub fn ensure_image(
    store: &Store,
    image: &str,
    settings: &PullSettings,
    announce: &mut dyn FnMut(&Reference),
) -> Result<Ensured, ProvisionError> {
    let (platform, given) = settings.platform();
    let found = match super::find_image(store, image) {
        Ok(found) => Some(found),
        Err(ProvisionError::Store(StoreError::NotFound { .. })) => None,
        Err(e) => return Err(e),
    };
    let (name, pulled) = match found {
        Some(f) => (f.name, None),
        None => {
            let reference: Reference = image.parse()?;
            announce(&reference);
            let opts = settings.pull_options(&reference, PULL_JOBS, false)?;
            let report = registry::pull(store, &reference, &opts)?;
            (report.name.clone(), Some(report))
        }
    };
    let resolved = bundle::resolve(store, &name, &platform)?;
    // An index chose by platform already; a stored single-platform image must be the one
    // asked for (a pull warns instead: the registry had nothing else).
    let have = Platform::new(&resolved.config.os, &resolved.config.architecture, None);
    if given
        && pulled.is_none()
        && (have.os != platform.os || have.architecture != platform.architecture)
    {
        return Err(ProvisionError::PlatformMismatch {
            image: name,
            want: platform.to_string(),
            have: format!("{}/{}", have.os, have.architecture),
        });
    }
    Ok(Ensured {
        image: resolved,
        pulled,
    })
}
