//! The one narrow interface between the lifecycle and a kernel, and its two
//! implementations, chosen at compile time: FreeBSD jails (production) and Linux namespaces
//! (running everything end to end on Linux). Nothing above this module knows which kernel
//! it is on.

pub mod freebsd;
pub mod freebsd_plan;
#[cfg(target_os = "linux")]
mod linux;

use std::os::fd::OwnedFd;

use crate::id::ContainerId;
use crate::jail::JailSpec;
use crate::mounts::MountSpec;
use crate::process::{Confinement, ProcessSpec};
use crate::state::Resources;

#[cfg(target_os = "freebsd")]
pub use freebsd::FreeBsd as Host;
#[cfg(target_os = "freebsd")]
pub(crate) use freebsd::{rlimit_name, set_rlimit};
#[cfg(target_os = "linux")]
pub use linux::confinement_features;
#[cfg(target_os = "linux")]
pub use linux::Linux as Host;
#[cfg(target_os = "linux")]
pub(crate) use linux::{rlimit_name, set_rlimit};

/// A kernel call that failed, or a plan the platform cannot carry out.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    /// A system call that failed with `errno`.
    #[error("{call}: {}", .errno.desc())]
    Call {
        call: String,
        errno: nix::errno::Errno,
    },
    /// A step that failed without an errno of its own (a parse, a refusal, an I/O error
    /// already put into words).
    #[error("{call}: {detail}")]
    Failed { call: String, detail: String },
    #[error("{what} is not supported on {os}: {hint}")]
    Unsupported {
        what: String,
        os: &'static str,
        hint: String,
    },
    #[error(transparent)]
    Mount(#[from] crate::mounts::MountError),
}

impl PlatformError {
    /// A failed call with its errno.
    pub fn call(call: impl Into<String>, errno: nix::errno::Errno) -> Self {
        PlatformError::Call {
            call: call.into(),
            errno,
        }
    }

    /// A failed call reported as an I/O error: its errno kept when it has one.
    pub fn io(call: impl Into<String>, e: &std::io::Error) -> Self {
        match e.raw_os_error() {
            Some(n) => PlatformError::Call {
                call: call.into(),
                errno: nix::errno::Errno::from_raw(n),
            },
            None => PlatformError::Failed {
                call: call.into(),
                detail: e.to_string(),
            },
        }
    }

    /// The errno of the call that failed, when it was a system call.
    pub fn errno(&self) -> Option<nix::errno::Errno> {
        match self {
            PlatformError::Call { errno, .. } => Some(*errno),
            _ => None,
        }
    }
}

/// Everything decided about a container before anything is made.
#[derive(Debug, Clone)]
pub struct ContainerPlan {
    pub id: ContainerId,
    pub jail: JailSpec,
    pub mounts: Vec<MountSpec>,
    pub process: ProcessSpec,
    pub root_readonly: bool,
    /// What `linux.resources` limits (rctl rules on FreeBSD, cgroups on Linux).
    pub limits: crate::limits::ResourceLimits,
    /// `freebsd.devices`.
    pub devices: Vec<crate::config::DeviceRule>,
    /// The Linux part of the configuration (namespaces by path, devices, masked and
    /// read-only paths); ignored with a warning, or refused, on FreeBSD.
    pub linux: Option<oci_spec::runtime::Linux>,
    /// Descriptors after 0-2 passed to the process (`--preserve-fds`, or `LISTEN_FDS`).
    pub preserve_fds: u32,
    /// Hooks the init runs itself: createContainer (before entering the root) and
    /// startContainer (inside the container, just before exec).
    pub create_container_hooks: Vec<oci_spec::runtime::Hook>,
    pub start_container_hooks: Vec<oci_spec::runtime::Hook>,
}

/// An `update` of a live container's resource limits.
#[derive(Debug, Clone)]
pub struct LimitsChange<'a> {
    pub id: &'a ContainerId,
    /// `linux.cgroupsPath` as create saw it.
    pub cgroups_path: Option<&'a std::path::Path>,
    pub before: crate::limits::ResourceLimits,
    pub after: crate::limits::ResourceLimits,
    pub init_pid: i32,
    /// Records durably, before it is made, each host object the update is about to make
    /// (Linux: a cgroup directory), so that an update killed midway leaves nothing that
    /// delete does not know of.
    pub intend: Intend<'a>,
}

/// The recorder of [`LimitsChange::intend`].
#[derive(Clone, Copy)]
pub struct Intend<'a>(pub &'a dyn Fn(&std::path::Path) -> Result<(), PlatformError>);

impl std::fmt::Debug for Intend<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Intend(..)")
    }
}

/// The init's life in the child of [`Platform::spawn_init`]: it never returns.
pub type InitEntry<P> =
    fn(&ContainerPlan, &Resources, &<P as Platform>::InitContext, InitHandoff) -> !;

/// What the init process is handed when it has entered the container.
#[derive(Debug)]
pub struct InitHandoff {
    /// The container's state directory, opened before entering, to reach the start fifo.
    pub state_dir: OwnedFd,
    /// The parent's end of the create handshake.
    pub sync: OwnedFd,
    /// The connected `--console-socket`, when the process has a terminal.
    pub console: Option<OwnedFd>,
    /// Descriptors of the creating process the child inherits without owning (the state
    /// lock, create's end of the handshake). The child closes its copies before anything
    /// else ([`InitHandoff::close_inherited`]): a copy of the lock would keep it held after
    /// create dies, and a copy of create's end would keep the handshake open, so the init
    /// would wait forever instead of seeing end-of-file.
    pub inherited: Vec<std::os::fd::RawFd>,
    /// The connected `linux.seccomp.listenerPath`, when the profile notifies: connected from
    /// the host, since the path is a host path the process cannot reach once inside.
    pub seccomp_listener: Option<OwnedFd>,
}

impl InitHandoff {
    /// In the child: closes the inherited copies (once; later calls do nothing).
    pub fn close_inherited(&mut self) {
        for fd in std::mem::take(&mut self.inherited) {
            // The child's own copy of a number the parent still owns: closing it here only
            // drops the child's reference to the open file.
            let _ = nix::unistd::close(fd);
        }
    }
}

/// A seccomp agent's connected socket and the state JSON it is sent with the notify
/// descriptor.
#[derive(Debug)]
pub struct SeccompListener {
    pub socket: std::os::unix::net::UnixStream,
    pub state: Vec<u8>,
}

/// The operations a kernel backend provides.
pub trait Platform {
    /// The kernel's name, for messages.
    const OS: &'static str;

    /// Whether [`Platform::process_handle`] can open a descriptor for an existing process
    /// (`--pidfd-socket`), checked before anything is made.
    const PROCESS_HANDLES: bool;

    /// What [`Platform::spawn_init`] decides in the parent, before clone, that the init's
    /// [`Platform::enter`] needs: handed over explicitly (the child starts as a copy of the
    /// parent's memory), never through global state.
    type InitContext;

    /// Checks what this platform cannot do before anything is made.
    fn check(plan: &ContainerPlan) -> Result<(), PlatformError>;

    /// Host-side work before the init process exists (FreeBSD: mounts, the jail, network;
    /// Linux: cgroups). Each thing made is recorded in `made` at once, so a failure midway
    /// is undone by [`Platform::destroy`]. FreeBSD records each thing *before* making it
    /// and calls `journal` with the record, which the caller persists: a SIGKILL at any
    /// instant then leaves only what `delete --force` undoes. A journal error stops create.
    fn prepare_host(
        plan: &ContainerPlan,
        made: &mut Resources,
        journal: &mut dyn FnMut(&Resources) -> Result<(), PlatformError>,
    ) -> Result<(), PlatformError>;

    /// Starts the init process as a direct child of the caller. The child enters the
    /// container's namespaces and then runs `init` (create hands down
    /// `crate::init::container_init`, so no backend calls up into the init); it never
    /// returns here.
    fn spawn_init(
        plan: &ContainerPlan,
        made: &Resources,
        handoff: InitHandoff,
        init: InitEntry<Self>,
    ) -> Result<i32, PlatformError>;

    /// In the init process, before createContainer hooks: set up what must exist inside
    /// the container's namespaces while the host's paths are still visible (Linux: joined
    /// namespaces, mounts, devices; FreeBSD: nothing, mounts are made on the host). Mount
    /// points, device nodes and links made on the root filesystem are reported through `report`
    /// twice: just before each is made (its path does not exist yet) and just after.
    fn enter(
        plan: &ContainerPlan,
        made: &Resources,
        ctx: &Self::InitContext,
        report: &mut dyn FnMut(&std::path::Path),
    ) -> Result<(), PlatformError>;

    /// In the init process, after createContainer hooks: enter the root for good (Linux:
    /// pivot_root, read-only root, hostname; FreeBSD: jail_attach).
    fn enter_root(plan: &ContainerPlan, made: &Resources) -> Result<(), PlatformError>;

    /// Opens a new pseudo-terminal in the current root: (master, slave path).
    fn open_pty() -> Result<(OwnedFd, std::path::PathBuf), PlatformError>;

    /// Makes `tty` the controlling terminal of the calling session leader.
    fn set_controlling_tty(tty: std::os::fd::BorrowedFd<'_>) -> Result<(), PlatformError>;

    /// Sets a terminal's size.
    fn set_winsize(
        tty: std::os::fd::BorrowedFd<'_>,
        rows: u16,
        cols: u16,
    ) -> Result<(), PlatformError>;

    /// Starts a process inside the running container whose init is `init_pid` (for exec):
    /// a direct child of the caller, which runs `child` after joining the container (Linux:
    /// its namespaces and root; FreeBSD: jail_attach). `child` must not return.
    fn spawn_joined(
        made: &Resources,
        init_pid: i32,
        child: Box<dyn FnMut() -> isize + '_>,
    ) -> Result<i32, PlatformError>;

    /// Before the fork of an exec'd process: what of its confinement can be prepared by the
    /// runtime so that the child only applies it (Linux: the seccomp filter, compiled or
    /// taken from the same cache as create's; ambient capabilities the kernel cannot raise
    /// are named in one warning, as at create).
    fn precompile_confinement(_confinement: &mut Confinement) -> Result<(), PlatformError> {
        Ok(())
    }

    /// In a process about to exec, after its user changed: what only this kernel has
    /// (Linux: the capability sets, no_new_privs, a seccomp filter loaded last).
    fn before_exec(
        process: &ProcessSpec,
        listener: Option<&SeccompListener>,
    ) -> Result<(), PlatformError>;

    /// Called in the process before it changes its user and groups (Linux: I/O priority
    /// and `oom_score_adj`, LSM labels, a seccomp filter that must be loaded while
    /// privileged, the bounding set).
    fn before_user(
        _process: &ProcessSpec,
        _listener: Option<&SeccompListener>,
    ) -> Result<(), PlatformError> {
        Ok(())
    }

    /// Marks every descriptor from `first` up close-on-exec, so the container process gets
    /// only 0-2 and the preserved ones.
    fn cloexec_from(first: i32) -> Result<(), PlatformError>;

    /// Changes a live container's resource limits (FreeBSD: its rctl rules; Linux: its
    /// cgroups, made when a controller is limited for the first time, with every process
    /// moved in). What it makes or removes is recorded in `made` as it goes.
    fn update_limits(made: &mut Resources, change: &LimitsChange<'_>) -> Result<(), PlatformError>;

    /// Undoes everything in `made`, in reverse order, as far as it can; returns what failed.
    fn destroy(made: &Resources) -> Vec<PlatformError>;

    /// The host pids of every process in the container whose init is `init_pid`.
    fn container_pids(made: &Resources, init_pid: Option<i32>) -> Result<Vec<i32>, PlatformError>;

    /// A descriptor referring to process `pid` itself (a pidfd), for `--pidfd-socket`.
    fn process_handle(pid: i32) -> Result<OwnedFd, PlatformError>;

    /// An opaque start time of `pid`, or `None` when there is no such live process (a
    /// zombie counts as gone).
    fn process_start_time(pid: i32) -> Option<u64>;
}
