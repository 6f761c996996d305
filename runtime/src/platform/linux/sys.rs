//! The Linux backend's only `unsafe`: starting the init process in new namespaces, and
//! marking descriptors close-on-exec.

use nix::sched::CloneFlags;
use nix::unistd::Pid;

/// Stack for the cloned child until it execs: the init path formats messages and walks
/// directories, so it gets the same 8 MiB a main thread has.
const CHILD_STACK: usize = 8 * 1024 * 1024;

/// Starts `child` as a new process in the namespaces `flags` asks for, a direct child of
/// the caller (SIGCHLD on exit). `child` must not return; it execs or exits.
pub fn clone_child(flags: CloneFlags, child: Box<dyn FnMut() -> isize + '_>) -> nix::Result<Pid> {
    let mut stack = vec![0u8; CHILD_STACK];
    // SAFETY: without CLONE_VM the child runs on its own copy of the address space (like
    // fork), so the stack buffer stays valid for it; the caller is single-threaded (the
    // stockade binary never starts threads before create), so no lock can be held by a
    // thread that does not exist in the child.
    unsafe { nix::sched::clone(child, &mut stack, flags, Some(libc::SIGCHLD)) }
}

/// `close_range(first, ~0, CLOSE_RANGE_CLOEXEC)` (Linux 5.11); on older kernels each open
/// descriptor listed in /proc/self/fd is marked instead.
pub fn cloexec_from(first: i32) -> nix::Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range only changes descriptor flags; its arguments are plain integers.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            CLOSE_RANGE_CLOEXEC,
        )
    };
    if r == 0 {
        return Ok(());
    }
    let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .map_err(|_| nix::errno::Errno::ENOENT)?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd >= first)
        .collect();
    for fd in fds {
        // SAFETY: F_SETFD on a number that may have been closed since the listing is
        // harmless (EBADF, ignored); no memory is touched.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok(())
}

/// Closes descriptor `fd` in a child that inherited it without owning it (the cloned
/// init's copy of a pipe end its parent keeps).
pub fn close_fd(fd: i32) {
    // SAFETY: close(2) of a plain number; the child has no other owner of this copy.
    unsafe { libc::close(fd) };
}

/// pidfd_open(2) (Linux 5.3), which nix does not wrap; the descriptor is close-on-exec.
pub fn pidfd_open(pid: i32) -> nix::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: pidfd_open takes a pid and flags (0) and returns a new descriptor or -1.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let fd = nix::errno::Errno::result(r)?;
    // SAFETY: on success the kernel returned a fresh descriptor that nothing else owns.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}

/// setdomainname(2), which nix does not wrap.
pub fn set_domainname(name: &str) -> nix::Result<()> {
    // SAFETY: the pointer and length describe `name`'s bytes, which outlive the call.
    let r = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    nix::errno::Errno::result(r).map(drop)
}

extern "C" fn exit_on_signal(sig: libc::c_int) {
    // SAFETY: _exit is async-signal-safe and takes a plain integer.
    unsafe { libc::_exit(128 + sig) }
}

/// As PID 1 of its namespace the waiting init ignores signals without a handler, so `kill`
/// of a created container would do nothing; these handlers make the usual termination
/// signals end it. execve resets them to the defaults for the container's process.
pub fn exit_on_termination_signals() {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let action = SigAction::new(
        SigHandler::Handler(exit_on_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for sig in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
    ] {
        // SAFETY: the handler only calls _exit, which is async-signal-safe.
        let _ = unsafe { sigaction(sig, &action) };
    }
}

/// fork(2): runs `child` in the new process, which exits with its return value.
pub fn fork_child(mut child: Box<dyn FnMut() -> isize + '_>) -> nix::Result<Pid> {
    // SAFETY: the stockade binary is single-threaded when it forks, so the child inherits
    // no lock held by another thread; the child only runs `child` and exits.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Parent { child } => Ok(child),
        nix::unistd::ForkResult::Child => {
            let code = child();
            std::process::exit(code as i32)
        }
    }
}

/// ioctl(TIOCSCTTY): make `tty` the controlling terminal of this session.
pub fn set_controlling_tty(tty: std::os::fd::BorrowedFd<'_>) -> nix::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: TIOCSCTTY takes an int argument by value; the descriptor is borrowed and open.
    let r = unsafe { libc::ioctl(tty.as_raw_fd(), libc::TIOCSCTTY, 0) };
    nix::errno::Errno::result(r).map(drop)
}

/// ioctl(TIOCSWINSZ).
pub fn set_winsize(tty: std::os::fd::BorrowedFd<'_>, rows: u16, cols: u16) -> nix::Result<()> {
    use std::os::fd::AsRawFd;
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: the pointer is to a live winsize the kernel only reads.
    let r = unsafe { libc::ioctl(tty.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    nix::errno::Errno::result(r).map(drop)
}

/// ioprio_set(2) for the calling process (`IOPRIO_WHO_PROCESS`, 0): `class` 1-3, `level`
/// 0-7. libc has no wrapper.
pub fn set_io_priority(class: u8, level: u8) -> nix::Result<()> {
    const IOPRIO_WHO_PROCESS: libc::c_int = 1;
    const IOPRIO_CLASS_SHIFT: libc::c_int = 13;
    let prio = (libc::c_int::from(class) << IOPRIO_CLASS_SHIFT) | libc::c_int::from(level);
    // SAFETY: ioprio_set takes three integers and touches no memory of the caller.
    let r = unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, prio) };
    nix::errno::Errno::result(r).map(drop)
}

/// seccomp(SECCOMP_SET_MODE_FILTER, flags, prog) with a compiled classic-BPF program (a
/// cached copy of what libseccomp made; see `seccomp_cache`).
pub fn seccomp_set_mode_filter(
    flags: libc::c_ulong,
    program: &[libc::sock_filter],
) -> nix::Result<()> {
    let len = u16::try_from(program.len()).map_err(|_| nix::errno::Errno::E2BIG)?;
    let prog = libc::sock_fprog {
        len,
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: `prog` points at `program`, which outlives the call; the kernel copies the
    // instructions and validates them before attaching the filter.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            &prog as *const libc::sock_fprog,
        )
    };
    nix::errno::Errno::result(r).map(drop)
}
