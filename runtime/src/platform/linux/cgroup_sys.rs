//! The `unsafe` of the device rules: bpf(2) to load and attach the device filter, and
//! clone3(2) with `CLONE_INTO_CGROUP`, which starts a process inside a v2 cgroup without
//! the migration (and its RCU grace period) that writing `cgroup.procs` costs.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::unistd::Pid;

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// The `BPF_PROG_LOAD` part of `union bpf_attr`, padded with zeros (the kernel checks that
/// bytes it does not know are zero).
#[repr(C)]
#[derive(Default)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    pad: [u64; 8],
}

/// The `BPF_PROG_ATTACH` part of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct ProgAttach {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
    pad: [u32; 11],
}

/// Loads `insns` (8 bytes per instruction) as a cgroup device program. On a verifier
/// refusal the error carries the verifier's log.
pub fn load_device_program(insns: &[u8]) -> Result<OwnedFd, (Errno, String)> {
    const LICENSE: &[u8] = b"Apache-2.0\0";
    let mut log = vec![0u8; 0];
    for attempt in 0..2 {
        if attempt == 1 {
            log = vec![0u8; 64 * 1024];
        }
        let mut name = [0u8; 16];
        name[..8].copy_from_slice(b"stockade");
        let attr = ProgLoad {
            prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
            insn_cnt: (insns.len() / 8) as u32,
            insns: insns.as_ptr() as u64,
            license: LICENSE.as_ptr() as u64,
            log_level: u32::from(attempt == 1),
            log_size: log.len() as u32,
            log_buf: if log.is_empty() {
                0
            } else {
                log.as_mut_ptr() as u64
            },
            prog_name: name,
            ..ProgLoad::default()
        };
        // SAFETY: `attr` is a zero-padded bpf_attr whose pointers (instructions, license,
        // log buffer) point at live buffers of the stated sizes for the whole call; the
        // kernel writes only into the log buffer.
        let r = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_PROG_LOAD,
                &attr as *const ProgLoad,
                std::mem::size_of::<ProgLoad>() as libc::c_uint,
            )
        };
        match Errno::result(r) {
            // SAFETY: on success the kernel returned a new descriptor nothing else owns.
            Ok(fd) => return Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) }),
            Err(e) if attempt == 0 && matches!(e, Errno::EINVAL | Errno::EACCES) => continue,
            Err(e) => {
                let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
                return Err((e, String::from_utf8_lossy(&log[..end]).trim().to_string()));
            }
        }
    }
    Err((Errno::EINVAL, String::new()))
}

/// Attaches device program `prog` to the v2 cgroup open at `cgroup`, beside any others
/// (`BPF_F_ALLOW_MULTI`: a parent's programs still run, and all must allow).
pub fn attach_device_program(cgroup: BorrowedFd<'_>, prog: BorrowedFd<'_>) -> nix::Result<()> {
    let attr = ProgAttach {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        ..ProgAttach::default()
    };
    // SAFETY: `attr` is a zero-padded bpf_attr holding two open descriptors; the kernel
    // only reads it.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_ATTACH,
            &attr as *const ProgAttach,
            std::mem::size_of::<ProgAttach>() as libc::c_uint,
        )
    };
    Errno::result(r).map(drop)
}

/// `struct clone_args` (the size of its second version, which has `cgroup`).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// clone3(2) with `flags` (new namespaces) into the v2 cgroup open at `cgroup`, like fork:
/// the child runs `child` on a copy of the caller's memory and exits with its result; the
/// caller gets the child's pid (SIGCHLD on exit). ENOSYS/E2BIG on kernels before 5.7.
pub fn clone_into_cgroup(
    flags: CloneFlags,
    cgroup: BorrowedFd<'_>,
    child: &mut dyn FnMut() -> isize,
) -> nix::Result<Pid> {
    let args = CloneArgs {
        flags: flags.bits() as u64 | CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup.as_raw_fd() as u64,
        ..CloneArgs::default()
    };
    // SAFETY: without CLONE_VM (never in `flags`: they are namespace flags) the child gets
    // its own copy of the address space and continues on its copy of this stack, as after
    // fork; the stockade binary is single-threaded here, so no lock is held by a thread
    // that does not exist in the child. `args` is read by the kernel only.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match Errno::result(r)? {
        0 => {
            let code = child();
            // SAFETY: _exit ends the child without running the parent's atexit handlers
            // a second time, as the end of a clone(2) child does.
            unsafe { libc::_exit(code as i32) }
        }
        pid => Ok(Pid::from_raw(pid as i32)),
    }
}
