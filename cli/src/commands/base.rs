//! What a bundle made from an image starts from: the runtime's default `config.json` and
//! host defaults, which the image library cannot know (it does not depend on the runtime).

use stockade_image::bundle::{BundleOptions, RunOverrides};
use stockade_image::provision::BundleRequest;
use stockade_runtime::platform::HOST_TARGET;
use stockade_runtime::target::Target;

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
            host_defaults: host_defaults(HOST_TARGET),
            run,
        },
        resources: limits.resources()?,
    })
}

/// What a bundle made from an image gets from the kernel `target` that runs it: on Linux
/// the confinement Podman gives an image (default capabilities; masked and read-only /proc
/// and /sys paths), so `run --image` is never less confined than runc's own default
/// config. On FreeBSD the jail itself confines, from the base config alone. The target is a
/// value (the running backend's, `HOST_TARGET`), not the build host's `cfg!`.
fn host_defaults(target: Target) -> Option<fn(&mut serde_json::Value)> {
    match target {
        Target::Linux => Some(linux_image_defaults),
        Target::FreeBsd => None,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_defaults_follow_the_target_not_the_build_host() {
        assert!(host_defaults(Target::FreeBsd).is_none());
        let add = host_defaults(Target::Linux).expect("Linux gets image defaults");
        let mut spec = stockade_runtime::config::default_freebsd_config();
        add(&mut spec);
        assert!(
            spec["linux"]["maskedPaths"]
                .as_array()
                .is_some_and(|m| !m.is_empty()),
            "{spec}"
        );
    }
}
