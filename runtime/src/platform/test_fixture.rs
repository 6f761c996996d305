//! Bundles on disk and their plans, for the backends' unit tests.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::config::ContainerConfig;
use crate::id::ContainerId;
use crate::target::Target;

use super::{ContainerPlan, PlanOptions};

/// Makes `bundle/rootfs` with an executable `/bin/sh` (and `/etc`), and an empty
/// `bundle/data` directory to bind.
pub fn bundle_with_shell(bundle: &Path) {
    std::fs::create_dir_all(bundle.join("rootfs/bin")).unwrap();
    std::fs::create_dir_all(bundle.join("rootfs/etc")).unwrap();
    std::fs::write(bundle.join("rootfs/bin/sh"), b"#!").unwrap();
    std::fs::set_permissions(
        bundle.join("rootfs/bin/sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::create_dir_all(bundle.join("data")).unwrap();
}

/// `config` (a config.json value) in `bundle`, and its plan for `target`.
pub fn plan(
    config: serde_json::Value,
    bundle: &Path,
    id: &str,
    target: Target,
) -> (ContainerConfig, ContainerPlan) {
    let cfg = ContainerConfig::from_value(config, bundle).unwrap();
    let id = ContainerId::parse(id).unwrap();
    let plan = ContainerPlan::new(&cfg, &id, PlanOptions::default(), target).unwrap();
    (cfg, plan)
}
