//! The state directory `<root>/<id>/`: `state.json` (replaced atomically), the lock held by
//! every mutating command, the start fifo, and the copy of `config.json` taken at create.

mod lock;
mod record;

use std::io::Write;
use std::path::{Path, PathBuf};

pub use lock::{StateLock, LOCK_WAIT};
pub use record::{Resources, Status, StoredState};

use crate::id::ContainerId;

/// File names inside a container's state directory.
pub const STATE_FILE: &str = "state.json";
pub const LOCK_FILE: &str = "lock";
pub const START_FIFO: &str = "exec.fifo";
pub const CONFIG_COPY: &str = "config.json";

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

    /// Replaces `state.json` atomically: write a temporary file, rename it over. There is no
    /// fsync: readers never see a partial file either way, and runtime state does not
    /// outlive a reboot (it lives under /var/run), so durability would only cost time.
    pub fn write(&self, state: &StoredState) -> Result<(), StateError> {
        let dir = self.dir(&state.id);
        let tmp = dir.join(format!(".{STATE_FILE}.tmp"));
        let file = dir.join(STATE_FILE);
        let bytes = serde_json::to_vec_pretty(state).map_err(|source| StateError::Corrupt {
            path: file.clone(),
            source,
        })?;
        // Errors name state.json, the file the user knows, not the temporary one.
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
