//! Everything decided about a container before anything is made, as data: the part both
//! kernels share, and the part only the target kernel reads ([`BackendPlan`]). Built by
//! one constructor from the configuration and the [`Target`], so the FreeBSD plan is the
//! same, and golden-tested the same, on any host.

use crate::config::ContainerConfig;
use crate::hooks::Phase;
use crate::id::ContainerId;
use crate::jail::JailSpec;
use crate::mounts::{parse_mounts, MountSpec};
use crate::process::ProcessSpec;
use crate::target::Target;

use super::freebsd_plan::FreeBsdPlan;
use super::linux_plan::LinuxPlan;

/// Why a configuration cannot be planned.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("root.path {}: not a directory; expected the container's root filesystem", .0.display())]
    NoRoot(std::path::PathBuf),
    #[error(transparent)]
    Jail(#[from] crate::jail::JailError),
    #[error(transparent)]
    Mount(#[from] crate::mounts::MountError),
    #[error(transparent)]
    Process(#[from] crate::process::ProcessError),
    #[error(transparent)]
    Limits(#[from] crate::limits::LimitsError),
    #[error(transparent)]
    Pod(#[from] super::freebsd_plan::pod::PodError),
}

/// What the caller decides beyond the configuration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// Descriptors after 0-2 passed to the process (`--preserve-fds`, or `LISTEN_FDS`).
    pub preserve_fds: u32,
}

/// Everything decided about a container before anything is made.
#[derive(Debug, Clone)]
pub struct ContainerPlan {
    pub id: ContainerId,
    pub jail: JailSpec,
    pub mounts: Vec<MountSpec>,
    pub process: ProcessSpec,
    pub root_readonly: bool,
    /// What `linux.resources` limits (rctl rules on FreeBSD, cgroups on Linux).
    pub limits: crate::limits::ResourceLimits,
    /// Descriptors after 0-2 passed to the process (`--preserve-fds`, or `LISTEN_FDS`).
    pub preserve_fds: u32,
    /// Hooks the init runs itself: createContainer (before entering the root) and
    /// startContainer (inside the container, just before exec).
    pub create_container_hooks: Vec<oci_spec::runtime::Hook>,
    pub start_container_hooks: Vec<oci_spec::runtime::Hook>,
    /// What the target does not enforce of the configuration's limits and process, one
    /// line each, for the backend's `check` to log once.
    pub warnings: Vec<String>,
    /// What only the target kernel reads.
    pub backend: BackendPlan,
}

/// The part of a plan only one kernel reads.
#[derive(Debug, Clone)]
pub enum BackendPlan {
    FreeBsd(FreeBsdPlan),
    Linux(LinuxPlan),
}

impl BackendPlan {
    /// The kernel this part was planned for.
    pub fn target(&self) -> Target {
        match self {
            BackendPlan::FreeBsd(_) => Target::FreeBsd,
            BackendPlan::Linux(_) => Target::Linux,
        }
    }
}

impl ContainerPlan {
    /// Plans container `id` from `cfg` for `target`, checking everything the configuration
    /// alone can show. Nothing is made or logged; the only looks at the system are for the root
    /// filesystem and the program in it (`process.args[0]`). The backend's own checks against the host
    /// come later (`Platform::check`).
    pub fn new(
        cfg: &ContainerConfig,
        id: &ContainerId,
        options: PlanOptions,
        target: Target,
    ) -> Result<ContainerPlan, PlanError> {
        let mut jail = JailSpec::from_config(cfg, id)?;
        if target == Target::FreeBsd {
            // CRI pods are parent and child jails on FreeBSD; on Linux the CRI plugin
            // hands every container the pod's network namespace instead.
            super::freebsd_plan::pod::apply(cfg, id, &mut jail)?;
        }
        if !cfg.root.is_dir() {
            return Err(PlanError::NoRoot(cfg.root.clone()));
        }
        let mounts = parse_mounts(cfg)?;
        let process = ProcessSpec::from_config(cfg, target)?;
        let resources = cfg
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.resources().as_ref());
        let (limits, unenforced) = crate::limits::from_resources(resources, target)?;
        let warnings = unenforced
            .into_iter()
            .chain(process.unapplied(target).into_iter().map(String::from))
            .collect();
        let backend = match target {
            Target::FreeBsd => BackendPlan::FreeBsd(FreeBsdPlan::from_config(cfg)),
            Target::Linux => BackendPlan::Linux(LinuxPlan::from_config(cfg)),
        };
        Ok(ContainerPlan {
            id: id.clone(),
            jail,
            mounts,
            process,
            root_readonly: cfg.root_readonly,
            limits,
            preserve_fds: options.preserve_fds,
            create_container_hooks: Phase::CreateContainer.hooks(&cfg.spec),
            start_container_hooks: Phase::StartContainer.hooks(&cfg.spec),
            warnings,
            backend,
        })
    }

    /// The FreeBSD part, when planned for FreeBSD.
    pub fn freebsd(&self) -> Option<&FreeBsdPlan> {
        match &self.backend {
            BackendPlan::FreeBsd(p) => Some(p),
            BackendPlan::Linux(_) => None,
        }
    }

    /// The Linux part, when planned for Linux.
    pub fn linux(&self) -> Option<&LinuxPlan> {
        match &self.backend {
            BackendPlan::Linux(p) => Some(p),
            BackendPlan::FreeBsd(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn config(bundle: &std::path::Path) -> ContainerConfig {
        crate::platform::test_fixture::bundle_with_shell(bundle);
        let config = json!({
            "ociVersion": "1.3.0",
            "root": {"path": "rootfs"},
            "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0},
                        "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 64, "hard": 64}]},
            "linux": {"maskedPaths": ["/proc/kcore"], "cgroupsPath": "/c1",
                      "resources": {"cpu": {"shares": 512}},
                      "intelRdt": {"closID": "c1"}},
            "freebsd": {"devices": [{"path": "pf"}]}
        });
        ContainerConfig::from_value(config, bundle).unwrap()
    }

    #[test]
    fn each_target_gets_its_own_part_and_tables_on_any_host() {
        let d = tempfile::tempdir().unwrap();
        let cfg = config(d.path());
        let id = ContainerId::parse("p1").unwrap();
        let plan = |t| ContainerPlan::new(&cfg, &id, PlanOptions::default(), t).unwrap();

        let freebsd = plan(Target::FreeBsd);
        assert_eq!(freebsd.backend.target(), Target::FreeBsd);
        assert!(freebsd.linux().is_none());
        let part = freebsd.freebsd().unwrap();
        assert_eq!(part.devices.len(), 1);
        assert_eq!(
            part.ignored_linux,
            [
                "cgroupsPath (resource limits are rctl rules on the jail)",
                "maskedPaths",
                "intelRdt"
            ]
        );
        // RLIMIT_NOFILE is 8 on FreeBSD and 7 on Linux, whichever machine plans it.
        assert_eq!(freebsd.process.rlimits[0].resource, 8);
        // cpu.shares is a cgroup setting: named for FreeBSD, enforced on Linux.
        assert!(
            freebsd.warnings.len() == 1 && freebsd.warnings[0].contains("cpu.shares"),
            "{:?}",
            freebsd.warnings
        );

        let linux = plan(Target::Linux);
        assert!(linux.freebsd().is_none());
        let part = linux.linux().unwrap();
        assert!(part.config.as_ref().unwrap().masked_paths().is_some());
        assert_eq!(part.warnings.len(), 2, "{:?}", part.warnings);
        assert!(part.warnings[0].contains("freebsd.devices"));
        assert!(part.warnings[1].contains("linux.intelRdt"));
        assert_eq!(linux.process.rlimits[0].resource, 7);
        assert!(linux.warnings.is_empty(), "{:?}", linux.warnings);
    }

    #[test]
    fn a_missing_root_is_named() {
        let d = tempfile::tempdir().unwrap();
        let cfg = config(d.path());
        std::fs::remove_dir_all(d.path().join("rootfs")).unwrap();
        let id = ContainerId::parse("p2").unwrap();
        let e = ContainerPlan::new(&cfg, &id, PlanOptions::default(), Target::Linux)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("root.path ") && e.contains("not a directory"),
            "{e}"
        );
    }
}
