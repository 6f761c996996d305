//! `stockade run --image REF [--rm] [--name ID] [-- CMD ARG…]`: the image library pulls
//! when missing and makes a root filesystem and a bundle under the storage root
//! (`stockade_image::provision`); the config it wrote is handed, typed, to the same
//! create/start/wait as `run`. `delete` removes all of it again. With `-d` the container
//! is handed to a monitor (`service.rs`, `monitor.rs`) that outlives this command.

use anyhow::Context;
use stockade_fault as fault;
use stockade_image::provision::{self, Provisioner};
use stockade_runtime::config::ContainerConfig;
use stockade_runtime::id::ContainerId;

use super::image::{ensure_image, open_store};
use super::lifecycle;
use crate::args::lifecycle::RunArgs;
use crate::args::GlobalArgs;

/// Runs an image; returns the process's exit status.
pub fn run(global: &GlobalArgs, a: &RunArgs) -> anyhow::Result<u8> {
    let Some(image) = a.image.as_deref() else {
        anyhow::bail!("run --image needs an image");
    };
    if a.detach && a.flags.tty {
        // The monitor writes the output to a log file; a terminal would need a relay it
        // does not have.
        anyhow::bail!(
            "run --image: -d with -t is not supported (a detached service's output goes to its log; drop -t)"
        );
    }
    let name = match (&a.name, &a.id) {
        (Some(n), _) | (None, Some(n)) => n.clone(),
        (None, None) => provision::generated_id(),
    };
    // The limits are checked before a root filesystem exists to be cleaned up.
    let overrides = a.flags.overrides(&name)?;
    let request = super::base::bundle_request(name.clone(), &a.limits, &a.command, overrides)?;
    let network = super::network::RunNetwork::from_args(a)?;
    if a.flags.tty && a.create.console_socket.is_none() {
        // The relay's socket must fit its address: refused before anything is made.
        super::terminal::check_relay_root(&global.root)?;
    }
    let store = open_store(&a.storage.image_root)?;
    let (driver, unpacking) = super::image::open_unpacking(&a.storage.config())?;
    let prov = Provisioner::new(&store, &a.storage.location.storage_root, driver.as_ref())?;
    let resolved = ensure_image(&store, image, &a.registry.settings()?)?;
    unpacking.set_layers(resolved.layers.len());
    let made = prov.run_bundle(&resolved, request, a.rm);
    unpacking.finish();
    let mut made = made?;
    // The network is made after the bundle (its record is then there for `delete`) and
    // before the runtime's create, which joins its namespace.
    let attached = network.attach(&a.storage.location.storage_root, &name, &mut made);
    let result = if a.detach {
        attached
            .and_then(|()| super::service::start_service(global, a, &name, &resolved.name, made))
    } else {
        attached.and_then(|()| run_made(global, a, &name, made))
    };
    fault::point("run-image:after-run");
    if a.detach && result.is_ok() {
        // As Podman: the caller learns the (possibly generated) name to stop or remove.
        // The monitor removes a --rm service when it exits.
        println!("{name}");
        return result;
    }
    // The container itself is deleted by `run` once it exits; --rm takes the root
    // filesystem and the bundle too, whether or not the run succeeded.
    if a.rm {
        prov.remove_container(&name)
            .with_context(|| format!("removing the bundle and root filesystem of {name}"))?;
    }
    result
}

/// Creates, starts and (in the foreground) waits for the container `made` is the bundle of.
fn run_made(
    global: &GlobalArgs,
    a: &RunArgs,
    name: &str,
    made: provision::MadeBundle,
) -> anyhow::Result<u8> {
    let id = ContainerId::parse(name)?;
    let bundle = std::path::absolute(&made.bundle)
        .with_context(|| format!("bundle directory {}", made.bundle.display()))?;
    let cfg = ContainerConfig::from_value(made.config, &bundle)?;
    lifecycle::run_container(global, &id, &cfg, &a.create.options(), a.detach)
}
