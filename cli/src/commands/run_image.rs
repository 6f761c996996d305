//! `stockade run --image REF [--rm] [--name ID] [-- CMD ARG…]`: pull when missing, make a
//! root filesystem and a bundle under the storage root (`stockade_image::provision`), and
//! run it through the ordinary `run` path. `delete` removes all of it again.

use anyhow::Context;
use stockade_fault as fault;
use stockade_image::bundle::BundleOptions;
use stockade_image::provision::{self, Provisioner};
use stockade_image::store::Store;

use super::bundle::{bundle_base, driver, ensure_image};
use super::lifecycle;
use crate::args::{GlobalArgs, RunArgs};

/// Runs an image; returns the process's exit status.
pub fn run(global: &GlobalArgs, a: &RunArgs) -> anyhow::Result<u8> {
    let Some(image) = a.image.as_deref() else {
        anyhow::bail!("run --image needs an image");
    };
    if a.rm && a.detach {
        // Podman removes a detached --rm container when it exits, through its monitor
        // process; stockade has none, so nothing would be there to remove it.
        anyhow::bail!(
            "run --image: --rm with -d needs a monitor process that outlives this command, which stockade does not have; \
             run without --rm and remove the container with `stockade delete --force ID` (it takes the bundle and root filesystem too)"
        );
    }
    let (base, resources) = bundle_base(&a.limits)?;
    let store = Store::open(&a.storage.image_root)
        .with_context(|| format!("opening the image store {}", a.storage.image_root.display()))?;
    let driver = driver(&a.storage)?;
    let prov = Provisioner::new(&store, &a.storage.location.storage_root, driver.as_ref())?;
    let resolved = ensure_image(&store, image, &a.registry)?;
    let id = match (&a.name, &a.id) {
        (Some(n), _) | (None, Some(n)) => n.clone(),
        (None, None) => generated_id(),
    };
    let command = (!a.command.is_empty()).then(|| a.command.clone());
    let made = prov.run_bundle(
        &resolved,
        &id,
        base,
        &BundleOptions {
            command,
            host_defaults: super::bundle::host_defaults(),
        },
        resources.as_ref(),
    );
    let made = match made {
        Ok(m) => m,
        Err(e) => {
            // A failure after the record was written leaves parts that are ours alone
            // (nobody ran the container): with --rm they go now, else `delete` takes them.
            if a.rm && !matches!(e, provision::ProvisionError::Exists { .. }) {
                let _ = provision::remove_container(
                    &a.storage.location.storage_root,
                    driver.as_ref(),
                    &id,
                );
            }
            return Err(e.into());
        }
    };
    let inner = RunArgs {
        bundle: made.bundle.clone(),
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
    fault::point("run-image:after-run");
    // The container itself is deleted by `run` once it exits; --rm takes the root
    // filesystem and the bundle too, whether or not the run succeeded.
    if a.rm {
        provision::remove_container(&a.storage.location.storage_root, driver.as_ref(), &id)
            .with_context(|| format!("removing the bundle and root filesystem of {id}"))?;
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
