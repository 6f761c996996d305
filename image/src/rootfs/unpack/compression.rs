//! Layer encodings: chosen by media type, confirmed by the first bytes, decoded on a
//! thread of its own so that decompression overlaps with writing files.

use std::io::{self, Read};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread;

/// How a layer blob is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip (possibly several members).
    Gzip,
    /// zstd (possibly several frames).
    Zstd,
}

impl Compression {
    /// The encoding a layer media type names, OCI or Docker; `None` if it is no tar layer.
    pub fn from_media_type(media_type: &str) -> Option<Compression> {
        // Non-distributable variants share the suffixes, so the suffix decides.
        let mt = media_type.trim();
        if mt.ends_with("tar+gzip") || mt.ends_with(".tar.gzip") || mt.ends_with("tar.gzip") {
            Some(Compression::Gzip)
        } else if mt.ends_with("tar+zstd") {
            Some(Compression::Zstd)
        } else if mt.ends_with(".tar") || mt.ends_with("layer.v1.tar") {
            Some(Compression::None)
        } else {
            None
        }
    }

    /// What the first bytes of a blob look like, for error messages and checking.
    pub fn sniff(head: &[u8]) -> &'static str {
        match crate::oci::magic::sniff(head) {
            crate::oci::magic::Magic::Gzip => "gzip",
            crate::oci::magic::Magic::Zstd => "zstd",
            crate::oci::magic::Magic::Xz => "xz",
            crate::oci::magic::Magic::Bzip2 => "bzip2",
            crate::oci::magic::Magic::Other => "tar",
        }
    }

    /// Whether `head` is consistent with this encoding. A plain tar has no magic at
    /// offset 0, so anything that is not a known compressed format passes as tar.
    pub fn matches(self, head: &[u8]) -> bool {
        let found = Compression::sniff(head);
        match self {
            Compression::None => found == "tar",
            Compression::Gzip => found == "gzip",
            Compression::Zstd => found == "zstd",
        }
    }

    /// Wraps `raw` in the matching decoder.
    pub fn decoder<'r, R: Read + Send + 'r>(self, raw: R) -> io::Result<Box<dyn Read + Send + 'r>> {
        Ok(match self {
            Compression::None => Box::new(raw),
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(
                io::BufReader::with_capacity(1 << 17, raw),
            )),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(raw)?),
        })
    }
}

/// Chunk size handed from the decoding thread to the writer.
const CHUNK: usize = 1 << 18;
/// Chunks in flight: enough to ride over a slow file creation without much memory.
const DEPTH: usize = 16;

/// A reader fed by a thread that runs `source` (typically a decoder) ahead of the
/// consumer. Errors of the thread are returned in order, at the point they happened.
pub struct Prefetch {
    rx: Receiver<io::Result<Vec<u8>>>,
    cur: Vec<u8>,
    pos: usize,
    done: bool,
}

impl Prefetch {
    /// Starts the thread. It ends when `source` ends, fails, or the reader is dropped.
    pub fn spawn(mut source: Box<dyn Read + Send>) -> Prefetch {
        let (tx, rx): (SyncSender<io::Result<Vec<u8>>>, _) = mpsc::sync_channel(DEPTH);
        thread::spawn(move || loop {
            let mut buf = vec![0u8; CHUNK];
            let mut filled = 0;
            // Fill the whole chunk, so the consumer sees few large pieces.
            while filled < CHUNK {
                match source.read(&mut buf[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                }
            }
            buf.truncate(filled);
            let end = filled == 0;
            // A send error means the consumer stopped reading: nothing left to do.
            if tx.send(Ok(buf)).is_err() || end {
                return;
            }
        });
        Prefetch {
            rx,
            cur: Vec::new(),
            pos: 0,
            done: false,
        }
    }
}

impl Read for Prefetch {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            if self.done {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    if chunk.is_empty() {
                        self.done = true;
                    }
                    self.cur = chunk;
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                Err(_) => {
                    self.done = true;
                    return Err(io::Error::other("the decompression thread stopped"));
                }
            }
        }
        let n = out.len().min(self.cur.len() - self.pos);
        out[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_map_to_encodings() {
        use crate::oci::media::{OCI_LAYER_GZIP, OCI_LAYER_TAR, OCI_LAYER_ZSTD};
        assert_eq!(
            Compression::from_media_type(OCI_LAYER_TAR),
            Some(Compression::None)
        );
        assert_eq!(
            Compression::from_media_type(OCI_LAYER_GZIP),
            Some(Compression::Gzip)
        );
        assert_eq!(
            Compression::from_media_type(OCI_LAYER_ZSTD),
            Some(Compression::Zstd)
        );
        assert_eq!(
            Compression::from_media_type("application/vnd.docker.image.rootfs.diff.tar.gzip"),
            Some(Compression::Gzip)
        );
        assert_eq!(Compression::from_media_type("application/json"), None);
    }

    #[test]
    fn magic_must_match() {
        assert!(Compression::Gzip.matches(&[0x1f, 0x8b, 8]));
        assert!(!Compression::Gzip.matches(b"ustar"));
        assert!(!Compression::None.matches(&[0x28, 0xb5, 0x2f, 0xfd]));
    }

    #[test]
    fn prefetch_passes_bytes_through_in_order() {
        let data: Vec<u8> = (0..1_000_000u32).map(|i| i as u8).collect();
        let mut p = Prefetch::spawn(Box::new(io::Cursor::new(data.clone())));
        let mut got = Vec::new();
        p.read_to_end(&mut got).unwrap();
        assert_eq!(got, data);
    }
}
