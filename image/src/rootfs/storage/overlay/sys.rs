//! The new mount API (`fsopen`, `fsconfig`, `fsmount`, `move_mount`), which neither nix
//! nor std wraps: overlay layers handed over one `fsconfig` call each (`lowerdir+`, Linux
//! 6.8), as descriptors where the kernel takes them (Linux 6.13), so neither the page-size
//! limit of a mount's option string nor a path that could be swapped under us applies.
//! The only `unsafe` of the overlay driver.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

// From <linux/mount.h>; stable kernel ABI.
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_SET_FD: libc::c_uint = 5;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSOPEN_CLOEXEC: libc::c_uint = 1;
const FSMOUNT_CLOEXEC: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;

fn cstr(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

fn fd_result(r: libc::c_long) -> io::Result<OwnedFd> {
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    let raw = RawFd::try_from(r).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
    // SAFETY: the kernel just returned this descriptor to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

fn unit_result(r: libc::c_long) -> io::Result<()> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// A file system context (`fsopen`) for `fstype`.
pub(super) fn fsopen(fstype: &str) -> io::Result<OwnedFd> {
    let t = cstr(fstype)?;
    // SAFETY: `t` is NUL-terminated and outlives the call; the flags are plain bits.
    fd_result(unsafe { libc::syscall(libc::SYS_fsopen, t.as_ptr(), FSOPEN_CLOEXEC) })
}

/// Sets the string option `key` of a context.
pub(super) fn set_string(fs: BorrowedFd<'_>, key: &str, value: &str) -> io::Result<()> {
    let (k, v) = (cstr(key)?, cstr(value)?);
    // SAFETY: `fs` is an open context; `k` and `v` are NUL-terminated and outlive the
    // call; aux is unused (0) for FSCONFIG_SET_STRING.
    unit_result(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_SET_STRING,
            k.as_ptr(),
            v.as_ptr(),
            0 as libc::c_int,
        )
    })
}

/// Sets the option `key` of a context to the directory `dir` (by descriptor).
pub(super) fn set_fd(fs: BorrowedFd<'_>, key: &str, dir: BorrowedFd<'_>) -> io::Result<()> {
    let k = cstr(key)?;
    // SAFETY: `fs` and `dir` are open descriptors borrowed for the call; `k` is
    // NUL-terminated and outlives it; value is NULL for FSCONFIG_SET_FD.
    unit_result(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_SET_FD,
            k.as_ptr(),
            std::ptr::null::<libc::c_char>(),
            dir.as_raw_fd(),
        )
    })
}

/// Creates the superblock of a configured context.
pub(super) fn create(fs: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: `fs` is an open context; key and value are NULL for the command.
    unit_result(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_char>(),
            0 as libc::c_int,
        )
    })
}

/// A detached mount of a created context.
pub(super) fn fsmount(fs: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    // SAFETY: `fs` is an open, created context; flags and attributes are plain bits.
    fd_result(unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            fs.as_raw_fd(),
            FSMOUNT_CLOEXEC,
            0 as libc::c_uint,
        )
    })
}

/// Attaches the detached mount `mnt` on the directory `target` (by descriptor).
pub(super) fn move_mount(mnt: BorrowedFd<'_>, target: BorrowedFd<'_>) -> io::Result<()> {
    let empty = cstr("")?;
    // SAFETY: both descriptors are open and borrowed for the call; `empty` is a
    // NUL-terminated empty path, as the *_EMPTY_PATH flags require.
    unit_result(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mnt.as_raw_fd(),
            empty.as_ptr(),
            target.as_raw_fd(),
            empty.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    })
}
