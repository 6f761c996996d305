//! The FreeBSD backend: executes the steps of `platform::freebsd_plan` and records in
//! [`Resources`] what each one made, as soon as it is made. Mounts, the jail and its
//! network are made on the host side (`prepare_host`); the init process only
//! `jail_attach`es. docs/freebsd-backend.md describes the whole sequence.

mod sys;

use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::unistd::chdir;

use super::freebsd_plan::{self, fspath, rctl, HostInputs, Made, Step, JAIL_UPDATE};
use super::{ContainerPlan, InitHandoff, Platform, PlatformError};
use crate::mounts::{create_mount_point, resolve_in_root};
use crate::process::ProcessSpec;
use crate::state::Resources;

/// The FreeBSD jail backend.
pub struct FreeBsd;

/// Sets resource limit `resource` (a FreeBSD RLIMIT_* number from `process::RLIMITS`) of
/// the calling process; for `init::set_rlimit`, since nix lacks some FreeBSD limits.
pub fn set_rlimit(resource: i32, soft: u64, hard: u64) -> nix::Result<()> {
    sys::set_rlimit(resource, soft, hard)
}

/// How long delete waits for the processes of a removed jail to exit before it unmounts.
const REMOVE_WAIT: Duration = Duration::from_secs(2);

fn failed(call: impl Into<String>, f: sys::Failure) -> PlatformError {
    PlatformError::Call {
        call: call.into(),
        detail: f.detail(),
    }
}

fn errno(call: impl Into<String>, e: Errno) -> PlatformError {
    PlatformError::call(call, e)
}

/// A failed `rctl_add_rule`/`rctl_remove_rule` of `rule`. ENOSYS is what every rctl call
/// returns while racct is off (`kern.racct.enable=0`, GENERIC's default).
fn rctl_failed(call: &str, rule: &str, e: Errno) -> PlatformError {
    PlatformError::Call {
        call: format!("{call}({rule:?})"),
        detail: if e == Errno::ENOSYS {
            "resource limits need RACCT/RCTL: set kern.racct.enable=1 in /boot/loader.conf and reboot"
                .into()
        } else {
            e.desc().to_string()
        },
    }
}

/// Runs a host command (ifconfig, devfs); a failure carries its stderr.
fn run(argv: &[String]) -> Result<String, PlatformError> {
    let line = argv.join(" ");
    let (prog, args) = argv.split_first().ok_or_else(|| PlatformError::Call {
        call: "running a command".into(),
        detail: "empty argv".into(),
    })?;
    let out = Command::new(prog)
        .args(args)
        .env_clear()
        .output()
        .map_err(|e| PlatformError::Call {
            call: line.clone(),
            detail: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(PlatformError::Call {
            call: line,
            detail: format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The first free devfs ruleset for jail `name`: `devfs rule showsets` lists those in use.
/// Two creates racing for the same number is possible only when their names hash to
/// neighbouring starts; docs/freebsd-backend.md discusses it.
fn allocate_devfs_ruleset(name: &str) -> Result<u16, PlatformError> {
    let listed = run(&[freebsd_plan::DEVFS.into(), "rule".into(), "showsets".into()])?;
    let used: Vec<u16> = listed
        .split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect();
    freebsd_plan::devfs_ruleset_candidates(name)
        .find(|n| !used.contains(n))
        .ok_or_else(|| PlatformError::Call {
            call: "allocating a devfs ruleset for freebsd.devices".into(),
            detail: format!(
                "every ruleset from {} to 65535 is in use",
                freebsd_plan::FIRST_DEVFS_RULESET
            ),
        })
}

fn children(parent: &str) -> Result<(i32, i32), PlatformError> {
    sys::children(parent).map_err(|f| {
        failed(
            format!("jail_get children.max, children.cur of parent jail {parent:?}"),
            f,
        )
    })
}

fn set_children_max(parent: &str, max: i32) -> Result<(), PlatformError> {
    let mut pairs = vec![
        (b"name\0".to_vec(), Some(format!("{parent}\0").into_bytes())),
        (b"children.max\0".to_vec(), Some(max.to_ne_bytes().to_vec())),
    ];
    sys::jail_set(&mut pairs, JAIL_UPDATE)
        .map(drop)
        .map_err(|f| {
            failed(
                format!("jail_set(JAIL_UPDATE) children.max={max} of parent jail {parent:?}"),
                f,
            )
        })
}

/// Executes one create step and records what it made.
fn create_step(step: &Step, root: &Path, made: &mut Resources) -> Result<(), PlatformError> {
    match step {
        Step::RaiseChildrenMax { parent, at_least } => {
            let (max, cur) = children(parent)?;
            let wanted = cur.saturating_add(1).max(
                i32::try_from(*at_least)
                    .unwrap_or(i32::MAX)
                    .saturating_add(1),
            );
            if max < wanted {
                set_children_max(parent, wanted)?;
                made.raised_children_max = Some((parent.clone(), max));
            }
        }
        Step::MountPoint { target, file } => {
            made.mount_points
                .extend(create_mount_point(root, target, *file)?);
        }
        Step::DevfsRule { ruleset, .. } => {
            // Recorded first: a set left half-filled by a failing rule is still deleted.
            if !made.devfs_rulesets.contains(ruleset) {
                made.devfs_rulesets.push(*ruleset);
            }
            run(&step.command().unwrap_or_default())?;
        }
        Step::Nmount { iov, flags } => {
            let path = fspath(iov).unwrap_or_default();
            let mut pairs: Vec<sys::Pair> = iov
                .iter()
                .map(|(n, v)| (format!("{n}\0").into_bytes(), v.clone()))
                .collect();
            let fstype = iov
                .iter()
                .find(|(n, _)| n == "fstype")
                .and_then(|(_, v)| v.as_deref())
                .map(|v| String::from_utf8_lossy(v.strip_suffix(&[0]).unwrap_or(v)).into_owned())
                .unwrap_or_default();
            sys::nmount(&mut pairs, *flags)
                .map_err(|f| failed(format!("nmount {fstype} on {}", path.display()), f))?;
            made.mounts.push(path);
        }
        Step::JailSet { params, flags } => {
            let mut pairs: Vec<sys::Pair> = params
                .iter()
                .map(|p| (p.name_bytes(), p.value_bytes()))
                .collect();
            let name = params
                .iter()
                .find(|p| p.name == "name")
                .map(|p| match &p.value {
                    crate::jail::ParamValue::Str(s) => s.clone(),
                    _ => String::new(),
                })
                .unwrap_or_default();
            let jid = sys::jail_set(&mut pairs, *flags)
                .map_err(|f| failed(format!("jail_set(JAIL_CREATE) of jail {name:?}"), f))?;
            made.jid = Some(jid);
            made.jail_name = Some(name);
        }
        Step::RctlAddRule { rule } => {
            sys::rctl_add_rule(rule).map_err(|e| rctl_failed("rctl_add_rule", rule, e))?;
            made.rctl_rules.push(rule.clone());
        }
        Step::Ifconfig { made: record, .. } => {
            run(&step.command().unwrap_or_default())?;
            match record {
                Some(Made::InterfaceAlias { interface, address }) => made
                    .interface_aliases
                    .push((interface.clone(), address.clone())),
                Some(Made::VnetInterface(i)) => made.vnet_interfaces.push(i.clone()),
                None => {}
            }
        }
        other => {
            return Err(PlatformError::Call {
                call: other.to_string(),
                detail: "a delete step in a create plan".into(),
            })
        }
    }
    Ok(())
}

fn no_jail() -> PlatformError {
    PlatformError::Call {
        call: "jail_attach".into(),
        detail: "create recorded no jail".into(),
    }
}

/// Enters the container's jail: `jail_attach` (which also chroots to the jail's root),
/// then `chdir("/")`.
fn attach(made: &Resources) -> Result<(), PlatformError> {
    let jid = made.jid.ok_or_else(no_jail)?;
    sys::jail_attach(jid).map_err(|e| errno(format!("jail_attach({jid})"), e))?;
    chdir("/").map_err(|e| errno("chdir / in the jail", e))
}

/// Whether jail `jid` is still the one create made (jids are reused once a jail is gone).
fn still_ours(jid: i32, name: Option<&str>) -> Result<bool, PlatformError> {
    let now = sys::jail_name(jid).map_err(|f| failed(format!("jail_get name of jail {jid}"), f))?;
    Ok(match (now, name) {
        (None, _) => false,
        (Some(now), Some(name)) if now != name => {
            tracing::warn!(jid, %now, expected = %name, "jid now belongs to another jail; not removing it");
            false
        }
        (Some(_), _) => true,
    })
}

/// Waits until no live process is in jail `jid`, at most [`REMOVE_WAIT`].
fn wait_until_empty(jid: i32) {
    let deadline = Instant::now() + REMOVE_WAIT;
    while Instant::now() < deadline {
        match sys::all_processes() {
            Ok(procs)
                if !procs
                    .iter()
                    .any(|k| k.ki_jid == jid && k.ki_stat != libc::SZOMB) =>
            {
                return
            }
            Ok(_) => std::thread::sleep(Duration::from_millis(10)),
            Err(_) => return,
        }
    }
    tracing::warn!(
        jid,
        "processes of the removed jail are still exiting; unmounting anyway"
    );
}

/// Executes one delete step. `ours` says whether the recorded jid is still our jail.
fn destroy_step(step: &Step, ours: bool) -> Result<(), PlatformError> {
    match step {
        Step::ReclaimInterface { interface, .. } => {
            if ours {
                if let Err(e) = run(&step.command().unwrap_or_default()) {
                    tracing::warn!(%interface, error = %e, "interface not reclaimed; the kernel returns it when the jail's vnet is destroyed");
                }
            }
        }
        Step::JailRemove { jid, .. } => {
            if ours {
                match sys::jail_remove(*jid) {
                    // EINVAL: no such jail (any more).
                    Ok(()) | Err(Errno::EINVAL) => wait_until_empty(*jid),
                    Err(e) => return Err(errno(format!("jail_remove({jid})"), e)),
                }
            }
        }
        Step::RctlRemoveRule { filter } => match sys::rctl_remove_rule(filter) {
            Ok(()) => {}
            // ESRCH: no rule matches (removed already). ENOSYS: racct is off, so no rule
            // can exist (rules live in the kernel and do not survive a reboot).
            Err(Errno::ESRCH | Errno::ENOSYS) => {}
            Err(e) => return Err(rctl_failed("rctl_remove_rule", filter, e)),
        },
        Step::Ifconfig { .. } | Step::DevfsDelset { .. } => {
            run(&step.command().unwrap_or_default())?;
        }
        Step::Unmount { path, force } => {
            let flags = if *force { libc::MNT_FORCE } else { 0 };
            match sys::unmount(path, flags) {
                Ok(()) => {}
                // Not (or no longer) a mount point, or the path is gone: nothing to undo.
                Err(f) if matches!(f.errno, Errno::EINVAL | Errno::ENOENT) => {}
                Err(f) if f.errno == Errno::EBUSY && !force => {
                    tracing::warn!(path = %path.display(), "busy after the jail was removed; unmounting with MNT_FORCE");
                    sys::unmount(path, libc::MNT_FORCE).map_err(|f| {
                        failed(format!("unmount {} (MNT_FORCE)", path.display()), f)
                    })?;
                }
                Err(f) => return Err(failed(format!("unmount {}", path.display()), f)),
            }
        }
        Step::RestoreChildrenMax { parent, previous } => {
            let (max, cur) = match sys::children(parent) {
                Ok(v) => v,
                Err(f) if f.errno == Errno::ENOENT => return Ok(()),
                Err(f) => {
                    return Err(failed(
                        format!("jail_get children of parent jail {parent:?}"),
                        f,
                    ))
                }
            };
            let wanted = (*previous).max(cur);
            if wanted < max {
                set_children_max(parent, wanted)?;
            }
        }
        other => {
            return Err(PlatformError::Call {
                call: other.to_string(),
                detail: "a create step in a delete plan".into(),
            })
        }
    }
    Ok(())
}

impl Platform for FreeBsd {
    const OS: &'static str = "FreeBSD";
    // pdfork(2) is the only source of process descriptors.
    const PROCESS_HANDLES: bool = false;

    fn check(plan: &ContainerPlan) -> Result<(), PlatformError> {
        for w in freebsd_plan::check(plan)? {
            tracing::warn!("{w}");
        }
        Ok(())
    }

    fn prepare_host(plan: &ContainerPlan, made: &mut Resources) -> Result<(), PlatformError> {
        let root = plan.jail.path.as_path();
        let mount_targets = plan
            .mounts
            .iter()
            .map(|m| resolve_in_root(root, &m.destination))
            .collect::<Result<Vec<_>, _>>()?;
        let devfs_ruleset = if plan.devices.is_empty() {
            None
        } else {
            Some(allocate_devfs_ruleset(plan.jail.name.as_str())?)
        };
        let host = HostInputs {
            mount_targets,
            devfs_ruleset,
        };
        // The warnings were logged by `check`.
        let created = freebsd_plan::create_plan(plan, &host)?;
        for step in &created.steps {
            tracing::debug!(%step, "create");
            create_step(step, root, made)?;
        }
        Ok(())
    }

    fn spawn_init(
        plan: &ContainerPlan,
        made: &Resources,
        handoff: InitHandoff,
    ) -> Result<i32, PlatformError> {
        match sys::fork().map_err(|e| errno("fork (the init process)", e))? {
            0 => crate::init::container_init::<FreeBsd>(plan, made, handoff),
            pid => {
                // The child has its own copies; the parent's would keep the handshake open.
                drop(handoff);
                Ok(pid)
            }
        }
    }

    fn enter(
        _plan: &ContainerPlan,
        _made: &Resources,
        _report: &mut dyn FnMut(&Path),
    ) -> Result<(), PlatformError> {
        // Mounts, the jail and its network were made on the host by `prepare_host`.
        Ok(())
    }

    fn enter_root(_plan: &ContainerPlan, made: &Resources) -> Result<(), PlatformError> {
        attach(made)
    }

    fn open_pty() -> Result<(OwnedFd, PathBuf), PlatformError> {
        use nix::pty::{grantpt, posix_openpt, unlockpt};
        let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
            .map_err(|e| errno("posix_openpt (inside the jail)", e))?;
        grantpt(&master).map_err(|e| errno("grantpt", e))?;
        unlockpt(&master).map_err(|e| errno("unlockpt", e))?;
        let name = sys::ptsname(&master).map_err(|e| errno("ptsname", e))?;
        Ok((master.into(), PathBuf::from(name)))
    }

    fn set_controlling_tty(tty: BorrowedFd<'_>) -> Result<(), PlatformError> {
        sys::set_controlling_tty(tty).map_err(|e| errno("ioctl(TIOCSCTTY)", e))
    }

    fn set_winsize(tty: BorrowedFd<'_>, rows: u16, cols: u16) -> Result<(), PlatformError> {
        sys::set_winsize(tty, rows, cols).map_err(|e| errno("ioctl(TIOCSWINSZ)", e))
    }

    fn spawn_joined(
        made: &Resources,
        _init_pid: i32,
        mut child: Box<dyn FnMut() -> isize + '_>,
    ) -> Result<i32, PlatformError> {
        // Checked before forking, so a missing jail is an error here, not an exit code.
        made.jid.ok_or_else(no_jail)?;
        match sys::fork().map_err(|e| errno("fork (exec into the jail)", e))? {
            0 => {
                if let Err(e) = attach(made) {
                    eprintln!("stockade: exec: {e}");
                    std::process::exit(1);
                }
                let code = child();
                std::process::exit(i32::try_from(code).unwrap_or(1))
            }
            pid => Ok(pid),
        }
    }

    fn before_exec(
        _process: &ProcessSpec,
        _listener: Option<&super::SeccompListener>,
    ) -> Result<(), PlatformError> {
        // noNewPrivileges and the Linux confinement are Linux-only; `check` warned about them.
        Ok(())
    }

    fn cloexec_from(first: i32) -> Result<(), PlatformError> {
        sys::cloexec_from(first).map_err(|e| errno("close_range(CLOSE_RANGE_CLOEXEC)", e))
    }

    fn update_limits(
        made: &mut Resources,
        change: &crate::platform::LimitsChange<'_>,
    ) -> Result<(), PlatformError> {
        let name = made.jail_name.clone().ok_or_else(no_jail)?;
        for step in rctl::update_steps(&name, &made.rctl_rules, &change.after)? {
            match &step {
                Step::RctlRemoveRule { filter } => {
                    match sys::rctl_remove_rule(filter) {
                        Ok(()) | Err(Errno::ESRCH) => {}
                        Err(e) => return Err(rctl_failed("rctl_remove_rule", filter, e)),
                    }
                    made.rctl_rules.retain(|r| rctl::filter(r) != filter);
                }
                Step::RctlAddRule { rule } => {
                    sys::rctl_add_rule(rule).map_err(|e| rctl_failed("rctl_add_rule", rule, e))?;
                    // The kernel replaced any rule with the same filter.
                    made.rctl_rules
                        .retain(|r| rctl::filter(r) != rctl::filter(rule));
                    made.rctl_rules.push(rule.clone());
                }
                other => {
                    return Err(PlatformError::Call {
                        call: other.to_string(),
                        detail: "not a step of a limits update".into(),
                    })
                }
            }
        }
        Ok(())
    }

    fn destroy(made: &Resources) -> Vec<PlatformError> {
        let mut errors = Vec::new();
        let ours = match made.jid {
            Some(jid) => still_ours(jid, made.jail_name.as_deref()).unwrap_or_else(|e| {
                errors.push(e);
                false
            }),
            None => false,
        };
        for step in freebsd_plan::destroy_plan(made) {
            tracing::debug!(%step, "delete");
            if let Err(e) = destroy_step(&step, ours) {
                errors.push(e);
            }
        }
        errors
    }

    fn container_pids(made: &Resources, init_pid: Option<i32>) -> Result<Vec<i32>, PlatformError> {
        let procs = sys::all_processes().map_err(|e| errno("sysctl kern.proc.proc", e))?;
        let live = |k: &libc::kinfo_proc| k.ki_stat != libc::SZOMB;
        let mut pids: Vec<i32> = match made.jid {
            Some(jid) => procs
                .iter()
                .filter(|k| k.ki_jid == jid && live(k))
                .map(|k| k.ki_pid)
                .collect(),
            None => Vec::new(),
        };
        // The init is in the list once it has attached; before that it is still on the host.
        if let Some(init) = init_pid {
            if !pids.contains(&init) && procs.iter().any(|k| k.ki_pid == init && live(k)) {
                pids.push(init);
            }
        }
        Ok(pids)
    }

    fn process_handle(pid: i32) -> Result<OwnedFd, PlatformError> {
        // FreeBSD's process descriptors come only from pdfork(2); there is no way to open
        // one for an existing pid.
        Err(PlatformError::Unsupported {
            what: format!("--pidfd-socket (a descriptor for pid {pid})"),
            os: "FreeBSD",
            hint: "FreeBSD has no pidfd_open; omit --pidfd-socket".into(),
        })
    }

    fn process_start_time(pid: i32) -> Option<u64> {
        let k = sys::process(pid)?;
        if k.ki_stat == libc::SZOMB {
            return None;
        }
        let secs = u64::try_from(k.ki_start.tv_sec).ok()?;
        let micros = u64::try_from(k.ki_start.tv_usec).ok()?;
        Some(secs * 1_000_000 + micros)
    }
}
