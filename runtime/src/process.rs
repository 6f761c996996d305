//! What the container process needs, prepared before anything is created: the program found
//! inside the root, environment, working directory, user and groups, umask, rlimits by the
//! target kernel's numbers ([`Target::rlimits`]), terminal, preserved descriptors.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::config::{CapabilitySets, ContainerConfig, Rlimit, SeccompProfile};
use crate::mounts::{resolve_in_root, MountError};
use crate::target::Target;

/// Why the process cannot be prepared.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("process.args[0]: {} was not found in the container's PATH ({}); expected an executable inside the root filesystem", stockade_quote::quote(.program), stockade_quote::quote(.path))]
    NotFound { program: String, path: String },
    #[error(
        "process.args[0]: {} (inside the container) is {what}; expected an executable file", stockade_quote::quote_os(.program)
    )]
    NotExecutable {
        program: PathBuf,
        what: &'static str,
    },
    #[error("process.rlimits: {name} is not a resource limit on {os}; accepted: {accepted}")]
    UnknownRlimit {
        name: String,
        os: &'static str,
        accepted: String,
    },
    #[error("resolving process.args[0]: {0}")]
    Resolve(#[from] MountError),
    #[error("process.env[{index}]: {} is not valid here; expected KEY=VALUE", stockade_quote::quote(.value))]
    BadEnv { index: usize, value: String },
    #[error("process.{field}: not applied by stockade on {os}; remove it")]
    NotApplied {
        field: &'static str,
        os: &'static str,
    },
    #[error("process.ioPriority.priority: {0} is not valid here; expected 0 (highest) to 7")]
    IoPriority(i64),
}

/// `process.ioPriority` as ioprio_set(2) takes it: the class (1 real-time, 2 best-effort,
/// 3 idle) and the level within it (0-7).
pub fn io_priority(p: &oci_spec::runtime::LinuxIOPriority) -> Result<(u8, u8), ProcessError> {
    use oci_spec::runtime::IOPriorityClass;
    let class = match p.class() {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    match u8::try_from(p.priority()) {
        Ok(level) if level <= 7 => Ok((class, level)),
        _ => Err(ProcessError::IoPriority(p.priority())),
    }
}

/// Process settings of the config that stockade applies on neither platform (scheduler,
/// execCPUAffinity): an error naming the first one given.
pub fn refuse_unapplied(
    p: &oci_spec::runtime::Process,
    target: Target,
) -> Result<(), ProcessError> {
    let os = target.name();
    if p.scheduler().is_some() {
        return Err(ProcessError::NotApplied {
            field: "scheduler",
            os,
        });
    }
    if p.exec_cpu_affinity().is_some() {
        return Err(ProcessError::NotApplied {
            field: "execCPUAffinity",
            os,
        });
    }
    Ok(())
}

/// A resource limit with the platform's resource number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ResourceLimit {
    pub resource: i32,
    pub soft: u64,
    pub hard: u64,
}

/// Everything the init (or an exec'd) process applies before `execve`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProcessSpec {
    /// argv, with argv[0] as given.
    pub args: Vec<String>,
    /// The program to execute: absolute inside the container.
    pub program: PathBuf,
    pub env: Vec<String>,
    pub cwd: PathBuf,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub umask: Option<u32>,
    pub rlimits: Vec<ResourceLimit>,
    pub no_new_privileges: bool,
    pub terminal: bool,
    /// (rows, columns) for the pty.
    pub console_size: Option<(u16, u16)>,
    /// `process.oomScoreAdj` (Linux; FreeBSD names it in a warning).
    pub oom_score_adj: Option<i32>,
    /// `process.ioPriority` as (class, level) (Linux; FreeBSD names it in a warning).
    pub io_priority: Option<(u8, u8)>,
    /// What the kernel confines the process to (Linux: capabilities, seccomp, LSM labels).
    pub confinement: Confinement,
}

/// The Linux confinement of one process: applied by the Linux backend, warned about (never
/// applied) on FreeBSD.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Confinement {
    /// `process.capabilities` (empty sets when absent, as with runc).
    pub capabilities: CapabilitySets,
    /// The container's `linux.seccomp`, which `exec`'d processes get too.
    pub seccomp: Option<SeccompProfile>,
    /// `process.apparmorProfile`.
    pub apparmor_profile: Option<String>,
    /// `process.selinuxLabel`.
    pub selinux_label: Option<String>,
    /// The seccomp filter already compiled by the runtime (from its cache) before the
    /// process was started; `None` means the process compiles `seccomp` itself.
    pub compiled: Option<CompiledFilter>,
}

/// A compiled seccomp filter: the classic-BPF program as libseccomp exported it (8-byte
/// `sock_filter` records in this machine's byte order) and the seccomp(2) flags to load
/// it with.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CompiledFilter {
    pub flags: std::ffi::c_ulong,
    pub program: Vec<u8>,
}

/// The default PATH when the environment has none (runc's and the Go runtime's choice).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

impl ProcessSpec {
    /// Prepares `cfg`'s process; `root` is where the root filesystem is visible now (the
    /// host path), used to find the program.
    pub fn from_config(cfg: &ContainerConfig, target: Target) -> Result<ProcessSpec, ProcessError> {
        let p = cfg.process()?;
        let args = p.args().clone().unwrap_or_default();
        let env = p.env().clone().unwrap_or_default();
        let user = p.user();
        let confinement = Confinement {
            capabilities: cfg.capabilities.clone(),
            seccomp: cfg.seccomp.clone(),
            apparmor_profile: p.apparmor_profile().clone(),
            selinux_label: p.selinux_label().clone(),
            compiled: None,
        };
        let mut spec = Self::build(
            &cfg.root,
            args,
            env,
            p.cwd().clone(),
            (
                user.uid(),
                user.gid(),
                user.additional_gids().clone().unwrap_or_default(),
                user.umask(),
            ),
            &cfg.rlimits,
            p.no_new_privileges().unwrap_or(false),
            p.terminal().unwrap_or(false),
            p.console_size()
                .as_ref()
                .map(|b| (b.height() as u16, b.width() as u16)),
            confinement,
            target,
        )?;
        refuse_unapplied(p, target)?;
        spec.oom_score_adj = p.oom_score_adj();
        spec.io_priority = p.io_priority().as_ref().map(io_priority).transpose()?;
        Ok(spec)
    }

    /// Prepares a process from its parts (shared by create and exec).
    #[allow(clippy::too_many_arguments)]
    pub fn build(
        root: &Path,
        args: Vec<String>,
        env: Vec<String>,
        cwd: PathBuf,
        user: (u32, u32, Vec<u32>, Option<u32>),
        rlimits: &[Rlimit],
        no_new_privileges: bool,
        terminal: bool,
        console_size: Option<(u16, u16)>,
        confinement: Confinement,
        target: Target,
    ) -> Result<ProcessSpec, ProcessError> {
        for (index, e) in env.iter().enumerate() {
            if !e.contains('=') || e.starts_with('=') {
                return Err(ProcessError::BadEnv {
                    index,
                    value: e.clone(),
                });
            }
        }
        let program = find_program(root, &args[0], &env)?;
        let rlimits = rlimits
            .iter()
            .map(|r| resource_limit(r, target))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ProcessSpec {
            args,
            program,
            env,
            cwd,
            uid: user.0,
            gid: user.1,
            additional_gids: user.2,
            umask: user.3,
            rlimits,
            no_new_privileges,
            terminal,
            console_size,
            oom_score_adj: None,
            io_priority: None,
            confinement,
        })
    }

    /// What of this process `target` does not apply, one warning each.
    pub fn unapplied(&self, target: Target) -> Vec<&'static str> {
        let mut w = Vec::new();
        if target == Target::FreeBsd {
            if self.oom_score_adj.is_some() {
                w.push("process.oomScoreAdj is not applied: FreeBSD has no per-process OOM score");
            }
            if self.io_priority.is_some() {
                w.push("process.ioPriority is not applied: FreeBSD has no I/O priority");
            }
        }
        w
    }
}

/// The container's PATH from its environment.
fn path_of(env: &[String]) -> &str {
    env.iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH)
}

/// Finds `program` inside `root` as `execvp` would inside the container: a name with a `/`
/// is taken as it is (relative to `/`); a bare name is searched in the container's PATH.
pub fn find_program(root: &Path, program: &str, env: &[String]) -> Result<PathBuf, ProcessError> {
    if program.contains('/') {
        let inside = Path::new("/").join(program);
        let host = resolve_in_root(root, &inside)?;
        check_executable(&host, &inside)?;
        return Ok(inside);
    }
    let path = path_of(env);
    for dir in path.split(':').filter(|d| d.starts_with('/')) {
        let inside = Path::new(dir).join(program);
        let host = resolve_in_root(root, &inside)?;
        if check_executable(&host, &inside).is_ok() {
            return Ok(inside);
        }
    }
    Err(ProcessError::NotFound {
        program: program.to_string(),
        path: path.to_string(),
    })
}

fn check_executable(host: &Path, inside: &Path) -> Result<(), ProcessError> {
    let not = |what| ProcessError::NotExecutable {
        program: inside.to_path_buf(),
        what,
    };
    match std::fs::metadata(host) {
        Ok(m) if m.is_dir() => Err(not("a directory")),
        Ok(m) if m.permissions().mode() & 0o111 == 0 => {
            Err(not("not executable (no x permission bit)"))
        }
        Ok(_) => Ok(()),
        Err(_) => Err(not("missing")),
    }
}

/// `r` with `target`'s number for it.
fn resource_limit(r: &Rlimit, target: Target) -> Result<ResourceLimit, ProcessError> {
    target
        .rlimit(&r.name)
        .map(|resource| ResourceLimit {
            resource,
            soft: r.soft,
            hard: r.hard,
        })
        .ok_or_else(|| ProcessError::UnknownRlimit {
            name: r.name.clone(),
            os: target.name(),
            accepted: target
                .rlimits()
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", "),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn rootfs() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("bin")).unwrap();
        std::fs::create_dir_all(d.path().join("usr/bin")).unwrap();
        std::fs::write(d.path().join("bin/busybox"), b"#!").unwrap();
        std::fs::set_permissions(
            d.path().join("bin/busybox"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        symlink("busybox", d.path().join("bin/sh")).unwrap();
        std::fs::write(d.path().join("usr/bin/data"), b"x").unwrap();
        d
    }

    #[test]
    fn bare_names_are_found_in_the_containers_path() {
        let r = rootfs();
        let env = vec!["PATH=/usr/bin:/bin".to_string()];
        assert_eq!(
            find_program(r.path(), "sh", &env).unwrap(),
            Path::new("/bin/sh")
        );
        assert_eq!(
            find_program(r.path(), "sh", &[]).unwrap(),
            Path::new("/bin/sh")
        );
        assert_eq!(
            find_program(r.path(), "/bin/busybox", &[]).unwrap(),
            Path::new("/bin/busybox")
        );
    }

    #[test]
    fn missing_or_non_executable_programs_name_the_path() {
        let r = rootfs();
        let err = find_program(r.path(), "nope", &[]).unwrap_err().to_string();
        assert!(
            err.contains("\"nope\" was not found in the container's PATH"),
            "{err}"
        );
        let err = find_program(r.path(), "/usr/bin/data", &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/usr/bin/data") && err.contains("not executable"),
            "{err}"
        );
        let err = find_program(r.path(), "/bin", &[]).unwrap_err().to_string();
        assert!(err.contains("a directory"), "{err}");
        let err = find_program(r.path(), "/bin/missing", &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/bin/missing") && err.contains("missing"),
            "{err}"
        );
    }

    fn rlimit(name: &str) -> Rlimit {
        Rlimit {
            name: name.into(),
            soft: 1,
            hard: 2,
        }
    }

    #[test]
    fn rlimit_names_the_target_lacks_are_errors_naming_them() {
        for (target, number, foreign) in [
            (Target::Linux, 7, "RLIMIT_SWAP"),
            (Target::FreeBsd, 8, "RLIMIT_RTPRIO"),
        ] {
            let ok = resource_limit(&rlimit("RLIMIT_NOFILE"), target).unwrap();
            assert_eq!((ok.resource, ok.soft, ok.hard), (number, 1, 2), "{target}");
            let err = resource_limit(&rlimit(foreign), target)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(foreign)
                    && err.contains("RLIMIT_NOFILE")
                    && err.contains(target.name()),
                "{err}"
            );
        }
    }

    #[test]
    fn the_process_is_planned_with_the_targets_rlimit_table_on_any_host() {
        let r = rootfs();
        let build = |target| {
            ProcessSpec::build(
                r.path(),
                vec!["sh".into()],
                vec![],
                "/".into(),
                (0, 0, vec![], None),
                &[rlimit("RLIMIT_SWAP"), rlimit("RLIMIT_NOFILE")],
                false,
                false,
                None,
                Confinement::default(),
                target,
            )
        };
        // FreeBSD has a swap limit (resource 12); Linux does not, whichever host plans it.
        let freebsd = build(Target::FreeBsd).unwrap();
        assert_eq!(
            freebsd
                .rlimits
                .iter()
                .map(|l| l.resource)
                .collect::<Vec<_>>(),
            [12, 8]
        );
        let err = build(Target::Linux).unwrap_err().to_string();
        assert!(
            err.contains("RLIMIT_SWAP") && err.contains("Linux"),
            "{err}"
        );
    }

    #[test]
    fn linux_only_process_settings_are_named_for_freebsd_only() {
        let r = rootfs();
        let mut spec = ProcessSpec::build(
            r.path(),
            vec!["sh".into()],
            vec![],
            "/".into(),
            (0, 0, vec![], None),
            &[],
            false,
            false,
            None,
            Confinement::default(),
            Target::Linux,
        )
        .unwrap();
        spec.oom_score_adj = Some(100);
        spec.io_priority = Some((2, 4));
        assert!(spec.unapplied(Target::Linux).is_empty());
        let w = spec.unapplied(Target::FreeBsd);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].contains("oomScoreAdj") && w[1].contains("ioPriority"));
    }
}
