//! The attachment records: `<storage root>/networks/attachments/<id>.json`, one per
//! container with a network, written before anything of the network exists and removed
//! last (see [`crate::attach`]). [`crate::hosts`] reads them too, to list a network's
//! containers; both sit above this module.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::NETWORKS_DIR;
use crate::{io, NetError};

/// Where attachment records are, below the networks directory.
pub const ATTACHMENTS_DIR: &str = "attachments";

/// What [`crate::attach::detach`] needs, written before the namespace exists.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Record {
    pub(crate) id: String,
    pub(crate) netns: PathBuf,
    /// The network's name and list; absent for `--network none`.
    pub(crate) network: Option<String>,
    pub(crate) list: Option<Value>,
    pub(crate) runtime_config: Map<String, Value>,
    /// The ADD result, once there is one (DEL's `prevResult`).
    pub(crate) result: Option<Value>,
    /// The container's `/etc/hosts` in its bundle and the names it lists for the
    /// container, once written: rewritten when a container joins or leaves the network.
    #[serde(default)]
    pub(crate) hosts: Option<PathBuf>,
    #[serde(default)]
    pub(crate) names: Vec<String>,
}

pub(crate) fn records_dir(storage_root: &Path) -> PathBuf {
    storage_root.join(NETWORKS_DIR).join(ATTACHMENTS_DIR)
}

pub(crate) fn record_path(storage_root: &Path, id: &str) -> PathBuf {
    records_dir(storage_root).join(format!("{id}.json"))
}

pub(crate) fn write_record(storage_root: &Path, r: &Record) -> Result<(), NetError> {
    let path = record_path(storage_root, &r.id);
    let bytes = serde_json::to_vec(r).unwrap_or_default();
    crate::files::write_atomic(&path, &bytes).map_err(io("writing", &path))
}

pub(crate) fn read_record(storage_root: &Path, id: &str) -> Result<Option<Record>, NetError> {
    let path = record_path(storage_root, id);
    match fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| NetError::BadRecord {
                path,
                why: e.to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io("reading", &path)(e)),
    }
}

/// The records of the containers attached to network `name`, by id.
pub(crate) fn attached_to(storage_root: &Path, name: &str) -> Result<Vec<Record>, NetError> {
    let dir = records_dir(storage_root);
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io("reading", &dir)(e)),
    };
    let mut out = Vec::new();
    for ent in entries {
        let ent = ent.map_err(io("reading", &dir))?;
        let file = ent.file_name().to_string_lossy().into_owned();
        let Some(id) = file.strip_suffix(".json") else {
            continue;
        };
        // Temporaries of atomic writes, and names no container id can have.
        let plain = id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'+'));
        if file.starts_with('.') || id.is_empty() || !plain {
            continue;
        }
        if let Ok(Some(r)) = read_record(storage_root, id) {
            if r.network.as_deref() == Some(name) && r.id == id {
                out.push(r);
            }
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// The ids of the containers attached to network `name`.
pub fn users(storage_root: &Path, name: &str) -> Result<Vec<String>, NetError> {
    Ok(attached_to(storage_root, name)?
        .into_iter()
        .map(|r| r.id)
        .collect())
}
