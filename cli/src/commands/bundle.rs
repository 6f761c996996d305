//! `stockade bundle …`: root filesystems from stored images, and the bundles around them,
//! through `stockade_image::provision`.

use stockade_image::provision::{self, Provisioner};

use super::image::{ensure_image, open_store};
use crate::args::bundle::{BundleArgs, BundleCommand};

/// Runs `stockade bundle …`.
pub fn run(a: &BundleArgs) -> anyhow::Result<u8> {
    let store = open_store(&a.storage.image_root)?;
    let driver = a.storage.config().open()?;
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
            let made = prov.create_bundle(&resolved, dir, request)?;
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
            let p = prov.prepare(&resolved)?;
            println!("{}", p.chain);
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
