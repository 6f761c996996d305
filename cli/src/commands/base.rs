//! What a bundle made from an image starts from: the runtime's default `config.json` and
//! host defaults, which the image library cannot know (it does not depend on the runtime).

use stockade_image::bundle::{BundleOptions, RunOverrides};
use stockade_image::provision::BundleRequest;

use crate::args::limits::LimitArgs;

/// The request for a bundle named `id` with `limits`' resource limits, running `command`
/// (empty: the image's own), with `run`'s flags laid over the image config.
pub fn bundle_request(
    id: String,
    limits: &LimitArgs,
    command: &[String],
    run: RunOverrides,
) -> anyhow::Result<BundleRequest> {
    Ok(BundleRequest {
        id,
        base: stockade_runtime::config::default_freebsd_config(),
        options: BundleOptions {
            command: (!command.is_empty()).then(|| command.to_vec()),
            host_defaults: host_defaults(),
            run,
        },
        resources: limits.resources()?,
    })
}

/// What a bundle made from an image gets from the host the runtime runs on: on Linux the
/// confinement Podman gives an image (default capabilities; masked and read-only /proc and
/// /sys paths), so `run --image` is never less confined than runc's own default config.
fn host_defaults() -> Option<fn(&mut serde_json::Value)> {
    if cfg!(target_os = "linux") {
        Some(linux_image_defaults)
    } else {
        None
    }
}

/// The Linux defaults, and for an unprivileged caller (rootless) a user namespace whose
/// root is the caller.
fn linux_image_defaults(spec: &mut serde_json::Value) {
    stockade_runtime::config::add_linux_image_defaults(spec);
    let (uid, gid) = (nix::unistd::geteuid(), nix::unistd::getegid());
    if !uid.is_root() {
        stockade_runtime::config::add_rootless_user_namespace(spec, uid.as_raw(), gid.as_raw());
    }
}
