//! `stockade bundle …`: root filesystems from stored images, and the bundles around them,
//! through `stockade_image::provision`.

use anyhow::Context;
use stockade_image::provision::{self, Provisioner};
use stockade_runtime::id::ContainerId;
use stockade_runtime::state::StateStore;

use super::image::{ensure_image, open_store};
use crate::args::bundle::{BundleArgs, BundleCommand};
use crate::args::GlobalArgs;

/// Runs `stockade bundle …`.
pub fn run(global: &GlobalArgs, a: &BundleArgs) -> anyhow::Result<u8> {
    let store = open_store(&a.storage.image_root)?;
    let (driver, unpacking) = super::image::open_unpacking(&a.storage.config())?;
    let prov = Provisioner::new(&store, &a.storage.location.storage_root, driver.as_ref())?;
    match &a.command {
        BundleCommand::Create {
            image,
            registry,
            limits,
            name,
            dir,
            command,
        } => {
            let resolved = ensure_image(&store, image, &registry.settings()?)?;
            let id = match name {
                Some(n) => n.clone(),
                None => provision::bundle_name(dir)?,
            };
            let request =
                super::base::bundle_request(id.clone(), limits, command, Default::default())?;
            unpacking.set_layers(resolved.layers.len());
            let made = prov.create_bundle(&resolved, dir, request);
            unpacking.finish();
            let made = made?;
            eprintln!(
                "bundle {} for {} (rootfs {} on {})",
                dir.display(),
                resolved.name,
                made.rootfs.display(),
                driver.name()
            );
            println!("{id}");
        }
        BundleCommand::Prepare { image, registry } => {
            let resolved = ensure_image(&store, image, &registry.settings()?)?;
            unpacking.set_layers(resolved.layers.len());
            let p = prov.prepare(&resolved);
            unpacking.finish();
            let p = p?;
            println!("{}", p.chain);
        }
        BundleCommand::Rm { id }
            if provision::is_provisioned(&a.storage.location.storage_root, id) =>
        {
            remove_run_container(global, a, id)?
        }
        BundleCommand::Rm { id } => driver.remove_rootfs(id)?,
        BundleCommand::Prune => {
            for c in prov.prune()? {
                println!("{c}");
            }
        }
    }
    Ok(0)
}

/// `bundle rm ID` of a container `run --image` made: its root filesystem is one part of
/// it, so the whole of it goes, as `delete` takes it (network, root filesystem, bundle,
/// record, with the driver it was made with) — unless the runtime still has the container,
/// whose process may be using all of that.
fn remove_run_container(global: &GlobalArgs, a: &BundleArgs, id: &str) -> anyhow::Result<()> {
    let runtime_has_it = match ContainerId::parse(id) {
        Ok(cid) => StateStore::open(&global.root)?.dir(&cid).exists(),
        Err(_) => false,
    };
    if runtime_has_it {
        anyhow::bail!(
            "{id} is a container made by `run --image` that the runtime still has; \
             remove it with `stockade delete --force {id}` (it takes its network, root filesystem and bundle too)"
        );
    }
    let storage_root = &a.storage.location.storage_root;
    let driver = a.storage.config().for_container(id).open()?;
    provision::remove_container(storage_root, driver.as_ref(), id)
        .with_context(|| format!("removing the network, root filesystem and bundle of {id}"))?;
    Ok(())
}
