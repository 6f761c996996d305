//! Lifecycle errors. Texts callers match on: unknown ids say `does not exist`; signalling a
//! container that is not running says `container not running`.

use crate::id::ContainerId;
use crate::state::Status;

/// Why a lifecycle operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error(transparent)]
    Id(#[from] crate::id::InvalidId),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Mount(#[from] crate::mounts::MountError),
    #[error(transparent)]
    Limits(#[from] crate::limits::LimitsError),
    #[error(transparent)]
    Plan(#[from] crate::platform::PlanError),
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    #[error(transparent)]
    Platform(#[from] crate::platform::PlatformError),
    #[error("cannot {op} container {id}: it is {status}; {expected}")]
    WrongStatus {
        id: ContainerId,
        op: &'static str,
        status: Status,
        expected: &'static str,
    },
    #[error("cannot signal container {id}: container not running (it is {status})")]
    NotRunning { id: ContainerId, status: Status },
    #[error("signal {signal} to pid {pid} of container {id}: {errno}")]
    Signal {
        id: ContainerId,
        pid: i32,
        signal: nix::sys::signal::Signal,
        errno: nix::errno::Errno,
    },
    #[error(
        "{} is not a signal; expected a number such as 15 or a name such as TERM or SIGKILL", stockade_quote::quote(.0)
    )]
    BadSignal(String),
    #[error("container {id}: the init process failed: {message}")]
    InitFailed { id: ContainerId, message: String },
    /// The init reported a failure over the create handshake.
    #[error("container {id}: the init process failed {}: {failure}", .failure.step.as_str())]
    Init {
        id: ContainerId,
        failure: crate::init::InitFailure,
    },
    /// A process `exec` started failed before it was executed.
    #[error("container {id}: the exec'd process failed {}: {failure}", .failure.step.as_str())]
    Exec {
        id: ContainerId,
        failure: crate::init::InitFailure,
    },
    /// A handshake with a container process broke (create's with the init; the failure
    /// report of start or exec): a message could not be sent, or a malformed one came.
    #[error("container {id}: the handshake with its process failed: {source}")]
    Handshake {
        id: ContainerId,
        source: crate::init::ChannelError,
    },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("container {id}: {what} did not exit within {seconds}s of SIGKILL")]
    Stuck {
        id: ContainerId,
        what: String,
        seconds: u64,
    },
    #[error("{0}")]
    Terminal(String),
    #[error(transparent)]
    Hook(#[from] crate::hooks::HookError),
}

impl ContainerError {
    /// The failure a container process reported in `bytes` (all that start's fifo or
    /// exec's report pipe carried), made an error by `as_error`; a report that is not one
    /// is a handshake error saying what was wrong with it.
    pub(crate) fn reported(
        id: &ContainerId,
        bytes: &[u8],
        as_error: fn(ContainerId, crate::init::InitFailure) -> ContainerError,
    ) -> ContainerError {
        match crate::init::decode_failure(bytes) {
            Ok(failure) => as_error(id.clone(), failure),
            Err(source) => ContainerError::Handshake {
                id: id.clone(),
                source,
            },
        }
    }

    /// The errno of the system call that failed, when the failure was one.
    pub fn errno(&self) -> Option<nix::errno::Errno> {
        match self {
            ContainerError::Init { failure, .. } | ContainerError::Exec { failure, .. } => {
                failure.errno
            }
            ContainerError::Platform(p) => p.errno(),
            ContainerError::Signal { errno, .. } => Some(*errno),
            _ => None,
        }
    }

    pub(crate) fn io<'a>(
        op: &'static str,
        path: &'a std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> ContainerError + 'a {
        move |source| ContainerError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}
