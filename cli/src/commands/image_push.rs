//! `stockade image push`, `login` and `logout`: thin wrappers over
//! `stockade_image::registry::{push, login}`; docs/images.md describes them.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{bail, Context};
use stockade_image::registry::{self, login, Credentials, PushOptions};
use stockade_image::store::Store;
use stockade_image::Reference;

use crate::args::push::{LoginArgs, LogoutArgs, PushArgs};

pub fn push(store: &Store, a: &PushArgs) -> anyhow::Result<u8> {
    if a.registry.platform.is_some() {
        bail!("push: --platform does not apply; the stored image is pushed as it is (a single manifest or a whole index)");
    }
    let image = store.resolve(&a.source)?;
    let dest: Reference = match &a.destination {
        Some(d) => d.parse()?,
        None => image.name.parse().with_context(|| {
            format!(
                "push: the stored name {} is not a registry reference; give a destination",
                image.name
            )
        })?,
    };
    let opts = PushOptions {
        client: a.registry.settings()?.client_options(&dest)?,
        jobs: usize::from(a.jobs),
        progress: !a.quiet,
        chunk_size: usize::try_from(a.chunk_size).unwrap_or(usize::MAX),
    };
    let report = registry::push(store, &image.name, &dest, &opts)?;
    if !a.quiet {
        eprintln!(
            "pushed {} as {} ({} blobs uploaded, {}; {} mounted; {} already there)",
            image.name,
            report.destination,
            report.uploaded,
            super::human::human(report.uploaded_bytes),
            report.mounted,
            report.existed
        );
    }
    println!("{}", report.descriptor.digest);
    Ok(0)
}

fn login_file(given: &Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match given {
        Some(f) => Ok(f.clone()),
        None => login::default_login_file().context(
            "no auth file to use: none of REGISTRY_AUTH_FILE, XDG_RUNTIME_DIR, DOCKER_CONFIG or HOME is set; pass --authfile",
        ),
    }
}

pub fn login(a: &LoginArgs) -> anyhow::Result<u8> {
    let registry = login::normalise_registry(&a.registry)?;
    let password = match (&a.password, a.password_stdin) {
        (Some(p), _) => p.clone(),
        (None, true) => {
            let mut s = String::new();
            std::io::stdin()
                .take(64 * 1024)
                .read_to_string(&mut s)
                .context("reading the password from standard input")?;
            s.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => bail!("login: give the password with --password-stdin (or --password)"),
    };
    if password.is_empty() {
        bail!("login: the password is empty");
    }
    let credentials = Credentials {
        username: a.username.clone(),
        password,
    };
    login::check(&registry, &credentials, a.insecure)?;
    let file = login_file(&a.authfile)?;
    login::save(&file, &registry, &credentials)?;
    eprintln!(
        "Login Succeeded ({registry}; credentials in {})",
        file.display()
    );
    Ok(0)
}

pub fn logout(a: &LogoutArgs) -> anyhow::Result<u8> {
    let registry = login::normalise_registry(&a.registry)?;
    let file = login_file(&a.authfile)?;
    login::remove(&file, &registry)?;
    eprintln!(
        "Removed the login credentials for {registry} from {}",
        file.display()
    );
    Ok(0)
}
