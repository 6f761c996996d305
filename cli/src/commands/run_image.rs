//! `stockade run --image REF [--rm] [--name ID] [-- CMD ARG…]`: pull when missing, make a
//! root filesystem, write a bundle under the storage root, and run it in the foreground
//! through the ordinary `run` path.

use std::fs;

use anyhow::Context;
use stockade_image::store::Store;

use super::bundle::{create_bundle, driver, ensure_image};
use super::lifecycle;
use crate::args::{GlobalArgs, RunArgs};

/// Runs an image; returns the process's exit status.
pub fn run(global: &GlobalArgs, a: &RunArgs) -> anyhow::Result<u8> {
    let Some(image) = a.image.as_deref() else {
        anyhow::bail!("run --image needs an image");
    };
    let store = Store::open(&a.storage.image_root)
        .with_context(|| format!("opening the image store {}", a.storage.image_root.display()))?;
    let driver = driver(&a.storage)?;
    let resolved = ensure_image(&store, image, &a.registry)?;
    let id = match (&a.name, &a.id) {
        (Some(n), _) | (None, Some(n)) => n.clone(),
        (None, None) => generated_id(),
    };
    let bundle_dir = a.storage.storage_root.join("bundles").join(&id);
    if bundle_dir.exists() {
        anyhow::bail!(
            "a bundle for container {id} already exists at {}; remove it or choose another --name",
            bundle_dir.display()
        );
    }
    let cmd = (!a.command.is_empty()).then(|| a.command.clone());
    create_bundle(driver.as_ref(), &resolved, &id, &bundle_dir, cmd, &a.limits)?;
    let inner = RunArgs {
        bundle: bundle_dir.clone(),
        id: Some(id.clone()),
        image: None,
        rm: false,
        name: None,
        command: Vec::new(),
        storage: a.storage.clone(),
        registry: Default::default(),
        limits: Default::default(),
        detach: a.detach,
        pid_file: a.pid_file.clone(),
        console_socket: a.console_socket.clone(),
        pidfd_socket: a.pidfd_socket.clone(),
        preserve_fds: a.preserve_fds,
        no_pivot: a.no_pivot,
        no_new_keyring: a.no_new_keyring,
    };
    let result = lifecycle::run(global, &inner);
    // The container itself is deleted by `run` once it exits; --rm takes the root
    // filesystem and the bundle too, whether or not the run succeeded.
    if a.rm && !a.detach {
        let removed = driver.remove_rootfs(&id);
        let _ = fs::remove_dir_all(&bundle_dir);
        removed.with_context(|| format!("removing the root filesystem of {id}"))?;
    }
    result
}

/// A container id for an unnamed run: unique per process and moment.
fn generated_id() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let seed = format!("{now}-{}", std::process::id());
    let d = stockade_image::Digest::sha256_of(seed.as_bytes());
    format!("stockade-{}", &d.hex()[..12])
}
