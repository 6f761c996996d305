//! Garbage collection: what `index.json` reaches, and deleting the rest.

use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::io;

use super::{io_err, Store, StoreError};
use crate::oci::digest::{Algorithm, Digest};
use crate::oci::layout;
use crate::oci::manifest::Descriptor;

/// What `prune` removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PruneReport {
    /// Blobs deleted, with their sizes.
    pub removed: Vec<(Digest, u64)>,
    /// Stale temporary files deleted (left by killed pulls).
    pub temporaries: usize,
}

impl Store {
    /// The digests reachable from `index.json`. A referenced manifest that cannot be read
    /// is an error, so that prune never deletes what a damaged manifest might still need.
    pub fn reachable(&self) -> Result<HashSet<Digest>, StoreError> {
        let mut seen = HashSet::new();
        let mut todo: Vec<Descriptor> = self.layout.read_index()?.manifests;
        while let Some(desc) = todo.pop() {
            if !seen.insert(desc.digest.clone()) {
                continue;
            }
            if layout::is_manifest_type(&desc.media_type) {
                let (_, parsed) = self.layout.read_manifest(&desc)?;
                todo.extend(layout::children(&parsed));
            }
        }
        Ok(seen)
    }

    /// Deletes every blob no named image reaches, and stale temporary files.
    pub fn prune(&self) -> Result<PruneReport, StoreError> {
        let _lock = self.exclusive_lock()?;
        let keep = self.reachable()?;
        let mut report = PruneReport::default();
        let blobs = self.root().join("blobs");
        for alg in [Algorithm::Sha256, Algorithm::Sha512] {
            let dir = blobs.join(alg.name());
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(StoreError::Io {
                        path: dir,
                        source: e,
                    })
                }
            };
            let mut names = BTreeSet::new();
            for entry in entries {
                let entry = entry.map_err(io_err(&dir))?;
                names.insert(entry.file_name().to_string_lossy().into_owned());
            }
            for name in names {
                let path = dir.join(&name);
                let keep_it = format!("{}:{name}", alg.name())
                    .parse::<Digest>()
                    .map(|d| keep.contains(&d))
                    // A file whose name is no digest is no blob of ours: leave it be.
                    .unwrap_or(true);
                if keep_it {
                    continue;
                }
                let size = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                fs::remove_file(&path).map_err(io_err(&path))?;
                stockade_fault::point("store:prune-blob-removed");
                if let Ok(d) = format!("{}:{name}", alg.name()).parse::<Digest>() {
                    report.removed.push((d, size));
                }
            }
        }
        // Under the exclusive lock no writer is running, so every temporary is stale.
        let tmp = self.state.join("tmp");
        for entry in fs::read_dir(&tmp).map_err(io_err(&tmp))? {
            let entry = entry.map_err(io_err(&tmp))?;
            if fs::remove_file(entry.path()).is_ok() {
                report.temporaries += 1;
            }
        }
        Ok(report)
    }

    /// Temporary files currently in the store (for tests and diagnostics).
    pub fn temporaries(&self) -> Result<usize, StoreError> {
        let tmp = self.state.join("tmp");
        Ok(fs::read_dir(&tmp).map_err(io_err(&tmp))?.count())
    }
}
