//! Writing a GNU sparse file sparse. The tar reader turns the holes of the sparse map
//! into runs of zeros; here every all-zero block is skipped with a seek instead of
//! written, so a small layer declaring a huge sparse file costs only its data on disk.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};

use super::error::EntryError;

/// Holes are found at this granularity: a file system block, so the seek leaves a real
/// hole rather than a partly written block.
const BLOCK: usize = 4096;
/// Compared against with `memcmp`: much faster than a byte loop over gigabytes of holes.
static ZEROS: [u8; BLOCK] = [0; BLOCK];

/// Copies `entry` (of apparent size `size`) into `f`, seeking over all-zero blocks, and
/// sets the length last, so a trailing hole is a hole too.
pub(crate) fn write_sparse(
    entry: &mut impl Read,
    f: &mut File,
    buf: &mut [u8],
    size: u64,
) -> Result<(), EntryError> {
    let mut pos = 0u64;
    loop {
        let n = read_full(entry, buf).map_err(|e| EntryError::Fs("reading the content", e))?;
        if n == 0 {
            break;
        }
        for chunk in buf[..n].chunks(BLOCK) {
            if chunk == &ZEROS[..chunk.len()] {
                f.seek(SeekFrom::Current(chunk.len() as i64))
                    .map_err(|e| EntryError::Fs("seeking over a hole", e))?;
            } else {
                f.write_all(chunk)
                    .map_err(|e| EntryError::Fs("writing", e))?;
            }
        }
        pos += n as u64;
    }
    if pos != size {
        return Err(EntryError::Unsafe(format!(
            "sparse file declares {size} bytes but holds {pos}"
        )));
    }
    f.set_len(size)
        .map_err(|e| EntryError::Fs("setting the length", e))
}

/// Reads until `buf` is full or the input ends, so block boundaries stay aligned.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
