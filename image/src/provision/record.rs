//! The record `run --image` writes before it makes anything of a container, and the
//! removal of everything made after it.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{io, ProvisionError};
use crate::rootfs::remove::remove_tree;
use crate::rootfs::storage::{check_id, stale, StorageDriver};
use stockade_fault as fault;

/// Where `run --image` keeps the records of the containers it made.
pub const PROVISIONS_DIR: &str = "provisions";
/// Where `run --image` writes bundles.
pub const BUNDLES_DIR: &str = "bundles";

/// What `run --image` records about a container before making anything of it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Record {
    pub(super) id: String,
    /// The storage driver's name; empty in records of versions before it was kept.
    #[serde(default)]
    pub(super) driver: String,
    pub(super) image: String,
}

/// Where the record of container `id` is.
pub(super) fn record_path(storage_root: &Path, id: &str) -> PathBuf {
    storage_root.join(PROVISIONS_DIR).join(format!("{id}.json"))
}

/// Where the bundle of container `id` is.
pub(super) fn bundle_path(storage_root: &Path, id: &str) -> PathBuf {
    storage_root.join(BUNDLES_DIR).join(id)
}

/// Writes the record of `r` atomically, after checking that `id` is free.
pub(super) fn write(storage_root: &Path, r: &Record) -> Result<(), ProvisionError> {
    check_id(&r.id)?;
    let record = record_path(storage_root, &r.id);
    for p in [&record, &bundle_path(storage_root, &r.id)] {
        if fs::symlink_metadata(p).is_ok() {
            return Err(ProvisionError::Exists {
                id: r.id.clone(),
                path: p.clone(),
            });
        }
    }
    let dir = storage_root.join(PROVISIONS_DIR);
    fs::create_dir_all(&dir).map_err(io("creating", &dir))?;
    crate::oci::layout::write_json(&record, r).map_err(|source| ProvisionError::Record {
        path: record.clone(),
        source,
    })
}

/// The storage driver container `id`'s record names, when it has a record naming one.
pub(super) fn recorded_driver(storage_root: &Path, id: &str) -> Option<String> {
    if check_id(id).is_err() {
        return None;
    }
    let bytes = fs::read(record_path(storage_root, id)).ok()?;
    let r: Record = serde_json::from_slice(&bytes).ok()?;
    (!r.driver.is_empty()).then_some(r.driver)
}

/// Whether container `id` was made by `run --image` and not yet removed.
pub fn is_provisioned(storage_root: &Path, id: &str) -> bool {
    check_id(id).is_ok() && fs::symlink_metadata(record_path(storage_root, id)).is_ok()
}

/// Removes what `run --image` made for container `id` (network, root filesystem, bundle,
/// record); returns whether there was anything. Call after the runtime deleted the container.
pub fn remove_container(
    storage_root: &Path,
    driver: &dyn StorageDriver,
    id: &str,
) -> Result<bool, ProvisionError> {
    // A run killed while writing the record left its temporary, and maybe no record.
    if check_id(id).is_ok() {
        remove_dead_writers_temporaries(&record_path(storage_root, id))?;
    }
    if !is_provisioned(storage_root, id) {
        return Ok(false);
    }
    let record = record_path(storage_root, id);
    // A record cut short by a crash is empty or partial: its driver is then unknown, and
    // the one given is used.
    let recorded: Option<Record> = fs::read(&record)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    if let Some(r) = recorded.as_ref().filter(|r| !r.driver.is_empty()) {
        if r.driver != driver.name() {
            return Err(ProvisionError::Driver {
                id: id.to_string(),
                recorded: r.driver.clone(),
                given: driver.name(),
            });
        }
    }
    // The network first: its teardown needs nothing of the rest, and its record is kept
    // until it is done, so that a crash here is finished by the next delete.
    stockade_net::detach(storage_root, id)?;
    fault::point("delete:network-removed");
    driver.remove_rootfs(id)?;
    fault::point("delete:rootfs-removed");
    let bundle = bundle_path(storage_root, id);
    remove_tree(&bundle).map_err(io("removing", &bundle))?;
    fault::point("delete:bundle-removed");
    match fs::remove_file(&record) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(io("removing", &record)(e)),
    }
}

/// The temporaries of atomic writes of `path` (`.NAME.PID.tmp`) whose writer is no live
/// process: a killed `run` left them, and the id's removal takes them at once (prune takes
/// any once old). A live writer's is kept.
fn remove_dead_writers_temporaries(path: &Path) -> Result<(), ProvisionError> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Ok(());
    };
    let prefix = format!(".{}.", name.to_string_lossy());
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io("reading", dir)(e)),
    };
    for ent in entries {
        let ent = ent.map_err(io("reading", dir))?;
        let file = ent.file_name().to_string_lossy().into_owned();
        let Some(pid) = file
            .strip_prefix(&prefix)
            .and_then(|r| r.strip_suffix(".tmp"))
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        let dead = pid <= 0
            || nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None)
                == Err(nix::errno::Errno::ESRCH);
        if dead {
            match fs::remove_file(ent.path()) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io("removing", &ent.path())(e)),
            }
        }
    }
    Ok(())
}

/// Temporary files of interrupted atomic writes (`.NAME.PID.tmp`) in `dir`, once old.
pub(super) fn remove_stale_temporaries(dir: &Path) -> Result<(), ProvisionError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io("reading", dir)(e)),
    };
    for ent in entries {
        let ent = ent.map_err(io("reading", dir))?;
        let name = ent.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && name.ends_with(".tmp") && stale::old(&ent.path()) {
            remove_tree(&ent.path()).map_err(io("removing", &ent.path()))?;
        }
    }
    Ok(())
}
