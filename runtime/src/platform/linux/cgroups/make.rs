//! Making a container's planned cgroups: each directory created (its parents, v2
//! controllers enabled down the path, v1 cpusets filled), announced to `intend` before it
//! is made and recorded in `made` once it exists, an abandoned leaf of the same name
//! adopted only when empty, then the limit files written.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use super::*;
pub(super) fn apply(
    cgroups: Vec<Cgroup>,
    made: &mut Vec<PathBuf>,
    intend: &dyn Fn(&Path) -> Result<(), PlatformError>,
) -> Result<(), PlatformError> {
    for g in cgroups {
        if g.hierarchy.v2 {
            enable_v2_controllers(&g)?;
        }
        let ours = made.contains(&g.dir);
        if !ours {
            intend(&g.dir)?;
        }
        match fs::create_dir(&g.dir) {
            Ok(()) => {}
            // The container's own, from create or an earlier update.
            Err(e) if ours && e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) if e.kind() == ErrorKind::NotFound => create_with_parents(&g)?,
            // Left by a container of this name that was never deleted (a crash): taken
            // over only when it is an empty leaf, so no other cgroup is ever adopted.
            Err(e) if e.kind() == ErrorKind::AlreadyExists => check_abandoned(&g.dir)?,
            Err(e) => return Err(io_err(format!("creating cgroup {}", g.dir.display()))(e)),
        }
        if !ours {
            made.push(g.dir.clone());
        }
        if !g.hierarchy.v2 && g.controllers.contains(&Controller::Cpuset) {
            fill_cpuset_v1(&g)?;
        }
        let writes: Vec<_> = g
            .writes
            .iter()
            .filter(|(file, _, optional)| {
                let present = !*optional || g.dir.join(file).exists();
                if !present {
                    tracing::warn!(
                        "linux.resources.memory.swap not enforced: the kernel has no swap accounting ({} is missing)",
                        g.dir.join(file).display()
                    );
                }
                present
            })
            .collect();
        let write = |(file, value, _): &(&str, String, bool)| {
            let path = writes::file_here(&g.dir, g.hierarchy.v2, file);
            fs::write(&path, value).map_err(|e| (path, value.clone(), e))
        };
        let mut i = 0;
        while i < writes.len() {
            match write(writes[i]) {
                Ok(()) => i += 1,
                // v1 keeps memory.limit_in_bytes <= memory.memsw.limit_in_bytes at every
                // step, so raising both needs the second written first.
                Err((_, _, e))
                    if e.raw_os_error() == Some(nix::libc::EINVAL)
                        && writes[i].0 == "memory.limit_in_bytes"
                        && writes
                            .get(i + 1)
                            .is_some_and(|w| w.0 == "memory.memsw.limit_in_bytes") =>
                {
                    write(writes[i + 1])
                        .and_then(|()| write(writes[i]))
                        .map_err(|(path, value, e)| {
                            io_err(format!("writing {value} to {}", path.display()))(e)
                        })?;
                    i += 2;
                }
                // A file this kernel, controller or I/O scheduler does not have: the
                // field cannot be carried here.
                Err((path, value, e)) if e.kind() == ErrorKind::NotFound => {
                    return Err(PlatformError::Unsupported {
                        what: match writes::field_of(writes[i].0) {
                            Some(field) => format!("linux.resources.{field}"),
                            None => format!("the cgroup file {}", writes[i].0),
                        },
                        os: "this Linux host",
                        hint: format!(
                            "{} does not exist, so {value} cannot be written; remove the field",
                            path.display()
                        ),
                    })
                }
                Err((path, value, e)) => {
                    let field = writes::field_of(writes[i].0)
                        .map(|f| format!(" (linux.resources.{f})"))
                        .unwrap_or_default();
                    return Err(io_err(format!(
                        "writing {value} to {}{field}",
                        path.display()
                    ))(e));
                }
            }
        }
        for (key, value) in &g.unified {
            let path = g.dir.join(key);
            fs::write(&path, value).map_err(io_err(format!(
                "writing linux.resources.unified[{}] {} to {}",
                stockade_quote::quote(key),
                stockade_quote::quote(value),
                path.display()
            )))?;
        }
        if let Some(prog) = &g.device_filter {
            attach_device_filter(&g.dir, prog)?;
        }
    }
    Ok(())
}

/// A v1 cpuset cgroup starts with no CPUs and no memory nodes, and no process can join it
/// until both are set: each cgroup from the hierarchy's root down to the container's gets
/// its parent's lists where its own are empty, and the container's always starts from its
/// parent's (the configured lists are written after; an update that lifts one gets the
/// parent's back).
fn fill_cpuset_v1(g: &Cgroup) -> Result<(), PlatformError> {
    let rel = g.dir.strip_prefix(&g.hierarchy.mount).unwrap_or(&g.dir);
    let mut parent = g.hierarchy.mount.clone();
    for part in rel.components() {
        let dir = parent.join(part);
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let own = fs::read_to_string(dir.join(file)).unwrap_or_default();
            if own.trim().is_empty() || dir == g.dir {
                let from = parent.join(file);
                let value = fs::read_to_string(&from)
                    .map_err(io_err(format!("reading {}", from.display())))?;
                let to = dir.join(file);
                fs::write(&to, value.trim()).map_err(io_err(format!(
                    "writing {} to {}",
                    value.trim(),
                    to.display()
                )))?;
            }
        }
        parent = dir;
    }
    Ok(())
}

/// Creates `g.dir` and its missing parents. A delete may remove the shared default parent
/// (`/stockade`) in between when it empties it, so that race is retried.
fn create_with_parents(g: &Cgroup) -> Result<(), PlatformError> {
    let parent = g.dir.parent().unwrap_or(&g.hierarchy.mount);
    let mut tries = 0;
    loop {
        fs::create_dir_all(parent)
            .map_err(io_err(format!("creating cgroup {}", parent.display())))?;
        match fs::create_dir(&g.dir) {
            Err(e) if e.kind() == ErrorKind::NotFound && tries < 5 => tries += 1,
            r => return r.map_err(io_err(format!("creating cgroup {}", g.dir.display()))),
        }
    }
}

/// An existing cgroup directory that create may adopt: no process in it and no child
/// cgroup under it. Anything else — a slice, a pod, a running container — is refused.
fn check_abandoned(dir: &Path) -> Result<(), PlatformError> {
    let refuse = |why: String| {
        PlatformError::Failed {
        call: format!("creating cgroup {}", dir.display()),
        detail: format!("{why}; stockade makes each container a cgroup of its own (choose another linux.cgroupsPath)"),
    }
    };
    let procs = fs::read_to_string(dir.join("cgroup.procs")).map_err(|e| {
        refuse(format!(
            "it exists and its cgroup.procs cannot be read ({e})"
        ))
    })?;
    if !procs.trim().is_empty() {
        return Err(refuse("it exists and has processes in it".into()));
    }
    let children = fs::read_dir(dir)
        .map_err(|e| refuse(format!("it exists and cannot be listed ({e})")))?
        .filter_map(Result::ok)
        .any(|e| e.file_type().is_ok_and(|t| t.is_dir()));
    if children {
        return Err(refuse("it exists and has cgroups below it".into()));
    }
    Ok(())
}

/// cgroup v2 only lets a cgroup use a controller its parent enabled for its children:
/// `+name` is written to `cgroup.subtree_control` from the hierarchy's root down to the
/// container's parent cgroup.
fn enable_v2_controllers(g: &Cgroup) -> Result<(), PlatformError> {
    let enable = |dir: &Path| -> Result<(), PlatformError> {
        let file = dir.join("cgroup.subtree_control");
        let enabled = fs::read_to_string(&file).unwrap_or_default();
        let names = g
            .controllers
            .iter()
            .filter(|c| **c != Controller::Devices)
            .map(|c| c.v2_name())
            .chain(g.unified_controllers.iter().map(String::as_str));
        for name in names {
            if !enabled.split_whitespace().any(|e| e == name) {
                let n = format!("+{name}");
                fs::write(&file, &n)
                    .map_err(io_err(format!("writing {n} to {}", file.display())))?;
            }
        }
        Ok(())
    };
    let rel = g.dir.strip_prefix(&g.hierarchy.mount).unwrap_or(&g.dir);
    let mut dir = g.hierarchy.mount.clone();
    for part in rel.parent().into_iter().flat_map(Path::components) {
        enable(&dir)?;
        dir.push(part);
        match fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err(format!("creating cgroup {}", dir.display()))(e)),
        }
    }
    enable(&dir)
}
