//! The Linux confinement of a process around its user change: what `features` reports
//! of it, the checks at create, and loading the seccomp filter (from the runtime's cache,
//! or compiled here, with a notify descriptor sent to the agent).

use super::{call, caps, lsm, seccomp, seccomp_cache, sys};
use crate::platform::{ContainerPlan, PlatformError, SeccompListener};
use crate::process::ProcessSpec;

/// The capability, seccomp and LSM parts of `features`' `linux` object: what this host
/// applies (capabilities the kernel knows, flags the kernel and libseccomp support).
pub fn confinement_features(linux: &mut serde_json::Value) {
    use crate::config::capabilities::CAPABILITY_NAMES;
    use crate::config::seccomp::{ACTIONS, ARCHITECTURES, FLAGS, OPERATORS};
    let supported = ::caps::runtime::thread_all_supported();
    let capabilities: Vec<&str> = CAPABILITY_NAMES
        .iter()
        .copied()
        .filter(|n| {
            n.parse::<::caps::Capability>()
                .is_ok_and(|c| supported.contains(&c))
        })
        .collect();
    // libseccomp's API level says what the kernel supports: 3 the LOG flag, 4 SPEC_ALLOW,
    // 7 WAIT_KILLABLE_RECV. TSYNC is accepted and has nothing to do (one thread).
    let api = libseccomp::get_api();
    let supported_flags: Vec<&str> = FLAGS
        .iter()
        .copied()
        .filter(|f| match *f {
            "SECCOMP_FILTER_FLAG_LOG" => api >= 3,
            "SECCOMP_FILTER_FLAG_SPEC_ALLOW" => api >= 4,
            "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" => api >= 7,
            _ => true,
        })
        .collect();
    linux["capabilities"] = serde_json::json!(capabilities);
    linux["seccomp"] = serde_json::json!({
        "enabled": true,
        "actions": ACTIONS,
        "operators": OPERATORS,
        "archs": ARCHITECTURES,
        "knownFlags": FLAGS,
        "supportedFlags": supported_flags,
    });
    linux["apparmor"] = serde_json::json!({"enabled": lsm::apparmor_enabled()});
    linux["selinux"] = serde_json::json!({"enabled": lsm::selinux_enabled()});
}

/// At create: labels the host cannot apply are refused; capability names this kernel does
/// not know are named once and skipped.
pub(super) fn confinement_check(plan: &ContainerPlan) -> Result<(), PlatformError> {
    let mount_label = super::linux_config(plan).and_then(|l| l.mount_label().clone());
    lsm::check(&plan.process.confinement, mount_label.as_deref())?;
    let unknown = caps::unknown_to_kernel(&plan.process.confinement.capabilities);
    if !unknown.is_empty() {
        tracing::warn!(
            "process.capabilities: {} not known to this kernel (see /proc/sys/kernel/cap_last_cap); skipped",
            unknown.join(", ")
        );
    }
    let unraisable = caps::ambient_unraisable(&plan.process.confinement.capabilities);
    if !unraisable.is_empty() {
        tracing::warn!(
            "process.capabilities.ambient: {} not in both the permitted and the inheritable set; the kernel cannot raise them, so they are skipped (as runc does)",
            unraisable.join(", ")
        );
    }
    Ok(())
}

/// Compiles and loads the process's seccomp filter; a notify descriptor goes to the agent.
pub(super) fn load_seccomp(
    process: &ProcessSpec,
    listener: Option<&SeccompListener>,
) -> Result<(), PlatformError> {
    let Some(profile) = &process.confinement.seccomp else {
        return Ok(());
    };
    if let Some(c) = &process.confinement.compiled {
        let program = seccomp_cache::instructions(&c.program);
        return sys::seccomp_set_mode_filter(c.flags, &program)
            .map_err(|e| call("seccomp(SECCOMP_SET_MODE_FILTER) of linux.seccomp", e));
    }
    let ctx = seccomp::compile(profile)?;
    let Some(fd) = seccomp::load(&ctx, profile)? else {
        return Ok(());
    };
    let Some(listener) = listener else {
        return Err(PlatformError::Failed {
            call: "linux.seccomp.listenerPath".into(),
            detail: "the profile notifies but no listener is connected".into(),
        });
    };
    seccomp::send_to_listener(&listener.socket, fd, &listener.state, profile)
}
