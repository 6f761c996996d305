//! The local content store: an OCI image layout that other tools can read, plus a
//! `.stockade/` directory for our locks and temporary files.
//!
//! Safety under concurrency rests on three rules:
//! * a blob is written to `.stockade/tmp/`, verified against its digest and size, synced,
//!   and only then renamed to `blobs/<alg>/<hex>`, so nothing partial ever has a digest name;
//! * `index.json` changes are read-modify-write under `.stockade/index.lock` and land by
//!   an atomic rename;
//! * writers (pull, import, tag) hold `.stockade/gc.lock` shared while they add blobs and
//!   then refer to them; `prune` and `rm` hold it exclusively, so they never delete a blob
//!   that a running pull has written but not yet named.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use crate::oci::digest::Digest;
use crate::oci::layout::{self, Layout, LayoutError};
use crate::oci::manifest::{Descriptor, Index, Parsed};
use crate::oci::media::REF_NAME_ANNOTATION;
use crate::oci::reference::Reference;

mod prune;
#[cfg(target_os = "linux")]
mod sys;
mod writer;

pub use prune::PruneReport;
pub use writer::{copy_blob, BlobWriter};

/// The default store location on a host.
pub const DEFAULT_IMAGE_ROOT: &str = "/var/db/stockade/images";

const STATE_DIR: &str = ".stockade";

/// Errors of the content store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("locking {path}: {source}")]
    Lock { path: PathBuf, source: nix::Error },
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// Writing a blob's content failed (disk full, say): named by its digest, not by the
    /// temporary file it was going to.
    #[error("storing blob {blob}: {source}")]
    Blob { blob: String, source: io::Error },
    #[error("no image named {} in the store {}; `stockade image ls` lists them", stockade_quote::quote(query), root.display())]
    NotFound { query: String, root: PathBuf },
    #[error("image name {} is not usable as an OCI ref.name; expected a reference such as registry/repo:tag", stockade_quote::quote(name))]
    BadName { name: String },
}

/// A blob whose content is not what its descriptor promised. Nothing was stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error(
        "blob {expected}: content has digest {actual}; the blob is corrupt and was not stored"
    )]
    Digest { expected: Digest, actual: Digest },
    #[error("blob {digest}: expected {expected} bytes, got {actual}; the blob was not stored")]
    Size {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error(
        "blob {digest}: more data than the expected {expected} bytes; the blob was not stored"
    )]
    Overrun { digest: Digest, expected: u64 },
}

fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> StoreError {
    let path = path.into();
    move |source| StoreError::Io { path, source }
}

/// The content store.
#[derive(Debug)]
pub struct Store {
    layout: Layout,
    state: PathBuf,
}

/// A held lock; released on drop.
#[derive(Debug)]
pub struct LockGuard {
    _lock: Flock<File>,
}

/// An image the store names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredImage {
    /// The `org.opencontainers.image.ref.name` annotation.
    pub name: String,
    /// The manifest (or index) descriptor.
    pub descriptor: Descriptor,
}

impl Store {
    /// Opens the store at `root`, creating an empty layout there if needed.
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        let state = root.join(STATE_DIR);
        let tmp = state.join("tmp");
        fs::create_dir_all(&tmp).map_err(io_err(&tmp))?;
        let store_blobs = root.join("blobs").join("sha256");
        fs::create_dir_all(&store_blobs).map_err(io_err(&store_blobs))?;
        let marker = root.join(layout::OCI_LAYOUT_FILE);
        if !marker.exists() {
            layout::write_atomic(&marker, layout::LAYOUT_VERSION_JSON.as_bytes())?;
        }
        let store = Store {
            layout: Layout::open(root)?,
            state,
        };
        if !root.join(layout::INDEX_FILE).exists() {
            let _lock = store.lock("index.lock", FlockArg::LockExclusive)?;
            if !root.join(layout::INDEX_FILE).exists() {
                layout::write_json(&root.join(layout::INDEX_FILE), &Index::empty())?;
            }
        }
        Ok(store)
    }

    /// The store's directory.
    pub fn root(&self) -> &Path {
        self.layout.root()
    }

    /// The store as a plain OCI layout, for reading.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    fn lock(&self, name: &str, arg: FlockArg) -> Result<LockGuard, StoreError> {
        let path = self.state.join(name);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err(&path))?;
        let lock =
            Flock::lock(file, arg).map_err(|(_, source)| StoreError::Lock { path, source })?;
        Ok(LockGuard { _lock: lock })
    }

    /// Held by anything that adds blobs and then names them (pull, import, tag).
    pub fn writer_lock(&self) -> Result<LockGuard, StoreError> {
        self.lock("gc.lock", FlockArg::LockShared)
    }

    /// Held by anything that deletes blobs (prune, rm); waits for writers to finish.
    pub fn exclusive_lock(&self) -> Result<LockGuard, StoreError> {
        self.lock("gc.lock", FlockArg::LockExclusive)
    }

    /// The size of a stored blob, if present.
    pub fn blob_size(&self, digest: &Digest) -> Option<u64> {
        self.layout.blob_size(digest)
    }

    /// Reads a small blob (manifest, index, config).
    pub fn read_small_blob(&self, digest: &Digest) -> Result<Vec<u8>, StoreError> {
        Ok(self.layout.read_small_blob(digest)?)
    }

    /// Every named image, in `index.json` order.
    pub fn images(&self) -> Result<Vec<StoredImage>, StoreError> {
        Ok(self
            .layout
            .read_index()?
            .manifests
            .into_iter()
            .filter_map(|d| {
                d.ref_name().map(|n| StoredImage {
                    name: n.to_string(),
                    descriptor: d.clone(),
                })
            })
            .collect())
    }

    /// Finds an image by its exact ref name, by a reference that normalises to one
    /// (`alpine` → `docker.io/library/alpine:latest`), or by manifest digest.
    pub fn resolve(&self, query: &str) -> Result<StoredImage, StoreError> {
        let images = self.images()?;
        let canonical = query.parse::<Reference>().ok().map(|r| r.to_string());
        let by_digest = query.parse::<Digest>().ok();
        images
            .iter()
            .find(|i| i.name == query)
            .or_else(|| canonical.and_then(|c| images.iter().find(|i| i.name == c)))
            .or_else(|| by_digest.and_then(|d| images.iter().find(|i| i.descriptor.digest == d)))
            .cloned()
            .ok_or_else(|| StoreError::NotFound {
                query: query.to_string(),
                root: self.root().to_path_buf(),
            })
    }

    fn update_index<T>(
        &self,
        f: impl FnOnce(&mut Index) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let _lock = self.lock("index.lock", FlockArg::LockExclusive)?;
        let mut index = self.layout.read_index()?;
        let out = f(&mut index)?;
        stockade_fault::point("store:before-index-write");
        layout::write_json(&self.root().join(layout::INDEX_FILE), &index)?;
        Ok(out)
    }

    /// Names `descriptor` (whose blobs must already be stored) `name`, replacing whatever
    /// had that name.
    pub fn set_ref(&self, name: &str, descriptor: &Descriptor) -> Result<(), StoreError> {
        if !valid_ref_name(name) {
            return Err(StoreError::BadName { name: name.into() });
        }
        let mut desc = descriptor.clone();
        desc.annotations
            .get_or_insert_with(Default::default)
            .insert(REF_NAME_ANNOTATION.to_string(), name.to_string());
        self.update_index(|index| {
            index.manifests.retain(|d| d.ref_name() != Some(name));
            index.manifests.push(desc);
            Ok(())
        })
    }

    /// Removes the name of an image; its blobs stay until [`Store::prune`].
    pub fn remove_ref(&self, query: &str) -> Result<StoredImage, StoreError> {
        let image = self.resolve(query)?;
        self.update_index(|index| {
            index
                .manifests
                .retain(|d| d.ref_name() != Some(image.name.as_str()));
            Ok(())
        })?;
        Ok(image)
    }

    /// Reads the manifest a stored image names (following an index to nothing: stored
    /// images are single manifests or indexes whose children are all present).
    pub fn read_manifest(&self, desc: &Descriptor) -> Result<(Vec<u8>, Parsed), StoreError> {
        Ok(self.layout.read_manifest(desc)?)
    }
}

/// The OCI image-layout grammar for `org.opencontainers.image.ref.name`:
/// components of alphanumerics joined by `-._:@+` or `--`, separated by `/`.
pub fn valid_ref_name(name: &str) -> bool {
    !name.is_empty()
        && name.split('/').all(|component| {
            let b = component.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || b"-._:@+".contains(c))
                && !b.windows(2).any(|w| {
                    let sep = |c: u8| b"-._:@+".contains(&c);
                    sep(w[0]) && sep(w[1]) && w != b"--"
                })
        })
}

#[cfg(test)]
mod tests;
