//! The pre-scan of a layer chain: every layer is decompressed once, its diffID checked,
//! and the paths it writes or removes indexed, so that a lower layer never writes a file
//! an upper layer removes or replaces. Layers that fit the memory budget are kept
//! decompressed, so the scan is the only decompression they get.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::oci::digest::{Digest, Hasher};

use super::error::UnpackError;
use super::path::{normalize, whiteout, Whiteout};
use super::{open_layer, Budget, LayerSource};

/// What one layer does to the paths below it.
#[derive(Debug, Default)]
pub(crate) struct LayerIndex {
    /// Removed by a whiteout or replaced by a non-directory: the path and its subtree.
    pub hides: HashSet<PathBuf>,
    /// Listed as a directory: replaces a lower non-directory at the same path.
    pub dirs: HashSet<PathBuf>,
    /// Opaque directories: their lower contents are hidden, not the directory itself.
    pub opaque: HashSet<PathBuf>,
    /// Targets of hard links, which must exist when the link is made.
    pub link_targets: HashSet<PathBuf>,
}

/// A scanned layer.
pub(crate) struct Scanned {
    pub index: LayerIndex,
    /// The uncompressed tar, when it fit the memory budget.
    pub data: Option<Vec<u8>>,
    /// How many entries the layer holds: charged to the image's entry bound in layer
    /// order by the caller, so the layer named when the bound is exceeded does not depend
    /// on which scan thread ran first.
    pub entries: u64,
}

/// The upper layers seen from one lower layer.
pub(crate) struct Shadow<'a> {
    pub uppers: Vec<&'a LayerIndex>,
    /// Hard-link targets of this layer and all above it: never skipped.
    pub protected: Vec<&'a LayerIndex>,
}

impl Shadow<'_> {
    /// No upper layers: nothing is skipped.
    pub(crate) fn none() -> Shadow<'static> {
        Shadow {
            uppers: Vec::new(),
            protected: Vec::new(),
        }
    }

    /// Whether an entry at `rel` (a directory when `is_dir`) is invisible in the final
    /// tree, so writing it would be wasted work.
    pub(crate) fn hides(&self, rel: &Path, is_dir: bool) -> bool {
        if self.uppers.is_empty() {
            return false;
        }
        if self.protected.iter().any(|l| l.link_targets.contains(rel)) {
            return false;
        }
        for up in &self.uppers {
            if up.hides.contains(rel) || (!is_dir && up.dirs.contains(rel)) {
                return true;
            }
            let mut a = rel.parent();
            while let Some(anc) = a {
                if anc.as_os_str().is_empty() {
                    // The target itself: only opaque can hide below it.
                    if up.opaque.contains(anc) {
                        return true;
                    }
                    break;
                }
                if up.hides.contains(anc) || up.opaque.contains(anc) {
                    return true;
                }
                a = anc.parent();
            }
        }
        false
    }
}

/// A reader that hashes everything it passes on and keeps a copy while the shared budget
/// allows.
struct Tee<'b, R> {
    inner: R,
    hasher: Hasher,
    keep: Option<Vec<u8>>,
    budget: &'b AtomicUsize,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        if let Some(k) = &mut self.keep {
            let took = self
                .budget
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| b.checked_sub(n));
            if took.is_ok() {
                k.extend_from_slice(&buf[..n]);
            } else {
                // Over budget: give back what this copy took and stop keeping it.
                self.budget.fetch_add(k.len(), Ordering::Relaxed);
                self.keep = None;
            }
        }
        Ok(n)
    }
}

/// Decompresses, verifies and indexes one layer, counting its bytes and entries against
/// the image's `bounds` (the scan is the one pass that counts them for a chain).
pub(crate) fn scan(
    layer: &LayerSource,
    memory: &AtomicUsize,
    bounds: &Arc<Budget>,
) -> Result<Scanned, UnpackError> {
    let read_err = |source| UnpackError::Read {
        layer: layer.digest.clone(),
        source,
    };
    let decoder = open_layer(layer, Some(bounds))?;
    let mut tee = Tee {
        inner: decoder,
        hasher: Hasher::new(layer.diff_id.algorithm()),
        keep: Some(Vec::with_capacity(1 << 20)),
        budget: memory,
    };
    let mut index = LayerIndex::default();
    let mut entries = 0u64;
    {
        let mut ar = tar::Archive::new(&mut tee);
        for entry in ar.entries().map_err(read_err)? {
            let mut entry = entry.map_err(read_err)?;
            entries += 1;
            let bounded = bounds
                .count_layer_entries(&layer.digest, entries)
                .and_then(|()| bounds.check_entry(&entry))
                .and_then(|()| bounds.check_pax(&mut entry));
            if let Err(e) = bounded {
                let shown = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
                return Err(e.into_unpack(&layer.digest, &shown));
            }
            // Invalid names are reported when the layer is applied.
            let Ok(raw) = entry.path() else { continue };
            let Ok(rel) = normalize(&raw) else { continue };
            let name = match rel.file_name() {
                Some(n) => n,
                None => continue,
            };
            let parent = rel.parent().unwrap_or(Path::new(""));
            match whiteout(name) {
                Ok(Whiteout::Opaque) => {
                    index.opaque.insert(parent.to_path_buf());
                }
                Ok(Whiteout::Remove(x)) => {
                    index.hides.insert(parent.join(x));
                }
                Err(_) => {}
                Ok(Whiteout::None) => {
                    let et = entry.header().entry_type();
                    if et.is_dir() {
                        index.dirs.insert(rel);
                    } else {
                        if et.is_hard_link() {
                            if let Ok(Some(l)) = entry.link_name() {
                                if let Ok(t) = normalize(&l) {
                                    index.link_targets.insert(t);
                                }
                            }
                        }
                        index.hides.insert(rel);
                    }
                }
            }
        }
    }
    // Whatever follows the end of the archive is part of the diffID too.
    io::copy(&mut tee, &mut io::sink()).map_err(read_err)?;
    let actual = tee.hasher.finish();
    check_diff_id(layer, actual)?;
    Ok(Scanned {
        index,
        data: tee.keep,
        entries,
    })
}

/// The diffID check shared by the scan and the streaming path.
pub(crate) fn check_diff_id(layer: &LayerSource, actual: Digest) -> Result<(), UnpackError> {
    if actual != layer.diff_id {
        return Err(UnpackError::DiffId {
            layer: layer.digest.clone(),
            expected: layer.diff_id.clone(),
            actual,
        });
    }
    Ok(())
}

/// Opens a blob file for reading.
pub(crate) fn open_blob(layer: &LayerSource) -> Result<File, UnpackError> {
    File::open(&layer.path).map_err(|source| UnpackError::Open {
        path: layer.path.clone(),
        source,
    })
}
