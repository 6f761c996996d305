//! The FreeBSD executor: carries out the steps of `platform::freebsd_plan` through a
//! [`Kernel`], recording in [`Resources`] (its [`FreeBsdMade`]) what each one makes *before* it makes it (and
//! forgetting it again when the call fails without effect), so that a SIGKILL at any
//! instant leaves only what `delete --force` undoes from the recorded state. Generic over
//! the kernel: the same code runs against FreeBSD and against the model on every host.

use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;

use super::kernel::{Forked, Kernel, KernelError};
use crate::jail::{JailParam, ParamValue};
use crate::mounts::{create_mount_point, resolve_in_root};
use crate::platform::freebsd_plan::FreeBsdMade;
use crate::platform::freebsd_plan::{
    self, rctl, HostInputs, Made, Step, JAIL_UPDATE, MNT_BYFSID, MNT_FORCE,
};
use crate::platform::{ContainerPlan, PlatformError};
use crate::platform::{Journal, Resources};

/// How long delete waits for the processes of a removed jail to exit before it unmounts.
const REMOVE_WAIT: Duration = Duration::from_secs(2);

fn failed(call: impl Into<String>, e: KernelError) -> PlatformError {
    PlatformError::Failed {
        call: call.into(),
        detail: e.to_string(),
    }
}

/// A failed `rctl_add_rule`/`rctl_remove_rule` of `rule`. ENOSYS is what every rctl call
/// returns while racct is off (`kern.racct.enable=0`, GENERIC's default).
fn rctl_failed(call: &str, rule: &str, e: KernelError) -> PlatformError {
    PlatformError::Failed {
        call: format!("{call}({})", stockade_quote::quote(rule)),
        detail: if e.code() == Some(Errno::ENOSYS) {
            "resource limits need RACCT/RCTL: set kern.racct.enable=1 in /boot/loader.conf and reboot"
                .into()
        } else {
            e.to_string()
        },
    }
}

/// The first free devfs ruleset for jail `name`, given the rulesets in `used`.
fn allocate_devfs_ruleset(used: &[u16], name: &str) -> Result<u16, PlatformError> {
    freebsd_plan::devfs_ruleset_candidates(name)
        .find(|n| !used.contains(n))
        .ok_or_else(|| PlatformError::Failed {
            call: "allocating a devfs ruleset for freebsd.devices".into(),
            detail: format!(
                "every ruleset from {} to 65535 is in use",
                freebsd_plan::FIRST_DEVFS_RULESET
            ),
        })
}

fn children<K: Kernel>(k: &mut K, parent: &str) -> Result<(i32, i32), PlatformError> {
    k.children(parent).map_err(|e| {
        failed(
            format!("jail_get children.max, children.cur of parent jail {parent:?}"),
            e,
        )
    })
}

/// The live (not dying) jails below `name`: `children.cur` counts dying ones too.
fn live_children<K: Kernel>(k: &mut K, name: &str) -> Result<i32, PlatformError> {
    let (_, cur) = children(k, name)?;
    let dying = k
        .dying_children(name)
        .map_err(|e| failed(format!("jail_get dying children of {name:?}"), e))?;
    Ok(cur.saturating_sub(i32::try_from(dying).unwrap_or(i32::MAX)))
}

fn set_children_max<K: Kernel>(k: &mut K, parent: &str, max: i32) -> Result<(), PlatformError> {
    let params = [
        JailParam::new("name", ParamValue::Str(parent.to_string())),
        JailParam::new("children.max", ParamValue::Int(max)),
    ];
    k.jail_set(&params, JAIL_UPDATE).map(drop).map_err(|e| {
        failed(
            format!("jail_set(JAIL_UPDATE) children.max={max} of parent jail {parent:?}"),
            e,
        )
    })
}

/// Looks up what the plan needs from the host, plans, and executes the create steps.
/// `journal` is called with what is recorded before every call that may make something,
/// so the caller can persist it; its error stops create.
pub fn prepare_host<K: Kernel>(
    k: &mut K,
    plan: &ContainerPlan,
    made: &mut Resources<FreeBsdMade>,
    journal: &mut Journal<'_, FreeBsdMade>,
) -> Result<(), PlatformError> {
    let root = plan.jail.path.as_path();
    let mount_targets = plan
        .mounts
        .iter()
        .map(|m| resolve_in_root(root, &m.destination))
        .collect::<Result<Vec<_>, _>>()?;
    let used = k
        .devfs_showsets()
        .map_err(|e| failed("devfs rule showsets", e))?;
    let base = freebsd_plan::dev_base_ruleset(plan);
    // The ruleset /dev (and the jail's devfs_ruleset) relies on must exist: devfs applies
    // a missing one as empty, which shows every device (a host whose /etc/rc.d/devfs has
    // not loaded /etc/defaults/devfs.rules has no ruleset 4).
    if base != 0 && !used.contains(&base) {
        return Err(PlatformError::Unsupported {
            what: format!("devfs ruleset {base} for the container's /dev"),
            os: "FreeBSD",
            hint: "it is not loaded on this host (devfs rule showsets); `service devfs \
                   restart` loads /etc/defaults/devfs.rules and /etc/devfs.rules"
                .into(),
        });
    }
    let (devfs_ruleset, devfs_base_rules) = if freebsd_plan::devices(plan).is_empty() {
        (None, Vec::new())
    } else {
        let own = allocate_devfs_ruleset(&used, plan.jail.name.as_str())?;
        let rules = if base == 0 {
            Vec::new()
        } else {
            freebsd_plan::flatten_ruleset(base, &mut |n| {
                k.devfs_show(n)
                    .map_err(|e| failed(format!("devfs rule -s {n} show"), e))
            })?
        };
        (Some(own), rules)
    };
    let host = HostInputs {
        mount_targets,
        devfs_ruleset,
        devfs_base_rules,
    };
    let created = freebsd_plan::create_plan(plan, &host)?;
    // Recorded with the jail's name (journalled at jail_set): delete keeps a pod's
    // sandbox while its containers' child jails live.
    made.backend.holds_children = plan.jail.children_max.is_some();
    for step in &created.steps {
        tracing::debug!(%step, "create");
        create_step(k, step, root, made, journal)?;
    }
    Ok(())
}

fn jail_name(params: &[JailParam]) -> String {
    params
        .iter()
        .find(|p| p.name == "name")
        .map(|p| match &p.value {
            ParamValue::Str(s) => s.clone(),
            _ => String::new(),
        })
        .unwrap_or_default()
}

/// Executes one create step: records it, calls, and forgets the record when the call
/// failed (a failed call made nothing).
fn create_step<K: Kernel>(
    k: &mut K,
    step: &Step,
    root: &Path,
    made: &mut Resources<FreeBsdMade>,
    journal: &mut Journal<'_, FreeBsdMade>,
) -> Result<(), PlatformError> {
    match step {
        Step::RaiseChildrenMax { parent, at_least } => {
            let (max, cur) = children(k, parent)?;
            let wanted = cur.saturating_add(1).max(
                i32::try_from(*at_least)
                    .unwrap_or(i32::MAX)
                    .saturating_add(1),
            );
            if max < wanted {
                made.backend.raised_children_max = Some((parent.clone(), max));
                journal(made)?;
                if let Err(e) = set_children_max(k, parent, wanted) {
                    made.backend.raised_children_max = None;
                    return Err(e);
                }
            }
        }
        Step::MountPoint { target, file } => {
            made.mount_points
                .extend(create_mount_point(root, target, *file)?);
            journal(made)?;
        }
        Step::DevfsRule { ruleset, rule } => {
            // Recorded first: a set left half-filled by a failing rule is still deleted.
            if !made.backend.devfs_rulesets.contains(ruleset) {
                made.backend.devfs_rulesets.push(*ruleset);
                journal(made)?;
            }
            let words = rule.strip_prefix(&["add".to_string()]).unwrap_or(rule);
            k.devfs_add(*ruleset, words)
                .map_err(|e| failed(step.to_string(), e))?;
        }
        Step::Nmount { iov, flags } => {
            let path = freebsd_plan::fspath(iov).unwrap_or_default();
            made.backend.mounts.push(path.clone());
            journal(made)?;
            if let Err(e) = k.nmount(iov, *flags) {
                made.backend.mounts.pop();
                let fstype = iov
                    .iter()
                    .find(|(n, _)| n == "fstype")
                    .and_then(|(_, v)| v.as_deref())
                    .map(|v| {
                        String::from_utf8_lossy(v.strip_suffix(&[0]).unwrap_or(v)).into_owned()
                    })
                    .unwrap_or_default();
                return Err(failed(format!("nmount {fstype} on {}", path.display()), e));
            }
            // Nothing runs in the jail yet, so the path still leads to the new mount.
            let fsid = k
                .fsid(&path)
                .map_err(|e| failed(format!("statfs {}", path.display()), e))?;
            made.backend.mount_fsids.push((path, fsid));
            journal(made)?;
        }
        Step::JailSet { params, flags } => {
            // The name first: a create killed before the jid is recorded is still found.
            let name = jail_name(params);
            made.backend.jail_name = Some(name.clone());
            journal(made)?;
            match k.jail_set(params, *flags) {
                Ok(jid) => {
                    made.backend.jid = Some(jid);
                    journal(made)?;
                }
                Err(e) => {
                    made.backend.jail_name = None;
                    return Err(failed(format!("jail_set(JAIL_CREATE) of jail {name:?}"), e));
                }
            }
        }
        Step::RctlAddRule { rule } => {
            made.backend.rctl_rules.push(rule.clone());
            journal(made)?;
            if let Err(e) = k.rctl_add_rule(rule) {
                made.backend.rctl_rules.pop();
                return Err(rctl_failed("rctl_add_rule", rule, e));
            }
        }
        Step::Ifconfig { args, made: record } => {
            match record {
                Some(Made::InterfaceAlias { interface, address }) => made
                    .backend
                    .interface_aliases
                    .push((interface.clone(), address.clone())),
                Some(Made::VnetInterface(i)) => made.backend.vnet_interfaces.push(i.clone()),
                None => {}
            }
            journal(made)?;
            if let Err(e) = k.ifconfig(args) {
                match record {
                    Some(Made::InterfaceAlias { .. }) => {
                        made.backend.interface_aliases.pop();
                    }
                    Some(Made::VnetInterface(_)) => {
                        made.backend.vnet_interfaces.pop();
                    }
                    None => {}
                }
                return Err(failed(step.to_string(), e));
            }
        }
        other => {
            return Err(PlatformError::Failed {
                call: other.to_string(),
                detail: "a delete step in a create plan".into(),
            })
        }
    }
    Ok(())
}

fn no_jail() -> PlatformError {
    PlatformError::Failed {
        call: "jail_attach".into(),
        detail: "create recorded no jail".into(),
    }
}

/// Enters the container's jail: `jail_attach` (which also chroots to the jail's root),
/// then `chdir("/")`.
pub fn attach<K: Kernel>(k: &mut K, made: &FreeBsdMade) -> Result<(), PlatformError> {
    let jid = made.jid.ok_or_else(no_jail)?;
    k.jail_attach(jid)
        .map_err(|e| failed(format!("jail_attach({jid})"), e))
}

/// Forks a child that runs `child` (which must not return) and returns the child's pid.
/// The model runs no child: it only records the process.
pub fn spawn<K: Kernel>(
    k: &mut K,
    what: &str,
    child: &mut dyn FnMut(&mut K) -> i32,
) -> Result<i32, PlatformError> {
    match k.fork().map_err(|e| failed(format!("fork ({what})"), e))? {
        Forked::Child => {
            let code = child(k);
            std::process::exit(code)
        }
        Forked::Parent(pid) => Ok(pid),
    }
}

/// The jail delete should remove: the recorded jid when it still carries the recorded
/// name (jids are reused), or, with no jid recorded, the live jail of the recorded name.
fn our_jail<K: Kernel>(k: &mut K, made: &FreeBsdMade) -> Result<Option<i32>, PlatformError> {
    match (made.jid, made.jail_name.as_deref()) {
        (Some(jid), name) => {
            let now = k
                .jail_by_jid(jid, false)
                .map_err(|e| failed(format!("jail_get name of jail {jid}"), e))?;
            Ok(match (now, name) {
                (None, _) => None,
                (Some(now), Some(name)) if now.name != name => {
                    tracing::warn!(jid, now = %now.name, expected = %name, "jid now belongs to another jail; not removing it");
                    None
                }
                (Some(_), _) => Some(jid),
            })
        }
        (None, Some(name)) => Ok(k
            .jail_by_name(name)
            .map_err(|e| failed(format!("jail_get jid of jail {name:?}"), e))?
            .map(|j| j.jid)),
        (None, None) => Ok(None),
    }
}

/// Waits until no live process is in jail `jid`, at most [`REMOVE_WAIT`].
fn wait_until_empty<K: Kernel>(k: &mut K, jid: i32) {
    let deadline = Instant::now() + REMOVE_WAIT;
    while Instant::now() < deadline {
        match k.processes() {
            Ok(procs) if !procs.iter().any(|p| p.jid == jid && !p.zombie) => return,
            Ok(_) => std::thread::sleep(Duration::from_millis(10)),
            Err(_) => return,
        }
    }
    tracing::warn!(
        jid,
        "processes of the removed jail are still exiting; unmounting anyway"
    );
}

/// Undoes everything in `made`, in reverse order, as far as it can; returns what failed.
pub fn destroy<K: Kernel>(k: &mut K, made: &FreeBsdMade) -> Vec<PlatformError> {
    let mut errors = Vec::new();
    let ours = our_jail(k, made).unwrap_or_else(|e| {
        errors.push(e);
        None
    });
    if let (Some(_), Some(name), true) = (ours, made.jail_name.as_deref(), made.holds_children) {
        // Children before the parent: jail_remove of a parent kills its children's
        // processes and removes their jails too (kern_jail.c prison_remove walks the
        // descendants), behind the back of the containers that own them. A pod's sandbox
        // is deleted after its containers (CRI's order); until then nothing is touched,
        // so this delete can be retried. Only a jail made to hold children (a sandbox)
        // is checked: jails a container's own processes nest inside it go with it.
        match live_children(k, name) {
            Ok(0) => {}
            Ok(n) => {
                errors.push(PlatformError::Failed {
                    call: format!("deleting jail {name:?}"),
                    detail: format!(
                        "it still has {n} live child jail(s) (a pod's containers); delete them first"
                    ),
                });
                return errors;
            }
            Err(e) => {
                errors.push(e);
                return errors;
            }
        }
    }
    let mut resolved = made.clone();
    resolved.jid = ours;
    if ours.is_none() {
        // Nothing of ours to remove or reclaim from.
        resolved.jail_name = None;
        resolved.vnet_interfaces.clear();
    }
    for step in freebsd_plan::destroy_plan(&resolved) {
        tracing::debug!(%step, "delete");
        if let Err(e) = destroy_step(k, &step) {
            errors.push(e);
        }
    }
    errors
}

fn destroy_step<K: Kernel>(k: &mut K, step: &Step) -> Result<(), PlatformError> {
    match step {
        Step::ReclaimInterface { interface, .. } => {
            if let Some(argv) = step.command() {
                if let Err(e) = k.ifconfig(&argv[1..]) {
                    tracing::warn!(%interface, error = %e, "interface not reclaimed; the kernel returns it when the jail's vnet is destroyed");
                }
            }
        }
        Step::JailRemove { jid: Some(jid), .. } => match k.jail_remove(*jid) {
            // EINVAL: no such jail (any more).
            Ok(()) => wait_until_empty(k, *jid),
            Err(e) if e.code() == Some(Errno::EINVAL) => {}
            Err(e) => return Err(failed(format!("jail_remove({jid})"), e)),
        },
        Step::JailRemove { jid: None, .. } => {}
        Step::RctlRemoveRule { filter } => match k.rctl_remove_rule(filter) {
            Ok(()) => {}
            // ESRCH: no rule matches (removed already). ENOSYS: racct is off, so no rule
            // can exist (rules live in the kernel and do not survive a reboot).
            Err(e) if matches!(e.code(), Some(Errno::ESRCH | Errno::ENOSYS)) => {}
            Err(e) => return Err(rctl_failed("rctl_remove_rule", filter, e)),
        },
        Step::Ifconfig { args, made: None } => {
            if let Err(e) = k.ifconfig(args) {
                // An alias recorded before a create killed ahead of its ifconfig was never
                // added: "Can't assign requested address" is then the expected answer.
                tracing::debug!(error = %e, "removing an alias");
                if !e.to_string().contains("Can't assign requested address") {
                    return Err(failed(step.to_string(), e));
                }
            }
        }
        Step::DevfsDelset { ruleset } => {
            k.devfs_delset(*ruleset)
                .map_err(|e| failed(step.to_string(), e))?;
        }
        Step::Unmount { path, fsid, force } => {
            let (target, by) = match fsid {
                Some(id) => (Path::new(id.as_str()), MNT_BYFSID),
                None => {
                    tracing::warn!(path = %path.display(), "no fsid recorded (create was killed right after mounting); unmounting by path");
                    (path.as_path(), 0)
                }
            };
            let flags = by | if *force { MNT_FORCE } else { 0 };
            match k.unmount(target, flags) {
                Ok(()) => {}
                // No such file system (any more), not a mount point, or the path is gone:
                // nothing to undo.
                Err(e) if matches!(e.code(), Some(Errno::EINVAL | Errno::ENOENT)) => {}
                Err(e) if e.code() == Some(Errno::EBUSY) && !force => {
                    tracing::warn!(path = %path.display(), "busy after the jail was removed; unmounting with MNT_FORCE");
                    k.unmount(target, by | MNT_FORCE).map_err(|e| {
                        failed(format!("unmount {} (MNT_FORCE)", path.display()), e)
                    })?;
                }
                Err(e) => return Err(failed(format!("unmount {}", path.display()), e)),
            }
        }
        Step::RestoreChildrenMax { parent, previous } => {
            let (max, cur) = match k.children(parent) {
                Ok(v) => v,
                Err(e) if e.code() == Some(Errno::ENOENT) => return Ok(()),
                Err(e) => {
                    return Err(failed(
                        format!("jail_get children of parent jail {parent:?}"),
                        e,
                    ))
                }
            };
            // children.cur still counts dying children (ours, just removed, among them)
            // until their last reference goes (kern_jail.c prison_deref): only live ones
            // need room.
            let dying = k
                .dying_children(parent)
                .map_err(|e| failed(format!("jail_get dying children of {parent:?}"), e))?;
            let live = cur.saturating_sub(i32::try_from(dying).unwrap_or(i32::MAX));
            let wanted = (*previous).max(live);
            if wanted < max {
                set_children_max(k, parent, wanted)?;
            }
        }
        other => {
            return Err(PlatformError::Failed {
                call: other.to_string(),
                detail: "a create step in a delete plan".into(),
            })
        }
    }
    Ok(())
}

/// `update` of a live jail's rctl rules.
pub fn update_limits<K: Kernel>(
    k: &mut K,
    made: &mut FreeBsdMade,
    after: &crate::limits::ResourceLimits,
) -> Result<(), PlatformError> {
    let name = made.jail_name.clone().ok_or_else(no_jail)?;
    for step in rctl::update_steps(&name, &made.rctl_rules, after)? {
        match &step {
            Step::RctlRemoveRule { filter } => {
                match k.rctl_remove_rule(filter) {
                    Ok(()) => {}
                    Err(e) if e.code() == Some(Errno::ESRCH) => {}
                    Err(e) => return Err(rctl_failed("rctl_remove_rule", filter, e)),
                }
                made.rctl_rules.retain(|r| rctl::filter(r) != filter);
            }
            Step::RctlAddRule { rule } => {
                // Recorded first; the rule it replaces stays recorded until the kernel
                // has replaced it, so neither is ever in the kernel unrecorded.
                made.rctl_rules.push(rule.clone());
                if let Err(e) = k.rctl_add_rule(rule) {
                    made.rctl_rules.pop();
                    return Err(rctl_failed("rctl_add_rule", rule, e));
                }
                made.rctl_rules
                    .retain(|r| r == rule || rctl::filter(r) != rctl::filter(rule));
            }
            other => {
                return Err(PlatformError::Failed {
                    call: other.to_string(),
                    detail: "not a step of a limits update".into(),
                })
            }
        }
    }
    Ok(())
}

/// The pids of every live process in the container's jail, plus the init while it has
/// not attached yet.
pub fn container_pids<K: Kernel>(
    k: &mut K,
    made: &FreeBsdMade,
    init_pid: Option<i32>,
) -> Result<Vec<i32>, PlatformError> {
    let procs = k
        .processes()
        .map_err(|e| failed("sysctl kern.proc.proc", e))?;
    let mut pids: Vec<i32> = match made.jid {
        Some(jid) => procs
            .iter()
            .filter(|p| p.jid == jid && !p.zombie)
            .map(|p| p.pid)
            .collect(),
        None => Vec::new(),
    };
    if let Some(init) = init_pid {
        if !pids.contains(&init) && procs.iter().any(|p| p.pid == init && !p.zombie) {
            pids.push(init);
        }
    }
    Ok(pids)
}
