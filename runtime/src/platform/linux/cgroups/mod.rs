//! The container's cgroups on Linux. Every container gets device rules
//! (`linux.resources.devices`, [`super::devices`]): on a host with the unified (v2)
//! hierarchy a cgroup of its own there with a BPF device filter, which the init is born into
//! with `clone3(CLONE_INTO_CGROUP)` — no migration, so no RCU grace period (~10 ms) per
//! create; on a host without cgroup2 in the kernel, a v1 `devices` cgroup it joins.
//! A container with limits ([`ResourceLimits`]) also gets a cgroup in each hierarchy that
//! carries a limited controller — v1 (`memory`, `pids`, `cpu`) or v2 (the controller
//! enabled down the path) — with the limits written before the init is moved in, so
//! nothing in the container ever runs unlimited. `update` makes the cgroups a newly limited
//! controller needs and moves the container's processes in until none is left outside.
//! Delete removes the leaf cgroups create and update made, and the default parent once it
//! is empty.

mod devices_cg;
mod make;
mod place;
mod unified;
mod view;
mod writes;

use std::fs;
use std::path::{Component, Path, PathBuf};

use super::super::{ContainerPlan, PlatformError};
use super::devfilter;
use super::devices::{self, Policy};
use super::mountinfo::hierarchies;
use crate::limits::ResourceLimits;
use devices_cg::{attach_device_filter, device_hierarchy, device_policy};
pub use place::{clone_placed, join, placement, remove};
pub use unified::ensure_for as ensure_reachable;
pub use view::{mount_view, view_for_init, CgroupView};

/// A cgroup controller stockade writes limits to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Controller {
    Memory,
    Pids,
    Cpu,
    Cpuset,
    /// Block I/O: `blkio` on v1, `io` on v2.
    Blkio,
    Hugetlb,
    /// `net_cls` and `net_prio`: cgroup v1 only.
    NetCls,
    NetPrio,
    /// RDMA HCA limits (`rdma.max`, both hierarchies).
    Rdma,
    /// Device rules: a BPF program on v2 (no controller to enable), `devices.*` on v1.
    Devices,
}

impl Controller {
    fn name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Pids => "pids",
            Controller::Cpu => "cpu",
            Controller::Cpuset => "cpuset",
            Controller::Blkio => "blkio",
            Controller::Hugetlb => "hugetlb",
            Controller::NetCls => "net_cls",
            Controller::NetPrio => "net_prio",
            Controller::Rdma => "rdma",
            Controller::Devices => "devices",
        }
    }

    /// The controller's name in the unified hierarchy.
    fn v2_name(self) -> &'static str {
        match self {
            Controller::Blkio => "io",
            c => c.name(),
        }
    }

    /// The field whose limit needs this controller, for messages.
    fn field(self) -> &'static str {
        match self {
            Controller::Memory => "linux.resources.memory.limit",
            Controller::Pids => "linux.resources.pids.limit",
            Controller::Cpu => "linux.resources.cpu.quota/shares",
            Controller::Cpuset => "linux.resources.cpu.cpus/mems",
            Controller::Blkio => "linux.resources.blockIO",
            Controller::Hugetlb => "linux.resources.hugepageLimits",
            Controller::NetCls => "linux.resources.network.classID",
            Controller::NetPrio => "linux.resources.network.priorities",
            Controller::Rdma => "linux.resources.rdma",
            Controller::Devices => "linux.resources.devices",
        }
    }
}

/// Where a controller is mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Hierarchy {
    mount: PathBuf,
    v2: bool,
}

/// One cgroup to make: its directory and the files to write, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cgroup {
    hierarchy: Hierarchy,
    dir: PathBuf,
    controllers: Vec<Controller>,
    /// `(file, value, optional)`: an optional file that does not exist (swap accounting
    /// turned off) is a warning, not an error.
    writes: Vec<(&'static str, String, bool)>,
    /// The device filter to attach (v2), as BPF instructions.
    device_filter: Option<Vec<u8>>,
    /// `linux.resources.unified` files and values (v2), and the controllers they need.
    unified: Vec<(String, String)>,
    unified_controllers: Vec<String>,
}

/// The container's cgroup path inside each hierarchy: `linux.cgroupsPath` when it is a
/// path, else `/stockade/<id>`. systemd's `slice:prefix:name` form needs systemd, which
/// stockade does not talk to; it is named in a warning and the default is used.
fn relative_path(id: &str, cgroups_path: Option<&Path>) -> Result<PathBuf, PlatformError> {
    let default = PathBuf::from("stockade").join(id);
    let Some(given) = cgroups_path.filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(default);
    };
    let text = given.to_string_lossy();
    if !text.starts_with('/') && text.matches(':').count() == 2 {
        tracing::warn!(
            "linux.cgroupsPath {text:?} is a systemd unit path; stockade manages cgroups directly and uses /{}",
            default.display()
        );
        return Ok(default);
    }
    let mut out = PathBuf::new();
    for c in given.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => out.push(n),
            Component::ParentDir | Component::Prefix(_) => {
                return Err(PlatformError::Failed {
                    call: format!("linux.cgroupsPath {text:?}"),
                    detail: "\"..\" is not allowed; expected a path inside the cgroup hierarchy"
                        .into(),
                })
            }
        }
    }
    if out.as_os_str().is_empty() {
        return Err(PlatformError::Failed {
            call: format!("linux.cgroupsPath {text:?}"),
            detail:
                "the hierarchy's root cannot hold a container's limits; expected a path below it"
                    .into(),
        });
    }
    Ok(out)
}

/// The hierarchy that carries `c`: its v1 mount, else the v2 mount when the controller is
/// available there (listed in the root's `cgroup.controllers`).
fn hierarchy_for(
    c: Controller,
    v1: &[(String, PathBuf)],
    v2: Option<&Path>,
) -> Result<Hierarchy, PlatformError> {
    if let Some((_, mount)) = v1.iter().find(|(o, _)| o == c.name()) {
        return Ok(Hierarchy {
            mount: mount.clone(),
            v2: false,
        });
    }
    if let Some(mount) = v2 {
        let listed = fs::read_to_string(mount.join("cgroup.controllers")).unwrap_or_default();
        if listed.split_whitespace().any(|n| n == c.v2_name()) {
            return Ok(Hierarchy {
                mount: mount.to_path_buf(),
                v2: true,
            });
        }
    }
    Err(PlatformError::Unsupported {
        what: c.field().into(),
        os: "this Linux host",
        hint: format!(
            "no mounted cgroup hierarchy has the {} controller; mount it (or remove the limit)",
            c.name()
        ),
    })
}

/// The cgroups `limits` need, with their writes, for container `id` (see
/// [`relative_path`]): one per hierarchy carrying a limited controller. With `lifted`, the
/// limits in force before an update: a controller limited there but not in `limits` keeps
/// its cgroup and is set back to unlimited. Empty without limits.
fn plan_cgroups(
    id: &str,
    cgroups_path: Option<&Path>,
    limits: &ResourceLimits,
    lifted: Option<&ResourceLimits>,
    devices: Option<&Policy>,
) -> Result<Vec<Cgroup>, PlatformError> {
    let before = lifted.cloned().unwrap_or_default();
    if limits.is_empty() && before.is_empty() && devices.is_none() {
        return Ok(Vec::new());
    }
    let rel = relative_path(id, cgroups_path)?;
    let mountinfo = fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| PlatformError::io("reading /proc/self/mountinfo", &e))?;
    let (v1, v2) = hierarchies(&mountinfo);
    let mut cgroups: Vec<Cgroup> = Vec::new();
    // `involved`: limited now or before; `needed`: limited now, so a host without the
    // controller is an error.
    let mut add =
        |c: Controller, involved: bool, needed: bool| -> Result<Option<bool>, PlatformError> {
            if !involved {
                return Ok(None);
            }
            let found = if c == Controller::Devices {
                device_hierarchy(&v1, v2.as_deref())
            } else {
                hierarchy_for(c, &v1, v2.as_deref())
            };
            let h = match found {
                Ok(h) => h,
                Err(e) if needed => return Err(e),
                Err(_) => return Ok(None),
            };
            let is_v2 = h.v2;
            match cgroups.iter_mut().find(|g| g.hierarchy == h) {
                Some(g) => g.controllers.push(c),
                None => cgroups.push(Cgroup {
                    dir: h.mount.join(&rel),
                    hierarchy: h,
                    controllers: vec![c],
                    writes: Vec::new(),
                    device_filter: None,
                    unified: Vec::new(),
                    unified_controllers: Vec::new(),
                }),
            }
            Ok(Some(is_v2))
        };
    let mut writes: Vec<(Controller, &'static str, String, bool)> = Vec::new();
    for c in [
        Controller::Memory,
        Controller::Pids,
        Controller::Cpu,
        Controller::Cpuset,
        Controller::Blkio,
        Controller::Hugetlb,
        Controller::NetCls,
        Controller::NetPrio,
        Controller::Rdma,
    ] {
        let (involved, needed) = writes::involvement(c, limits, &before);
        if let Some(v2) = add(c, involved, needed)? {
            for (file, value, optional) in writes::limit_writes(c, v2, limits, &before)? {
                writes.push((c, file, value, optional));
            }
        }
    }
    let mut filter = None;
    if let Some(policy) = devices {
        if add(Controller::Devices, true, true)? == Some(true) {
            filter = Some(devfilter::program(policy));
        } else {
            for (file, line) in devices::v1_writes(policy) {
                writes.push((Controller::Devices, file, line, false));
            }
        }
    }
    if let Some(g) = cgroups
        .iter_mut()
        .find(|g| g.controllers.contains(&Controller::Devices) && g.hierarchy.v2)
    {
        g.device_filter = filter;
    }
    if !limits.unified.is_empty() {
        plan_unified(&mut cgroups, &rel, v2.as_deref(), limits)?;
    }
    for (c, file, value, optional) in writes {
        if let Some(g) = cgroups.iter_mut().find(|g| g.controllers.contains(&c)) {
            g.writes.push((file, value, optional));
        }
    }
    Ok(cgroups)
}

/// `linux.resources.unified`: each file goes to the container's v2 cgroup, whose
/// controller (the file's prefix) must be available in the unified hierarchy.
fn plan_unified(
    cgroups: &mut Vec<Cgroup>,
    rel: &Path,
    v2: Option<&Path>,
    limits: &ResourceLimits,
) -> Result<(), PlatformError> {
    let refuse = |key: &str, why: String| PlatformError::Unsupported {
        what: format!("linux.resources.unified[{}]", stockade_quote::quote(key)),
        os: "this Linux host",
        hint: why,
    };
    let Some(mount) = v2 else {
        let key = limits.unified.keys().next().map_or("", String::as_str);
        return Err(refuse(key, "there is no cgroup v2 hierarchy".into()));
    };
    let available = fs::read_to_string(mount.join("cgroup.controllers")).unwrap_or_default();
    let hierarchy = Hierarchy {
        mount: mount.to_path_buf(),
        v2: true,
    };
    let idx = match cgroups.iter().position(|g| g.hierarchy == hierarchy) {
        Some(i) => i,
        None => {
            cgroups.push(Cgroup {
                dir: mount.join(rel),
                hierarchy,
                controllers: Vec::new(),
                writes: Vec::new(),
                device_filter: None,
                unified: Vec::new(),
                unified_controllers: Vec::new(),
            });
            cgroups.len() - 1
        }
    };
    let g = &mut cgroups[idx];
    for (key, value) in &limits.unified {
        let controller = key.split('.').next().unwrap_or_default();
        if !available.split_whitespace().any(|c| c == controller) {
            return Err(refuse(
                key,
                format!("the {controller} controller is not in the unified hierarchy here (a cgroup v1 hierarchy may hold it)"),
            ));
        }
        if !g.unified_controllers.iter().any(|c| c == controller) {
            g.unified_controllers.push(controller.to_string());
        }
        g.unified.push((key.clone(), value.clone()));
    }
    Ok(())
}

/// Checks, before anything is made, that every limit has a hierarchy to go to.
pub fn check(plan: &ContainerPlan) -> Result<(), PlatformError> {
    unified::ensure()?;
    let policy = device_policy(plan)?;
    plan_cgroups(
        plan.id.as_str(),
        cgroups_path(plan),
        &plan.limits,
        None,
        Some(&policy),
    )
    .map(|_| ())
}

pub fn cgroups_path(plan: &ContainerPlan) -> Option<&Path> {
    super::linux_config(plan).and_then(|l| l.cgroups_path().as_deref())
}

fn io_err(what: String) -> impl FnOnce(std::io::Error) -> PlatformError {
    move |e| PlatformError::io(what, &e)
}

/// Makes the container's cgroups and writes its limits; each leaf is announced to `intend`
/// (which persists it) before it is made and recorded in `made` as soon as it exists, so
/// neither a failure midway nor a SIGKILL leaves a cgroup that [`remove`] does not find.
pub fn create(
    plan: &ContainerPlan,
    made: &mut Vec<PathBuf>,
    intend: &dyn Fn(&Path) -> Result<(), PlatformError>,
) -> Result<(), PlatformError> {
    unified::ensure()?;
    let policy = device_policy(plan)?;
    let cgroups = plan_cgroups(
        plan.id.as_str(),
        cgroups_path(plan),
        &plan.limits,
        None,
        Some(&policy),
    )?;
    make::apply(cgroups, made, intend)
}

/// How many passes `update` makes moving processes into new cgroups before it gives up on
/// a container that forks faster than they can be moved.
const MIGRATE_PASSES: usize = 100;

/// Changes a live container's limits from `before` to `limits`. Cgroups a newly limited
/// controller needs are made (and recorded in `made`), their files written, and then the
/// container's processes (`pids()` lists them) are moved in, pass after pass, until a pass
/// finds none outside: a process forked by one already moved is born inside, so only
/// stragglers of the previous listing remain to move.
pub fn update(
    id: &str,
    cgroups_path: Option<&Path>,
    before: &ResourceLimits,
    limits: &ResourceLimits,
    made: &mut Vec<PathBuf>,
    pids: &dyn Fn() -> Vec<i32>,
    intend: &dyn Fn(&Path) -> Result<(), PlatformError>,
) -> Result<(), PlatformError> {
    // Device rules do not change with update: they are in place since create.
    let cgroups = plan_cgroups(id, cgroups_path, limits, Some(before), None)?;
    let new: Vec<PathBuf> = cgroups
        .iter()
        .map(|g| g.dir.clone())
        .filter(|d| !made.contains(d))
        .collect();
    make::apply(cgroups, made, intend)?;
    if new.is_empty() {
        return Ok(());
    }
    for _ in 0..MIGRATE_PASSES {
        let mut moved = 0;
        let listed = pids();
        for dir in &new {
            let inside = fs::read_to_string(dir.join("cgroup.procs")).map_err(io_err(format!(
                "reading {}",
                dir.join("cgroup.procs").display()
            )))?;
            let inside: Vec<i32> = inside
                .lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect();
            for &pid in listed.iter().filter(|p| !inside.contains(p)) {
                match join(std::slice::from_ref(dir), pid) {
                    Ok(()) => moved += 1,
                    // Exited since it was listed: nothing to move.
                    Err(_) if !Path::new(&format!("/proc/{pid}")).exists() => {}
                    Err(e) => return Err(e),
                }
            }
        }
        if moved == 0 {
            return Ok(());
        }
    }
    Err(PlatformError::Failed {
        call: format!("moving the processes of {id} into {}", new[0].display()),
        detail: format!(
            "still forking faster than they can be moved after {MIGRATE_PASSES} passes"
        ),
    })
}

#[cfg(test)]
mod tests;
