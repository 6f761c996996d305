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

use std::collections::{BTreeSet, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::fcntl::{Flock, FlockArg};

use crate::oci::digest::{Algorithm, Digest, HashingWriter};
use crate::oci::layout::{self, Layout, LayoutError};
use crate::oci::manifest::{Descriptor, Index, Parsed};
use crate::oci::media::REF_NAME_ANNOTATION;
use crate::oci::reference::Reference;

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

/// What `prune` removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PruneReport {
    /// Blobs deleted, with their sizes.
    pub removed: Vec<(Digest, u64)>,
    /// Stale temporary files deleted (left by killed pulls).
    pub temporaries: usize,
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

    /// Starts writing a blob hashed with `algorithm`; see [`BlobWriter::commit`].
    pub fn blob_writer(&self, algorithm: Algorithm) -> Result<BlobWriter<'_>, StoreError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "{}-{}-{nanos:08x}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let path = self.state.join("tmp").join(name);
        let file = OpenOptions::new()
            .create_new(true)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io_err(&path))?;
        Ok(BlobWriter {
            store: self,
            path,
            out: Some(HashingWriter::new(
                BufWriter::with_capacity(1 << 18, file),
                algorithm,
            )),
            algorithm,
            limit: None,
        })
    }

    /// Stores bytes that are already in memory, verified against `expected` if given.
    pub fn put_bytes(
        &self,
        bytes: &[u8],
        expected: Option<(&Digest, u64)>,
    ) -> Result<Digest, StoreError> {
        let algorithm = expected.map_or(Algorithm::Sha256, |(d, _)| d.algorithm());
        let mut w = self.blob_writer(algorithm)?;
        if let Some((d, size)) = expected {
            w.limit(d, size);
        }
        if let Err(e) = w.write_all(bytes) {
            return Err(w.error(e));
        }
        let (digest, _) = w.commit(expected)?;
        Ok(digest)
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

/// A blob being written: a temporary file, hashed as it grows. Dropping it without
/// [`commit`](BlobWriter::commit) deletes the temporary file.
pub struct BlobWriter<'s> {
    store: &'s Store,
    path: PathBuf,
    out: Option<HashingWriter<BufWriter<File>>>,
    algorithm: Algorithm,
    limit: Option<(Digest, u64)>,
}

impl BlobWriter<'_> {
    /// Refuses writes beyond `size` bytes, so a server cannot fill the disk past what the
    /// descriptor promised.
    pub fn limit(&mut self, digest: &Digest, size: u64) {
        self.limit = Some((digest.clone(), size));
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.out.as_ref().map_or(0, |o| o.written())
    }

    /// The temporary file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// An error of writing this blob, named by the digest it is promised to have when that
    /// is known (the temporary file means nothing to the user).
    pub fn error(&self, source: io::Error) -> StoreError {
        let blob = match &self.limit {
            Some((d, _)) => d.to_string(),
            None => format!("(new, in {})", self.path.display()),
        };
        StoreError::Blob { blob, source }
    }

    /// Discards what was written (a download that must start over).
    pub fn reset(&mut self) -> io::Result<()> {
        let Some(out) = self.out.take() else {
            return Ok(());
        };
        let (buf, _, _) = out.finish();
        let file = buf.into_inner().map_err(|e| e.into_error())?;
        file.set_len(0)?;
        let mut file = file;
        io::Seek::seek(&mut file, io::SeekFrom::Start(0))?;
        self.out = Some(HashingWriter::new(
            BufWriter::with_capacity(1 << 18, file),
            self.algorithm,
        ));
        Ok(())
    }

    /// Verifies the content against `expected` (digest and size) if given, then moves it
    /// to its digest name. Returns the digest and size. On any error the temporary file is
    /// removed and nothing appears under a digest name.
    pub fn commit(mut self, expected: Option<(&Digest, u64)>) -> Result<(Digest, u64), StoreError> {
        let path = self.path.clone();
        let Some(out) = self.out.take() else {
            return Err(StoreError::Io {
                path,
                source: io::Error::other("blob writer already failed"),
            });
        };
        let (buf, digest, size) = out.finish();
        let named = |source: io::Error| StoreError::Blob {
            blob: digest.to_string(),
            source,
        };
        let file = buf.into_inner().map_err(|e| named(e.into_error()))?;
        if let Some((want, want_size)) = expected {
            if size != want_size {
                return Err(VerifyError::Size {
                    digest: want.clone(),
                    expected: want_size,
                    actual: size,
                }
                .into());
            }
            if &digest != want {
                return Err(VerifyError::Digest {
                    expected: want.clone(),
                    actual: digest,
                }
                .into());
            }
        }
        let target = self.store.layout.blob_path(&digest);
        if self.store.layout.blob_size(&digest) == Some(size) {
            // Someone else stored the same content meanwhile; ours is redundant.
            return Ok((digest, size));
        }
        file.sync_all().map_err(named)?;
        drop(file);
        if let Some(dir) = target.parent() {
            fs::create_dir_all(dir).map_err(io_err(dir))?;
        }
        stockade_fault::point("store:blob-synced");
        fs::rename(&path, &target).map_err(named)?;
        stockade_fault::point("store:blob-committed");
        Ok((digest, size))
    }
}

impl Write for BlobWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some((digest, size)) = &self.limit {
            if self.written() + buf.len() as u64 > *size {
                return Err(io::Error::other(VerifyError::Overrun {
                    digest: digest.clone(),
                    expected: *size,
                }));
            }
        }
        match &mut self.out {
            Some(out) => out.write(buf),
            None => Err(io::Error::other("blob writer already failed")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.out {
            Some(out) => out.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for BlobWriter<'_> {
    fn drop(&mut self) {
        // After a successful commit the file has been renamed away and this fails harmlessly.
        let _ = fs::remove_file(&self.path);
    }
}

/// Copies `reader` into the store as the blob `expected` describes, verifying it.
pub fn copy_blob(
    store: &Store,
    reader: &mut dyn Read,
    expected: &Descriptor,
) -> Result<(), StoreError> {
    let mut w = store.blob_writer(expected.digest.algorithm())?;
    w.limit(&expected.digest, expected.size);
    let copied = io::copy(reader, &mut w);
    if let Err(e) = copied {
        // A limit overrun surfaces as an io::Error; report it as the verification failure it is.
        if let Some(v) = e.get_ref().and_then(|i| i.downcast_ref::<VerifyError>()) {
            return Err(v.clone().into());
        }
        return Err(w.error(e));
    }
    w.commit(Some((&expected.digest, expected.size)))?;
    Ok(())
}

#[cfg(test)]
mod tests;
