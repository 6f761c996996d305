//! Writing blobs: a temporary file under `.stockade/tmp/`, hashed as it grows, bounded by
//! its descriptor's size, verified, synced, and only then renamed to its digest name.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{io_err, Store, StoreError, VerifyError};
use crate::oci::digest::{Algorithm, Digest, HashingWriter};
use crate::oci::manifest::Descriptor;

impl Store {
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
            kicked: 0,
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
}

/// A blob being written: a temporary file, hashed as it grows. Dropping it without
/// [`commit`](BlobWriter::commit) deletes the temporary file.
pub struct BlobWriter<'s> {
    store: &'s Store,
    path: PathBuf,
    out: Option<HashingWriter<BufWriter<File>>>,
    algorithm: Algorithm,
    limit: Option<(Digest, u64)>,
    /// Where the last writeback started (see [`WRITEBACK_STEP`]).
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    kicked: u64,
}

/// Every this many bytes written, the writeback of what reached the file so far is
/// started (Linux), so that the disk works while the download goes on: with the default
/// dirty-page thresholds (a share of RAM) the kernel would otherwise start writing only
/// at the `fsync` of [`BlobWriter::commit`], and a pull would wait for all of it there.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
const WRITEBACK_STEP: u64 = 8 << 20;

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
        self.kicked = 0;
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
        let n = match &mut self.out {
            Some(out) => out.write(buf)?,
            None => return Err(io::Error::other("blob writer already failed")),
        };
        self.kick();
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.out {
            Some(out) => out.flush(),
            None => Ok(()),
        }
    }
}

impl BlobWriter<'_> {
    /// Starts the writeback of what reached the file since the last time, every
    /// [`WRITEBACK_STEP`] bytes. Only a hint: a failure changes nothing (the `fsync` at
    /// commit is what makes the blob durable, and reports errors).
    #[cfg(target_os = "linux")]
    fn kick(&mut self) {
        use std::os::fd::AsFd;
        let Some(out) = &mut self.out else { return };
        let buffered = out.get_mut().buffer().len() as u64;
        let in_file = out.written().saturating_sub(buffered);
        if in_file >= self.kicked + WRITEBACK_STEP {
            let _ = super::sys::start_writeback(out.get_mut().get_ref().as_fd(), self.kicked);
            self.kicked = in_file;
        }
    }

    /// Elsewhere the kernel's own writeback decides.
    #[cfg(not(target_os = "linux"))]
    fn kick(&mut self) {}
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
