//! The write side of the distribution API, for `push`: the blob existence check (HEAD),
//! cross-repository mounts, monolithic and chunked blob uploads, and manifest PUTs.
//!
//! A blob's bytes are read from the store and hashed as they go out; the upload is only
//! committed (the final `PUT ?digest=`) when what was read has the descriptor's digest and
//! size, so a damaged store never becomes a blob in the registry under a name it does not
//! deserve. Bodies are held in memory one chunk at a time, which also lets a request that
//! meets a 401 be sent again after the challenge is answered.

use std::io::Read;

use ureq::http::{Method, Response};
use ureq::Body;

use super::client::{error_detail, header_str, Client};
use super::token::query_escape;
use super::RegistryError;
use crate::oci::digest::{Digest, Hasher};
use crate::oci::manifest::Descriptor;
use crate::store::{Store, StoreError};

/// Blobs up to this size go up in one PUT; larger ones in PATCH chunks of this size.
pub const DEFAULT_CHUNK_SIZE: usize = 8 << 20;

/// An upload location longer than this is refused (the registry is not trusted).
const MAX_LOCATION: usize = 8192;

/// How a blob got into the destination repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// The repository had it already.
    Existed,
    /// The registry linked it from the source repository (cross-repository mount).
    Mounted,
    /// Its bytes were uploaded.
    Uploaded,
}

/// What a `POST /blobs/uploads/` led to.
enum Started {
    Mounted,
    Session(String),
}

impl Client {
    /// Whether the repository already has the blob (`HEAD /blobs/<digest>`).
    pub fn blob_exists(&self, digest: &Digest) -> Result<bool, RegistryError> {
        let url = format!("{}/blobs/{digest}", self.base);
        let mut resp = self.send(Method::HEAD, &url, &[], &[])?;
        match resp.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            401 | 403 => Err(self.unauthorized(&url)),
            status => Err(status_error("HEAD", &url, status, &mut resp)),
        }
    }

    /// Puts the blob `desc` describes, from `store`, into the repository: nothing when it is
    /// there already, a mount from `mount_from` (a repository of the same registry) when the
    /// registry agrees, else an upload — in one PUT up to `chunk_size` bytes, in PATCH chunks
    /// of `chunk_size` beyond. `progress` is told the bytes sent so far.
    pub fn put_blob(
        &self,
        store: &Store,
        desc: &Descriptor,
        mount_from: Option<&str>,
        chunk_size: usize,
        progress: &dyn Fn(u64),
    ) -> Result<Sent, RegistryError> {
        if self.blob_exists(&desc.digest)? {
            return Ok(Sent::Existed);
        }
        let location = match self.start_upload(mount_from.map(|from| (&desc.digest, from)))? {
            Started::Mounted => return Ok(Sent::Mounted),
            Started::Session(location) => location,
        };
        let chunk_size = chunk_size.max(1);
        let read_err = |source| -> RegistryError {
            StoreError::Io {
                path: store.layout().blob_path(&desc.digest),
                source,
            }
            .into()
        };
        let mut file = store
            .layout()
            .open_blob(&desc.digest)
            .map_err(StoreError::from)?;
        let mut hasher = Hasher::new(desc.digest.algorithm());
        let mut location = location;
        let mut sent = 0u64;
        // Monolithic: the whole blob in one buffer; chunked: one chunk at a time.
        let monolithic = desc.size <= chunk_size as u64;
        let mut buf = vec![
            0u8;
            if monolithic {
                desc.size as usize
            } else {
                chunk_size
            }
        ];
        loop {
            let n = fill(&mut file, &mut buf).map_err(read_err)?;
            hasher.update(&buf[..n]);
            if monolithic {
                sent = n as u64;
                break;
            }
            if n == 0 {
                break;
            }
            if sent + n as u64 > desc.size {
                self.cancel(&location);
                return Err(RegistryError::StoredBlobSize {
                    digest: desc.digest.clone(),
                    expected: desc.size,
                    actual: sent + n as u64,
                });
            }
            location = self.patch_chunk(&location, sent, &buf[..n])?;
            sent += n as u64;
            progress(sent);
        }
        // Anything past the descriptor's size is a damaged store.
        if sent == desc.size && fill(&mut file, &mut [0u8; 1]).map_err(read_err)? > 0 {
            sent += 1;
        }
        if sent != desc.size {
            self.cancel(&location);
            return Err(RegistryError::StoredBlobSize {
                digest: desc.digest.clone(),
                expected: desc.size,
                actual: sent,
            });
        }
        let actual = hasher.finish();
        if actual != desc.digest {
            self.cancel(&location);
            return Err(RegistryError::StoredBlobDigest {
                digest: desc.digest.clone(),
                actual,
            });
        }
        let body: &[u8] = if monolithic { &buf } else { &[] };
        self.finish_upload(&location, &desc.digest, body)?;
        progress(sent);
        Ok(Sent::Uploaded)
    }

    /// `POST /blobs/uploads/`, with `?mount=&from=` when a mount is worth trying.
    fn start_upload(&self, mount: Option<(&Digest, &str)>) -> Result<Started, RegistryError> {
        let mut url = format!("{}/blobs/uploads/", self.base);
        if let Some((digest, from)) = mount {
            url.push_str(&format!(
                "?mount={}&from={}",
                query_escape(&digest.to_string()),
                query_escape(from)
            ));
        }
        let mut resp = self.send(Method::POST, &url, &[], &[])?;
        match resp.status().as_u16() {
            201 if mount.is_some() => Ok(Started::Mounted),
            // A registry that cannot (or will not) mount opens an upload session instead.
            202 => Ok(Started::Session(self.location(&url, &resp)?)),
            401 | 403 => Err(self.unauthorized(&url)),
            status => Err(status_error("POST", &url, status, &mut resp)),
        }
    }

    /// Sends one chunk of a chunked upload; returns where the next one goes.
    fn patch_chunk(
        &self,
        location: &str,
        offset: u64,
        bytes: &[u8],
    ) -> Result<String, RegistryError> {
        let end = offset + bytes.len() as u64 - 1;
        let headers = [
            ("Content-Type", "application/octet-stream".to_string()),
            ("Content-Range", format!("{offset}-{end}")),
        ];
        let mut resp = self.send(Method::PATCH, location, &headers, bytes)?;
        match resp.status().as_u16() {
            202 => self.location(location, &resp),
            401 | 403 => Err(self.unauthorized(location)),
            status => {
                let e = status_error("PATCH", location, status, &mut resp);
                self.cancel(location);
                Err(e)
            }
        }
    }

    /// Commits an upload: `PUT <location>?digest=`, with the last bytes (all of them for a
    /// monolithic upload, none after PATCH chunks).
    fn finish_upload(
        &self,
        location: &str,
        digest: &Digest,
        body: &[u8],
    ) -> Result<(), RegistryError> {
        let sep = if location.contains('?') { '&' } else { '?' };
        let url = format!(
            "{location}{sep}digest={}",
            query_escape(&digest.to_string())
        );
        let headers = [("Content-Type", "application/octet-stream".to_string())];
        let mut resp = self.send(Method::PUT, &url, &headers, body)?;
        match resp.status().as_u16() {
            201 | 204 => check_digest_header(&resp, digest, &url),
            401 | 403 => Err(self.unauthorized(&url)),
            status => {
                let e = status_error("PUT", &url, status, &mut resp);
                self.cancel(location);
                Err(e)
            }
        }
    }

    /// Abandons an upload session; the registry would expire it anyway, so failures are
    /// not worth reporting over the error that led here.
    fn cancel(&self, location: &str) {
        let _ = self.send(Method::DELETE, location, &[], &[]);
    }

    /// `PUT /manifests/<reference>` of a manifest or index, exactly the bytes stored.
    pub fn put_manifest(
        &self,
        reference: &str,
        bytes: &[u8],
        media_type: &str,
        digest: &Digest,
    ) -> Result<(), RegistryError> {
        let url = format!("{}/manifests/{reference}", self.base);
        let headers = [("Content-Type", media_type.to_string())];
        let mut resp = self.send(Method::PUT, &url, &headers, bytes)?;
        match resp.status().as_u16() {
            201 | 200 | 204 => check_digest_header(&resp, digest, &url),
            401 | 403 => Err(self.unauthorized(&url)),
            status => Err(status_error("PUT", &url, status, &mut resp)),
        }
    }

    /// The absolute URL of a response's `Location` (which may be relative to the origin).
    fn location(&self, url: &str, resp: &Response<Body>) -> Result<String, RegistryError> {
        let bad = |detail: String| RegistryError::Location {
            url: url.to_string(),
            detail,
        };
        let loc = header_str(resp.headers(), "location")
            .ok_or_else(|| bad("the answer has no Location header".into()))?;
        if loc.len() > MAX_LOCATION || loc.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err(bad(format!(
                "Location {} is not a usable URL",
                stockade_quote::quote(&loc)
            )));
        }
        if loc.starts_with("https://") || loc.starts_with("http://") {
            Ok(loc)
        } else if loc.starts_with('/') {
            Ok(format!("{}{loc}", self.origin))
        } else {
            Err(bad(format!(
                "Location {} is neither absolute nor rooted",
                stockade_quote::quote(&loc)
            )))
        }
    }
}

/// Reads until `buf` is full or the reader ends; returns the bytes read.
fn fill(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// A `Docker-Content-Digest` answer that names other content than we sent is an error.
fn check_digest_header(
    resp: &Response<Body>,
    digest: &Digest,
    url: &str,
) -> Result<(), RegistryError> {
    match header_str(resp.headers(), "docker-content-digest") {
        Some(d) if d != digest.to_string() => Err(RegistryError::PushedDigest {
            url: url.to_string(),
            expected: digest.clone(),
            answered: d,
        }),
        _ => Ok(()),
    }
}

fn status_error(method: &str, url: &str, status: u16, resp: &mut Response<Body>) -> RegistryError {
    RegistryError::Status {
        method: method.to_string(),
        url: url.to_string(),
        status,
        detail: error_detail(resp),
    }
}
