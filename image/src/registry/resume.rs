//! Blob downloads into the store: retried, and resumed with an HTTP range request after a
//! dropped connection (or restarted when the server ignores ranges), verified by the
//! store's writer before the blob gets its name.

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::client::{error_detail, header_str, Client};
use super::RegistryError;
use crate::oci::manifest::Descriptor;
use crate::store::{BlobWriter, Store, StoreError, VerifyError};

/// How many times a blob download is attempted before giving up.
pub const BLOB_ATTEMPTS: u32 = 5;
const READ_BUF: usize = 1 << 20;

/// One attempt's failure, and whether trying again may help.
enum Attempt {
    Retry(String),
    Fatal(RegistryError),
}

impl Client {
    /// Downloads the blob `desc` describes into the store, verifying digest and size before
    /// it gets its name. A dropped connection is resumed with an HTTP range request (or
    /// restarted if the server ignores ranges), up to [`BLOB_ATTEMPTS`] attempts. `progress`
    /// is told the total bytes received so far; `abort` stops the download early.
    pub fn fetch_blob(
        &self,
        store: &Store,
        desc: &Descriptor,
        progress: &dyn Fn(u64),
        abort: &AtomicBool,
    ) -> Result<(), RegistryError> {
        let mut writer = store.blob_writer(desc.digest.algorithm())?;
        writer.limit(&desc.digest, desc.size);
        let url = format!("{}/blobs/{}", self.base, desc.digest);
        let mut attempt = 1;
        loop {
            match self.blob_attempt(&url, desc, &mut writer, progress, abort) {
                Ok(()) => break,
                Err(Attempt::Fatal(e)) => return Err(e),
                Err(Attempt::Retry(why)) if attempt >= BLOB_ATTEMPTS => {
                    return Err(RegistryError::BlobFailed {
                        digest: desc.digest.clone(),
                        attempts: attempt,
                        last: why,
                    })
                }
                Err(Attempt::Retry(_)) => {
                    if abort.load(Ordering::Relaxed) {
                        return Err(RegistryError::Aborted);
                    }
                    std::thread::sleep(Duration::from_millis(200 * u64::from(attempt)));
                    attempt += 1;
                }
            }
        }
        if let Err(source) = writer.flush() {
            return Err(writer.error(source).into());
        }
        writer.commit(Some((&desc.digest, desc.size)))?;
        Ok(())
    }

    fn blob_attempt(
        &self,
        url: &str,
        desc: &Descriptor,
        writer: &mut BlobWriter<'_>,
        progress: &dyn Fn(u64),
        abort: &AtomicBool,
    ) -> Result<(), Attempt> {
        let offset = writer.written();
        if offset == desc.size && desc.size > 0 {
            return Ok(());
        }
        let mut headers = Vec::new();
        if offset > 0 {
            headers.push(("Range", format!("bytes={offset}-")));
        }
        let resp = self.get(url, &headers).map_err(|e| match e {
            RegistryError::Http { .. } => Attempt::Retry(e.to_string()),
            other => Attempt::Fatal(other),
        })?;
        let status = resp.status().as_u16();
        let resumed = match status {
            200 => false,
            206 if offset > 0 => {
                let range = header_str(resp.headers(), "content-range").unwrap_or_default();
                if !range.starts_with(&format!("bytes {offset}-")) {
                    false_start(writer, progress)?;
                    return Err(Attempt::Retry(format!(
                        "server answered range {offset}- with {range:?}"
                    )));
                }
                true
            }
            401 | 403 => return Err(Attempt::Fatal(self.unauthorized(url))),
            404 => {
                return Err(Attempt::Fatal(RegistryError::BlobNotFound {
                    digest: desc.digest.clone(),
                }))
            }
            416 => {
                // We already hold at least as many bytes as the server has: the blob is
                // shorter than its descriptor says; verification will say so.
                return Ok(());
            }
            s if s == 429 || s >= 500 => {
                return Err(Attempt::Retry(format!("GET {url}: HTTP {s}")))
            }
            s => {
                let mut resp = resp;
                return Err(Attempt::Fatal(RegistryError::Status {
                    method: "GET".into(),
                    url: url.to_string(),
                    status: s,
                    detail: error_detail(&mut resp),
                }));
            }
        };
        if !resumed && offset > 0 {
            // The server sent the whole blob again: start over.
            false_start(writer, progress)?;
        }
        let mut reader = resp.into_body().into_reader();
        let mut buf = vec![0u8; READ_BUF];
        loop {
            if abort.load(Ordering::Relaxed) {
                return Err(Attempt::Fatal(RegistryError::Aborted));
            }
            let n = match reader.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Attempt::Retry(format!("reading {url}: {e}"))),
            };
            if let Err(e) = writer.write_all(&buf[..n]) {
                return Err(Attempt::Fatal(
                    match e.get_ref().and_then(|i| i.downcast_ref::<VerifyError>()) {
                        Some(v) => StoreError::Verify(v.clone()).into(),
                        None => StoreError::Io {
                            path: writer.path().to_path_buf(),
                            source: e,
                        }
                        .into(),
                    },
                ));
            }
            // Killed here, a pull leaves a partly written temporary file.
            stockade_fault::point("pull:blob-partial");
            progress(writer.written());
        }
    }
}

fn false_start(writer: &mut BlobWriter<'_>, progress: &dyn Fn(u64)) -> Result<(), Attempt> {
    writer.reset().map_err(|source| {
        Attempt::Fatal(
            StoreError::Io {
                path: writer.path().to_path_buf(),
                source,
            }
            .into(),
        )
    })?;
    progress(0);
    Ok(())
}

#[cfg(test)]
#[path = "resume_tests.rs"]
mod tests;
