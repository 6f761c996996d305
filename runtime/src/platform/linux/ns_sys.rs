//! The nsfs ioctl that says which kind of namespace an open file is.

use std::os::fd::{AsRawFd, BorrowedFd};

// NS_GET_NSTYPE is _IO(0xb7, 0x3) in <linux/nsfs.h> (Linux 4.11).
nix::ioctl_none!(ns_get_nstype, 0xb7, 0x3);

/// The `CLONE_NEW*` value of the namespace `fd` refers to. Any file that is not an nsfs
/// file fails with ENOTTY.
pub fn namespace_type(fd: BorrowedFd<'_>) -> nix::Result<i32> {
    // SAFETY: NS_GET_NSTYPE takes no argument and only reads the open file's inode; the fd
    // is borrowed, so it stays open for the call.
    unsafe { ns_get_nstype(fd.as_raw_fd()) }
}
