//! The one narrow interface between the lifecycle and a kernel, and its two
//! implementations, chosen at compile time: FreeBSD jails (production) and Linux namespaces
//! (running everything end to end on Linux). Nothing above this module knows which kernel
//! it is on.
//!
//! - [`ContainerPlan`] (`plan`): what is decided before anything is made, built by one
//!   pure constructor for a [`Target`]: a common part and a [`BackendPlan`]
//!   (`freebsd_plan::FreeBsdPlan` or `linux_plan::LinuxPlan`). Both plans compile on every
//!   host, so either is planned and tested anywhere.
//! - [`Platform`]: the lifecycle phases only (check, prepare_host, spawn_init, enter,
//!   enter_root, before_user, before_exec, spawn_joined, update_limits, destroy), each
//!   implemented by both backends, with no inherited defaults.
//! - [`Resources`] (`made`): what create made, the shared mount points plus the backend's
//!   own record ([`Platform::Made`]: `FreeBsdMade` or `LinuxMade`), in one state file.
//! - [`pty`], [`procs`] and [`beneath`]: terminals, process helpers and link-free
//!   directory walks, free functions of the running backend, chosen below in the one
//!   place the backend is chosen.
//!
//! Each backend's code: `freebsd_plan/` (the pure FreeBSD plan and its record),
//! `freebsd/` (its executor, kernel seam, model kernel, and on FreeBSD the real kernel),
//! `linux_plan.rs` (the Linux plan and record), `linux/` (the namespaces backend, Linux
//! only).

pub mod freebsd;
pub mod freebsd_plan;
#[cfg(target_os = "linux")]
mod linux;
pub mod linux_plan;
mod made;
mod plan;
#[cfg(test)]
pub(crate) mod test_fixture;

use std::os::fd::OwnedFd;

use crate::id::ContainerId;
use crate::process::{Confinement, ProcessSpec};
use crate::target::Target;
pub use made::Resources;
pub use plan::{BackendPlan, ContainerPlan, PlanError, PlanOptions};

// The one place the backend is chosen: its lifecycle (`Host`), and the terminal
// (`pty`), process (`procs`) and directory-walk (`beneath`) helpers that the lifecycle and the commands call
// directly, each a module of free functions with the same names on both kernels.
#[cfg(target_os = "freebsd")]
pub use freebsd::{beneath, host_features, procs, pty, FreeBsd as Host};
#[cfg(target_os = "freebsd")]
pub(crate) use freebsd::{rlimit_name, set_rlimit};
#[cfg(target_os = "linux")]
pub use linux::{beneath, host_features, procs, pty, Linux as Host};
#[cfg(target_os = "linux")]
pub(crate) use linux::{rlimit_name, set_rlimit};

/// The backend record of what create made, on this build's kernel.
pub type HostMade = <Host as Platform>::Made;

/// The target of the backend this build runs containers with.
pub const HOST_TARGET: Target = <Host as Platform>::TARGET;

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

/// Persists a record of what is made, before the thing is made (see
/// [`Platform::prepare_host`]); its error stops the operation.
pub type Journal<'a, M> = dyn FnMut(&Resources<M>) -> Result<(), PlatformError> + 'a;

/// An `update` of a live container's resource limits.
#[derive(Debug, Clone)]
pub struct LimitsChange<'a> {
    pub id: &'a ContainerId,
    pub before: crate::limits::ResourceLimits,
    pub after: crate::limits::ResourceLimits,
    pub init_pid: i32,
}

/// The init's life in the child of [`Platform::spawn_init`]: it never returns.
pub type InitEntry<P> = fn(
    &ContainerPlan,
    &Resources<<P as Platform>::Made>,
    &<P as Platform>::InitContext,
    InitHandoff,
) -> !;

/// What the init process is handed when it has entered the container.
#[derive(Debug)]
pub struct InitHandoff {
    /// The container's state directory, opened before entering, to reach the start fifo.
    pub state_dir: OwnedFd,
    /// The start fifo's name in `state_dir` (the backend may have to hand it to the
    /// container's root user).
    pub start_fifo: &'static str,
    /// The child's end of the create handshake (create keeps the other end).
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
    /// The kernel this backend runs containers on: what its plans are made for.
    const TARGET: Target;

    /// What this backend records having made, beside the mount points ([`Resources`]).
    type Made: Clone
        + Default
        + PartialEq
        + std::fmt::Debug
        + serde::Serialize
        + serde::de::DeserializeOwned;

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
        made: &mut Resources<Self::Made>,
        journal: &mut Journal<'_, Self::Made>,
    ) -> Result<(), PlatformError>;

    /// Starts the init process as a direct child of the caller. The child enters the
    /// container's namespaces and then runs `init` (create hands down
    /// `crate::init::container_init`, so no backend calls up into the init); it never
    /// returns here.
    fn spawn_init(
        plan: &ContainerPlan,
        made: &Resources<Self::Made>,
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
        made: &Resources<Self::Made>,
        ctx: &Self::InitContext,
        report: &mut dyn FnMut(&std::path::Path),
    ) -> Result<(), PlatformError>;

    /// In the init process, after createContainer hooks: enter the root for good (Linux:
    /// pivot_root, read-only root, hostname; FreeBSD: jail_attach).
    fn enter_root(plan: &ContainerPlan, made: &Resources<Self::Made>) -> Result<(), PlatformError>;

    /// Starts a process inside the running container whose init is `init_pid` (for exec):
    /// a direct child of the caller, which runs `child` after joining the container (Linux:
    /// its namespaces and root; FreeBSD: jail_attach). `child` must not return.
    fn spawn_joined(
        made: &Resources<Self::Made>,
        init_pid: i32,
        child: Box<dyn FnMut() -> isize + '_>,
    ) -> Result<i32, PlatformError>;

    /// Before the fork of an exec'd process: what of its confinement can be prepared by the
    /// runtime so that the child only applies it (Linux: the seccomp filter, compiled or
    /// taken from the same cache as create's; ambient capabilities the kernel cannot raise
    /// are named in one warning, as at create).
    fn precompile_confinement(confinement: &mut Confinement) -> Result<(), PlatformError>;

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
        process: &ProcessSpec,
        listener: Option<&SeccompListener>,
    ) -> Result<(), PlatformError>;

    /// Changes a live container's resource limits (FreeBSD: its rctl rules; Linux: its
    /// cgroups, made when a controller is limited for the first time, with every process
    /// moved in). What it makes or removes is recorded in `made` as it goes; what it is
    /// about to make on the host (Linux: a cgroup directory) is passed to `journal`, which
    /// persists it, first, so an update killed midway leaves nothing that delete does not
    /// know of.
    fn update_limits(
        made: &mut Resources<Self::Made>,
        change: &LimitsChange<'_>,
        journal: &mut Journal<'_, Self::Made>,
    ) -> Result<(), PlatformError>;

    /// Undoes everything in `made`, in reverse order, as far as it can; returns what failed.
    fn destroy(made: &Resources<Self::Made>) -> Vec<PlatformError>;
}
