//! The few FreeBSD system calls the image side needs that nix does not wrap: file flags
//! (`chflagsat(2)`). Compiled on FreeBSD only; the only `unsafe` of this crate.

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;

/// Sets the file flags of `name` in `dir` to `flags`, not following a symlink.
pub(crate) fn chflagsat(dir: BorrowedFd<'_>, name: &OsStr, flags: u32) -> io::Result<()> {
    let c =
        CString::new(name.as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `c` is a NUL-terminated string that outlives the call, `dir` is an open
    // descriptor borrowed for the call; the kernel reads nothing else of ours.
    let r = unsafe {
        libc::chflagsat(
            dir.as_raw_fd(),
            c.as_ptr(),
            libc::c_ulong::from(flags),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
