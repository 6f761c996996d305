//! The one system call of the store that nix does not wrap: `sync_file_range(2)`, to start
//! writing a blob's data back while the rest of it is still arriving. Linux only; the only
//! `unsafe` of the store.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Starts writeback of the bytes of `fd` from `offset` to its end, without waiting for it
/// (`SYNC_FILE_RANGE_WRITE`): the `fsync` before the blob is named then has little left
/// to do, instead of the whole blob at once.
pub(super) fn start_writeback(fd: BorrowedFd<'_>, offset: u64) -> io::Result<()> {
    let offset = libc::off64_t::try_from(offset).map_err(|_| io::ErrorKind::InvalidInput)?;
    // SAFETY: `fd` is an open descriptor borrowed for the call; the call takes plain
    // integers and touches no memory of ours.
    let r =
        unsafe { libc::sync_file_range(fd.as_raw_fd(), offset, 0, libc::SYNC_FILE_RANGE_WRITE) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
