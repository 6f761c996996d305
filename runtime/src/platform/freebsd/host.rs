//! The FreeBSD platform: [`Platform`] on the real kernel. Everything the executor does
//! goes through [`HostKernel`], the seam's implementation on `sys`; terminals (`pty`) and
//! process helpers (`procs`), which no plan covers, call `sys` directly.

use std::path::Path;
use std::process::Command;

use nix::errno::Errno;

use super::executor;
use super::kernel::{fsid_text, parse_showsets, Forked, JailInfo, Kernel, KernelError, ProcInfo};
use super::sys;
use crate::jail::JailParam;
use crate::platform::freebsd_plan;
use crate::platform::freebsd_plan::FreeBsdMade;
use crate::platform::{ContainerPlan, InitEntry, InitHandoff, Platform, PlatformError};
use crate::platform::{Journal, Resources, SeccompListener};
use crate::process::{Confinement, ProcessSpec};

/// The FreeBSD jail backend.
pub struct FreeBsd;

/// Sets resource limit `resource` (a FreeBSD RLIMIT_* number from `process::RLIMITS`) of
/// the calling process, for the init's `process.rlimits` (nix lacks some FreeBSD limits).
pub fn set_rlimit(resource: i32, soft: u64, hard: u64) -> nix::Result<()> {
    sys::set_rlimit(resource, soft, hard)
}

/// Limit `resource` for messages: by number, as FreeBSD's libc has no names for them.
pub fn rlimit_name(resource: i32) -> String {
    format!("resource {resource}")
}

/// Runs a host command (ifconfig, devfs) by absolute path with an empty environment; a
/// failure carries its stderr.
fn run(argv: &[String]) -> Result<String, KernelError> {
    let (prog, args) = argv
        .split_first()
        .ok_or(KernelError::errno(Errno::EINVAL))?;
    let out = Command::new(prog)
        .args(args)
        .env_clear()
        .output()
        .map_err(|e| KernelError::Command {
            status: format!("running {prog}"),
            stderr: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(KernelError::Command {
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn devfs(ruleset: Option<u16>, rest: &[&str]) -> Result<String, KernelError> {
    let mut argv = vec![freebsd_plan::DEVFS.to_string(), "rule".into()];
    if let Some(n) = ruleset {
        argv.extend(["-s".to_string(), n.to_string()]);
    }
    argv.extend(rest.iter().map(|s| s.to_string()));
    run(&argv)
}

/// The usage of the container's jail with the limits of its rctl rules, for task metrics
/// (`racct::usage`; racct off is an error naming `kern.racct.enable`).
pub fn usage(made: &Resources<FreeBsdMade>) -> Result<super::racct::JailUsage, PlatformError> {
    super::racct::usage(&mut HostKernel, &made.backend)
}

/// The real kernel behind the seam.
pub(super) struct HostKernel;

impl Kernel for HostKernel {
    fn jail_set(&mut self, params: &[JailParam], flags: i32) -> Result<i32, KernelError> {
        let mut pairs: Vec<sys::Pair> = params
            .iter()
            .map(|p| (p.name_bytes(), p.value_bytes()))
            .collect();
        sys::jail_set(&mut pairs, flags)
    }

    fn jail_by_jid(&mut self, jid: i32, dying: bool) -> Result<Option<JailInfo>, KernelError> {
        sys::jail_by_jid(jid, dying)
    }

    fn jail_by_name(&mut self, name: &str) -> Result<Option<JailInfo>, KernelError> {
        sys::jail_by_name(name)
    }

    fn children(&mut self, name: &str) -> Result<(i32, i32), KernelError> {
        sys::children(name)
    }

    fn dying_children(&mut self, name: &str) -> Result<u32, KernelError> {
        sys::dying_children(name)
    }

    fn jail_attach(&mut self, jid: i32) -> Result<(), KernelError> {
        sys::jail_attach(jid).map_err(KernelError::errno)?;
        nix::unistd::chdir("/").map_err(KernelError::errno)
    }

    fn jail_remove(&mut self, jid: i32) -> Result<(), KernelError> {
        sys::jail_remove(jid).map_err(KernelError::errno)
    }

    fn nmount(&mut self, iov: &[(String, Option<Vec<u8>>)], flags: i32) -> Result<(), KernelError> {
        let mut pairs: Vec<sys::Pair> = iov
            .iter()
            .map(|(n, v)| (format!("{n}\0").into_bytes(), v.clone()))
            .collect();
        sys::nmount(&mut pairs, flags)
    }

    fn unmount(&mut self, path: &Path, flags: i32) -> Result<(), KernelError> {
        sys::unmount(path, flags)
    }

    fn fsid(&mut self, path: &Path) -> Result<String, KernelError> {
        Ok(fsid_text(sys::fsid(path)?))
    }

    fn devfs_showsets(&mut self) -> Result<Vec<u16>, KernelError> {
        parse_showsets(&devfs(None, &["showsets"])?)
    }

    fn devfs_show(&mut self, ruleset: u16) -> Result<Vec<String>, KernelError> {
        Ok(devfs(Some(ruleset), &["show"])?
            .lines()
            .map(str::to_string)
            .collect())
    }

    fn devfs_add(&mut self, ruleset: u16, rule: &[String]) -> Result<(), KernelError> {
        let mut words = vec!["add"];
        words.extend(rule.iter().map(String::as_str));
        devfs(Some(ruleset), &words).map(drop)
    }

    fn devfs_delset(&mut self, ruleset: u16) -> Result<(), KernelError> {
        devfs(Some(ruleset), &["delset"]).map(drop)
    }

    fn rctl_add_rule(&mut self, rule: &str) -> Result<(), KernelError> {
        sys::rctl_add_rule(rule).map_err(KernelError::errno)
    }

    fn rctl_remove_rule(&mut self, filter: &str) -> Result<(), KernelError> {
        sys::rctl_remove_rule(filter).map_err(KernelError::errno)
    }

    fn rctl_usage(&mut self, filter: &str) -> Result<Vec<(String, u64)>, KernelError> {
        let text = sys::rctl_get_racct(filter).map_err(KernelError::errno)?;
        super::racct::parse_racct(&text)
            .map_err(|e| KernelError::with_msg(Errno::EINVAL, e.to_string()))
    }

    fn ifconfig(&mut self, args: &[String]) -> Result<(), KernelError> {
        let mut argv = vec![freebsd_plan::IFCONFIG.to_string()];
        argv.extend(args.iter().cloned());
        run(&argv).map(drop)
    }

    fn processes(&mut self) -> Result<Vec<ProcInfo>, KernelError> {
        let procs = sys::all_processes().map_err(KernelError::errno)?;
        Ok(procs.iter().map(proc_info).collect())
    }

    fn fork(&mut self) -> Result<Forked, KernelError> {
        match sys::fork().map_err(KernelError::errno)? {
            0 => Ok(Forked::Child),
            pid => Ok(Forked::Parent(pid)),
        }
    }
}

fn proc_info(k: &libc::kinfo_proc) -> ProcInfo {
    let secs = u64::try_from(k.ki_start.tv_sec).unwrap_or(0);
    let micros = u64::try_from(k.ki_start.tv_usec).unwrap_or(0);
    ProcInfo {
        pid: k.ki_pid,
        jid: k.ki_jid,
        zombie: k.ki_stat == libc::SZOMB,
        start: secs * 1_000_000 + micros,
    }
}

impl Platform for FreeBsd {
    const TARGET: crate::target::Target = crate::target::Target::FreeBsd;
    type Made = FreeBsdMade;
    // Nothing: the jail and its mounts are made on the host, before the init exists.
    type InitContext = ();

    fn check(plan: &ContainerPlan) -> Result<(), PlatformError> {
        // The plan's warnings (limits rctl does not enforce, process settings FreeBSD
        // lacks), then what the jail plan ignores.
        for w in &plan.warnings {
            tracing::warn!("{w}");
        }
        for w in freebsd_plan::check(plan)? {
            tracing::warn!("{w}");
        }
        Ok(())
    }

    fn prepare_host(
        plan: &ContainerPlan,
        made: &mut Resources<FreeBsdMade>,
        journal: &mut Journal<'_, FreeBsdMade>,
    ) -> Result<(), PlatformError> {
        // The warnings were logged by `check`.
        executor::prepare_host(&mut HostKernel, plan, made, journal)
    }

    fn spawn_init(
        plan: &ContainerPlan,
        made: &Resources<FreeBsdMade>,
        handoff: InitHandoff,
        init: InitEntry<Self>,
    ) -> Result<i32, PlatformError> {
        let mut handoff = Some(handoff);
        let pid = executor::spawn(
            &mut HostKernel,
            "the init process",
            &mut |_| match handoff.take() {
                Some(h) => init(plan, made, &(), h),
                None => 1,
            },
        )?;
        // The child has its own copies; the parent's would keep the handshake open.
        drop(handoff);
        Ok(pid)
    }

    fn enter(
        _plan: &ContainerPlan,
        _made: &Resources<FreeBsdMade>,
        _ctx: &(),
        _report: &mut dyn FnMut(&Path),
    ) -> Result<(), PlatformError> {
        // Mounts, the jail and its network were made on the host by `prepare_host`.
        Ok(())
    }

    fn enter_root(
        _plan: &ContainerPlan,
        made: &Resources<FreeBsdMade>,
    ) -> Result<(), PlatformError> {
        executor::attach(&mut HostKernel, &made.backend)
    }

    fn spawn_joined(
        made: &Resources<FreeBsdMade>,
        _init_pid: i32,
        mut child: Box<dyn FnMut() -> isize + '_>,
    ) -> Result<i32, PlatformError> {
        // Checked before forking, so a missing jail is an error here, not an exit code.
        if made.backend.jid.is_none() {
            return Err(PlatformError::Failed {
                call: "jail_attach".into(),
                detail: "create recorded no jail".into(),
            });
        }
        executor::spawn(&mut HostKernel, "exec into the jail", &mut |k| {
            if let Err(e) = executor::attach(k, &made.backend) {
                eprintln!("stockade: error: exec: {e}");
                return 1;
            }
            i32::try_from(child()).unwrap_or(1)
        })
    }

    fn before_user(
        _process: &ProcessSpec,
        _listener: Option<&SeccompListener>,
    ) -> Result<(), PlatformError> {
        // The I/O priority, OOM score, LSM labels, seccomp and capabilities Linux sets here
        // have no FreeBSD counterpart; `check` warned about each one the config sets. The
        // jail itself confines the process, from `jail_attach` in `enter_root`.
        Ok(())
    }

    fn precompile_confinement(_confinement: &mut Confinement) -> Result<(), PlatformError> {
        // Capabilities and seccomp are Linux's; the exec'd process is confined by the jail
        // it attaches to. `check` warned at create about a confinement the config sets.
        Ok(())
    }

    fn before_exec(
        _process: &ProcessSpec,
        _listener: Option<&SeccompListener>,
    ) -> Result<(), PlatformError> {
        // noNewPrivileges and the Linux confinement are Linux-only; `check` warned about them.
        Ok(())
    }

    fn update_limits(
        made: &mut Resources<FreeBsdMade>,
        change: &crate::platform::LimitsChange<'_>,
        _journal: &mut Journal<'_, FreeBsdMade>,
    ) -> Result<(), PlatformError> {
        // rctl rules are recorded in `made` before each is added and the caller writes the
        // state afterwards; a rule is named after the jail, so one left unrecorded by a
        // SIGKILL is still removed by delete's filter on the jail's name.
        executor::update_limits(&mut HostKernel, &mut made.backend, &change.after)
    }

    fn destroy(made: &Resources<FreeBsdMade>) -> Vec<PlatformError> {
        executor::destroy(&mut HostKernel, &made.backend)
    }
}
