//! The state directory `<root>/<id>/`: `state.json` (replaced atomically), the lock held by
//! every mutating command, the start fifo, and `derived.json`, what later commands need of
//! the configuration, derived at create.

mod derived;
mod lock;
mod record;

use std::io::Write;
use std::path::{Path, PathBuf};

pub use derived::{Derived, LaterHooks, DERIVED_FILE, DERIVED_VERSION};
pub use lock::{StateLock, LOCK_WAIT};
pub use record::{Resources, Status, StoredState};

use crate::id::ContainerId;

/// File names inside a container's state directory.
pub const STATE_FILE: &str = "state.json";
pub const LOCK_FILE: &str = "lock";
pub const START_FIFO: &str = "exec.fifo";

/// Why state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("container {0} does not exist")]
    NotFound(ContainerId),
    #[error("container {0} already exists")]
    Exists(ContainerId),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("container {id} is busy: another stockade command{} has held its lock for {seconds}s; \
             try again when it has finished, or kill that process", holder.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Busy {
        id: ContainerId,
        holder: Option<u32>,
        seconds: u64,
    },
    #[error("{path}: corrupt state: {source}")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(
        "container {id} has no {DERIVED_FILE}: its create did not get that far, or an \
             older stockade made it; delete the container and create it again"
    )]
    NoDerived { id: ContainerId },
    #[error(
        "{path}: format version {found}, but this stockade reads version {DERIVED_VERSION}; \
             delete the container and create it again"
    )]
    DerivedVersion { path: PathBuf, found: u64 },
}

pub(crate) fn io<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> StateError + 'a {
    move |source| StateError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// The state root (`--root`), holding one directory per container.
#[derive(Debug, Clone)]
pub struct StateStore {
    root: PathBuf,
}

impl StateStore {
    /// A store at `root`; the directory is created (mode 0700) when missing.
    pub fn open(root: &Path) -> Result<StateStore, StateError> {
        let root = std::path::absolute(root).map_err(io("resolving", root))?;
        if !root.is_dir() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&root)
                .map_err(io("creating state root", &root))?;
        }
        Ok(StateStore { root })
    }

    /// The state root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of container `id`.
    pub fn dir(&self, id: &ContainerId) -> PathBuf {
        self.root.join(id.as_str())
    }

    /// Makes the directory of a new container and locks it. Fails with
    /// [`StateError::Exists`] when the id is taken, leaving the existing one untouched.
    pub fn create(&self, id: &ContainerId) -> Result<StateLock, StateError> {
        let dir = self.dir(id);
        match std::fs::DirBuilder::new().mode(0o711).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(StateError::Exists(id.clone()))
            }
            Err(e) => return Err(io("creating state directory", &dir)(e)),
        }
        StateLock::acquire(&dir, id).inspect_err(|_| {
            let _ = std::fs::remove_dir_all(&dir);
        })
    }

    /// Locks an existing container's directory (waiting, up to [`LOCK_WAIT`], for other
    /// commands on the same id). A directory without its lock file (a create killed right
    /// after making it) is locked all the same, so that delete can remove it.
    pub fn lock(&self, id: &ContainerId) -> Result<StateLock, StateError> {
        let dir = self.dir(id);
        if !dir.is_dir() {
            return Err(StateError::NotFound(id.clone()));
        }
        StateLock::acquire(&dir, id)
    }

    /// Reads container `id`'s state without locking (for `state`, `list`, `ps`).
    pub fn read(&self, id: &ContainerId) -> Result<StoredState, StateError> {
        let file = self.dir(id).join(STATE_FILE);
        let bytes = match std::fs::read(&file) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StateError::NotFound(id.clone()))
            }
            Err(e) => return Err(io("reading", &file)(e)),
        };
        serde_json::from_slice(&bytes).map_err(|source| StateError::Corrupt { path: file, source })
    }

    /// Replaces `state.json` atomically.
    pub fn write(&self, state: &StoredState) -> Result<(), StateError> {
        self.replace(&state.id, STATE_FILE, state)
    }

    /// Writes container `id`'s derived record atomically, once, at create: before the
    /// init exists, so every later command finds it.
    pub fn write_derived(&self, id: &ContainerId, d: &Derived) -> Result<(), StateError> {
        self.replace(id, DERIVED_FILE, d)
    }

    /// Reads container `id`'s derived record.
    pub fn read_derived(&self, id: &ContainerId) -> Result<Derived, StateError> {
        let file = self.dir(id).join(DERIVED_FILE);
        let bytes = match std::fs::read(&file) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StateError::NoDerived { id: id.clone() })
            }
            Err(e) => return Err(io("reading", &file)(e)),
        };
        // The version first, so a record of another format says so rather than failing on
        // whichever field changed.
        #[derive(serde::Deserialize)]
        struct Version {
            version: u64,
        }
        let corrupt = |source| StateError::Corrupt {
            path: file.clone(),
            source,
        };
        let Version { version } = serde_json::from_slice(&bytes).map_err(corrupt)?;
        if version != u64::from(DERIVED_VERSION) {
            return Err(StateError::DerivedVersion {
                path: file,
                found: version,
            });
        }
        serde_json::from_slice(&bytes).map_err(corrupt)
    }

    /// Replaces file `name` of container `id`'s directory atomically: write a temporary
    /// file, rename it over. There is no fsync: readers never see a partial file either
    /// way, and runtime state does not outlive a reboot (it lives under /var/run), so
    /// durability would only cost time.
    fn replace(
        &self,
        id: &ContainerId,
        name: &str,
        value: &impl serde::Serialize,
    ) -> Result<(), StateError> {
        let dir = self.dir(id);
        let tmp = dir.join(format!(".{name}.tmp"));
        let file = dir.join(name);
        let bytes = serde_json::to_vec_pretty(value).map_err(|source| StateError::Corrupt {
            path: file.clone(),
            source,
        })?;
        // Errors name the file the user knows, not the temporary one.
        let mut f = std::fs::File::create(&tmp).map_err(io("writing", &file))?;
        f.write_all(&bytes).map_err(io("writing", &file))?;
        std::fs::rename(&tmp, &file).map_err(io("replacing", &file))
    }

    /// The ids of every container under the root, sorted.
    pub fn ids(&self) -> Result<Vec<ContainerId>, StateError> {
        let mut ids: Vec<ContainerId> = std::fs::read_dir(&self.root)
            .map_err(io("listing", &self.root))?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| ContainerId::parse(n).ok())
            })
            .filter(|id| self.dir(id).join(STATE_FILE).exists())
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// Removes container `id`'s directory (its lock is held by the caller): `state.json`
    /// first, so a removal cut short leaves a directory that `list` ignores and the next
    /// delete finishes.
    pub fn remove(&self, id: &ContainerId) -> Result<(), StateError> {
        let dir = self.dir(id);
        let file = dir.join(STATE_FILE);
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("removing", &file)(e)),
        }
        stockade_fault::point("delete:after-state-file");
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("removing", &dir)(e)),
        }
    }
}

use std::os::unix::fs::DirBuilderExt;

#[cfg(test)]
mod tests;
