//! The shim's only unsafe code: taking ownership of a descriptor received with SCM_RIGHTS,
//! and FreeBSD's procctl(2), for which nix has no wrapper.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// Owns a descriptor that recvmsg(2) just delivered in an SCM_RIGHTS message.
pub fn own_received_fd(fd: RawFd) -> OwnedFd {
    // SAFETY: the kernel installed `fd` in this process for this message only; nothing else
    // in the shim knows the number, so the OwnedFd is its sole owner.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Makes the shim the reaper of its descendants' orphans (processes a container's init or
/// exec leaves behind), so their exits are seen and reaped here.
#[cfg(target_os = "linux")]
pub fn become_subreaper() -> Result<(), nix::errno::Errno> {
    nix::sys::prctl::set_child_subreaper(true)
}

#[cfg(target_os = "freebsd")]
pub fn become_subreaper() -> Result<(), nix::errno::Errno> {
    // SAFETY: PROC_REAP_ACQUIRE on our own pid takes no data pointer (null is documented).
    let r = unsafe {
        libc::procctl(
            libc::P_PID,
            libc::getpid() as libc::id_t,
            libc::PROC_REAP_ACQUIRE,
            std::ptr::null_mut(),
        )
    };
    nix::errno::Errno::result(r).map(drop)
}
