//! Bounds on what a hostile image may make us write: total uncompressed bytes, the
//! apparent size of sparse files, the number of entries, path depth and the size of the
//! pax / GNU long-name headers. One [`Budget`] is shared by every layer of an image (and
//! by the threads that scan them), so the bounds hold per image, not per layer.

use std::fmt;
use std::io::{self, Read};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::oci::digest::Digest;

use super::error::{EntryError, UnpackError};

const GIB: u64 = 1 << 30;

/// A byte bound that may follow from the image's compressed size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeLimit {
    /// [`AUTO_RATIO`] times the compressed size of the layers, at least [`AUTO_FLOOR`].
    Auto,
    /// A fixed number of bytes.
    Bytes(u64),
}

/// `auto`: this many times the compressed size of the image's layers…
pub const AUTO_RATIO: u64 = 8;
/// …but never less than this (small images may compress very well).
pub const AUTO_FLOOR: u64 = GIB;

impl SizeLimit {
    /// The bound in bytes for layers whose blobs take `compressed` bytes.
    pub fn resolve(self, compressed: u64) -> u64 {
        match self {
            SizeLimit::Auto => compressed.saturating_mul(AUTO_RATIO).max(AUTO_FLOOR),
            SizeLimit::Bytes(b) => b,
        }
    }
}

impl fmt::Display for SizeLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SizeLimit::Auto => f.write_str("auto"),
            SizeLimit::Bytes(b) => write!(f, "{b}"),
        }
    }
}

/// A size that is neither `auto` nor a byte count.
#[derive(Debug, thiserror::Error)]
#[error("size {value}: expected `auto` or a number of bytes with an optional suffix k, m, g, t (powers of 1024)")]
pub struct BadSize {
    value: String,
}

impl FromStr for SizeLimit {
    type Err = BadSize;

    fn from_str(s: &str) -> Result<SizeLimit, BadSize> {
        let bad = || BadSize {
            value: stockade_quote::quote(s).to_string(),
        };
        let t = s.trim().to_ascii_lowercase();
        if t == "auto" {
            return Ok(SizeLimit::Auto);
        }
        let t = t
            .strip_suffix("ib")
            .or_else(|| t.strip_suffix('b'))
            .unwrap_or(&t);
        let (num, shift) = match t.char_indices().last() {
            Some((i, 'k')) => (&t[..i], 10),
            Some((i, 'm')) => (&t[..i], 20),
            Some((i, 'g')) => (&t[..i], 30),
            Some((i, 't')) => (&t[..i], 40),
            _ => (t, 0),
        };
        let n: u64 = num.trim().parse().map_err(|_| bad())?;
        n.checked_mul(1u64 << shift)
            .map(SizeLimit::Bytes)
            .ok_or_else(bad)
    }
}

/// The bounds of one image's unpack. The defaults are documented in `docs/storage.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnpackLimits {
    /// Uncompressed tar bytes of all layers together (a decompression bomb stops here).
    pub max_bytes: SizeLimit,
    /// Apparent size of all sparse files together: their holes cost no disk here, but a
    /// copy of the tree (the dir driver's root filesystems) would write them out.
    pub max_sparse_bytes: SizeLimit,
    /// Entries of all layers together.
    pub max_entries: u64,
    /// Components of an entry's path.
    pub max_depth: usize,
    /// Bytes of one entry's long name, long link target or pax extended header.
    pub max_header_bytes: u64,
}

impl Default for UnpackLimits {
    fn default() -> Self {
        UnpackLimits {
            max_bytes: SizeLimit::Auto,
            max_sparse_bytes: SizeLimit::Auto,
            max_entries: 1_000_000,
            max_depth: 256,
            max_header_bytes: 1 << 20,
        }
    }
}

/// Which bound an image exceeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exceeded {
    Bytes(u64),
    SparseBytes(u64),
    Entries(u64),
}

impl fmt::Display for Exceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exceeded::Bytes(b) => write!(
                f,
                "the layers expand to more than {b} bytes (--max-unpacked-size); a decompression bomb or a very large image"
            ),
            Exceeded::SparseBytes(b) => write!(
                f,
                "sparse files declare more than {b} bytes together (--max-sparse-size)"
            ),
            Exceeded::Entries(n) => write!(f, "the layers hold more than {n} entries (--max-entries)"),
        }
    }
}

/// The shared counters of one image's unpack, against its resolved bounds.
#[derive(Debug)]
pub(crate) struct Budget {
    max_bytes: u64,
    max_sparse: u64,
    pub(crate) limits: UnpackLimits,
    bytes: AtomicU64,
    sparse: AtomicU64,
    entries: AtomicU64,
    tripped: AtomicBool,
    /// The first bound exceeded and the layer that exceeded it. The counting reader can
    /// only return an `io::Error`, which the tar reader may wrap; this is the truth.
    exceeded: Mutex<Option<(Digest, Exceeded)>>,
}

impl Budget {
    /// The bounds for layers whose blobs take `compressed` bytes together.
    pub(crate) fn new(limits: UnpackLimits, compressed: u64) -> Arc<Budget> {
        Arc::new(Budget {
            max_bytes: limits.max_bytes.resolve(compressed),
            max_sparse: limits.max_sparse_bytes.resolve(compressed),
            limits,
            bytes: AtomicU64::new(0),
            sparse: AtomicU64::new(0),
            entries: AtomicU64::new(0),
            tripped: AtomicBool::new(false),
            exceeded: Mutex::new(None),
        })
    }

    fn trip(&self, layer: &Digest, what: Exceeded) -> EntryError {
        if !self.tripped.swap(true, Ordering::SeqCst) {
            if let Ok(mut g) = self.exceeded.lock() {
                *g = Some((layer.clone(), what.clone()));
            }
        }
        EntryError::Unsafe(what.to_string())
    }

    /// The limit error, when a bound was exceeded: it replaces whatever error the reader
    /// saw, which is only a consequence.
    pub(crate) fn exceeded(&self) -> Option<UnpackError> {
        if !self.tripped.load(Ordering::SeqCst) {
            return None;
        }
        let g = self.exceeded.lock().ok()?;
        g.as_ref().map(|(layer, what)| UnpackError::Limit {
            layer: layer.clone(),
            reason: what.to_string(),
        })
    }

    /// Replaces `e` with the limit error when a bound was exceeded.
    pub(crate) fn explain(&self, e: UnpackError) -> UnpackError {
        self.exceeded().unwrap_or(e)
    }

    fn add_bytes(&self, layer: &Digest, n: u64) -> Result<(), EntryError> {
        let total = self.bytes.fetch_add(n, Ordering::Relaxed).saturating_add(n);
        if total > self.max_bytes {
            return Err(self.trip(layer, Exceeded::Bytes(self.max_bytes)));
        }
        Ok(())
    }

    /// Counts one entry of `layer` (call once per entry per image, not per pass).
    pub(crate) fn count_entry(&self, layer: &Digest) -> Result<(), EntryError> {
        let n = self.entries.fetch_add(1, Ordering::Relaxed) + 1;
        if n > self.limits.max_entries {
            return Err(self.trip(layer, Exceeded::Entries(self.limits.max_entries)));
        }
        Ok(())
    }

    /// Checks that one layer alone, having shown `n` entries so far, is within the entry
    /// bound (a scan stops early on a flood); the image's total is charged in layer order
    /// with [`Budget::charge_entries`].
    pub(crate) fn count_layer_entries(&self, layer: &Digest, n: u64) -> Result<(), EntryError> {
        if n > self.limits.max_entries {
            return Err(self.trip(layer, Exceeded::Entries(self.limits.max_entries)));
        }
        Ok(())
    }

    /// Charges the `n` entries of a scanned `layer` to the image's total, in layer order.
    pub(crate) fn charge_entries(&self, layer: &Digest, n: u64) -> Result<(), UnpackError> {
        let total = self
            .entries
            .fetch_add(n, Ordering::Relaxed)
            .saturating_add(n);
        if total > self.limits.max_entries {
            let what = Exceeded::Entries(self.limits.max_entries);
            let _ = self.trip(layer, what);
            return Err(self.exceeded().unwrap_or_else(|| UnpackError::Limit {
                layer: layer.clone(),
                reason: Exceeded::Entries(self.limits.max_entries).to_string(),
            }));
        }
        Ok(())
    }

    /// Counts the apparent size of a sparse file.
    pub(crate) fn count_sparse(&self, layer: &Digest, apparent: u64) -> Result<(), EntryError> {
        let total = self
            .sparse
            .fetch_add(apparent, Ordering::Relaxed)
            .saturating_add(apparent);
        if total > self.max_sparse {
            return Err(self.trip(layer, Exceeded::SparseBytes(self.max_sparse)));
        }
        Ok(())
    }

    /// Checks the per-entry bounds that need no counting: path depth and header sizes.
    pub(crate) fn check_entry<R: Read>(&self, entry: &tar::Entry<'_, R>) -> Result<(), EntryError> {
        let max = self.limits.max_header_bytes;
        let path = entry.path_bytes();
        if path.len() as u64 > max {
            return Err(EntryError::Unsafe(format!(
                "its name is {} bytes long; the limit is {max} (--max-header-size)",
                path.len()
            )));
        }
        if let Some(link) = entry.link_name_bytes() {
            if link.len() as u64 > max {
                return Err(EntryError::Unsafe(format!(
                    "its link target is {} bytes long; the limit is {max} (--max-header-size)",
                    link.len()
                )));
            }
        }
        let depth = path
            .split(|b| *b == b'/')
            .filter(|c| !c.is_empty() && *c != b".")
            .count();
        if depth > self.limits.max_depth {
            return Err(EntryError::Unsafe(format!(
                "its path has {depth} components; the limit is {} (--max-path-depth)",
                self.limits.max_depth
            )));
        }
        Ok(())
    }

    /// Checks the size of an entry's pax extended header (records are `len key=value\n`).
    pub(crate) fn check_pax<R: Read>(
        &self,
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<(), EntryError> {
        let max = self.limits.max_header_bytes;
        let Ok(Some(exts)) = entry.pax_extensions() else {
            return Ok(());
        };
        let mut total = 0u64;
        for ext in exts.flatten() {
            total += (ext.key_bytes().len() + ext.value_bytes().len() + 2) as u64;
        }
        if total > max {
            return Err(EntryError::Unsafe(format!(
                "its pax header is about {total} bytes; the limit is {max} (--max-header-size)"
            )));
        }
        Ok(())
    }
}

/// A decoder wrapper that counts the uncompressed bytes of a layer against the budget and
/// fails once the image exceeds it: a bomb stops at the bound, not at a full disk.
pub(crate) struct Counted<R> {
    pub inner: R,
    pub budget: Arc<Budget>,
    pub layer: Digest,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.budget
            .add_bytes(&self.layer, n as u64)
            .map_err(|e| match e {
                EntryError::Unsafe(reason) => io::Error::other(reason),
                EntryError::Fs(_, io) => io,
            })?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_suffixes_and_auto() {
        assert_eq!("auto".parse::<SizeLimit>().unwrap(), SizeLimit::Auto);
        assert_eq!("123".parse::<SizeLimit>().unwrap(), SizeLimit::Bytes(123));
        assert_eq!("2k".parse::<SizeLimit>().unwrap(), SizeLimit::Bytes(2048));
        assert_eq!(
            "3G".parse::<SizeLimit>().unwrap(),
            SizeLimit::Bytes(3 << 30)
        );
        assert_eq!(
            "1GiB".parse::<SizeLimit>().unwrap(),
            SizeLimit::Bytes(1 << 30)
        );
        for bad in ["", "x", "-1", "1.5g", "99999999999t"] {
            assert!(bad.parse::<SizeLimit>().is_err(), "{bad}");
        }
    }

    #[test]
    fn auto_is_a_ratio_of_the_compressed_size_with_a_floor() {
        assert_eq!(SizeLimit::Auto.resolve(1 << 20), AUTO_FLOOR);
        assert_eq!(SizeLimit::Auto.resolve(1 << 30), 8 << 30);
        assert_eq!(SizeLimit::Bytes(5).resolve(1 << 30), 5);
    }
}
