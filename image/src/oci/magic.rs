//! What a stream's first bytes say it is, shared by import (whole files) and unpack (layer
//! blobs), and a read that fills a buffer as far as the stream allows.

use std::io::{self, Read};

/// Compression formats recognised by their magic numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Magic {
    Gzip,
    Zstd,
    Xz,
    Bzip2,
    /// None of the above: a plain tar, or something else entirely.
    Other,
}

/// How many leading bytes [`sniff`] looks at.
pub const MAGIC_LEN: usize = 6;

/// Recognises the format from the first bytes (up to [`MAGIC_LEN`]).
pub fn sniff(head: &[u8]) -> Magic {
    if head.starts_with(&[0x1f, 0x8b]) {
        Magic::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Magic::Zstd
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        Magic::Xz
    } else if head.starts_with(b"BZh") {
        Magic::Bzip2
    } else {
        Magic::Other
    }
}

/// Reads until `buf` is full or the stream ends; returns how much was read.
pub fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_each_format_by_its_magic() {
        assert_eq!(sniff(&[0x1f, 0x8b, 8]), Magic::Gzip);
        assert_eq!(sniff(&[0x28, 0xb5, 0x2f, 0xfd, 0]), Magic::Zstd);
        assert_eq!(sniff(&[0xfd, b'7', b'z', b'X', b'Z', 0]), Magic::Xz);
        assert_eq!(sniff(b"BZh91"), Magic::Bzip2);
        assert_eq!(sniff(b"etc/\0\0"), Magic::Other);
        assert_eq!(sniff(&[]), Magic::Other);
    }

    #[test]
    fn read_up_to_stops_at_the_end_of_a_short_stream() {
        let mut buf = [0u8; 6];
        assert_eq!(read_up_to(&mut &b"abc"[..], &mut buf).unwrap(), 3);
        assert_eq!(read_up_to(&mut &b"abcdefgh"[..], &mut buf).unwrap(), 6);
    }
}
