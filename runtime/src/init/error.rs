//! Why the init (or an exec'd process) failed before exec: each variant carries the call or
//! path and the errno, so the failure reaches create typed (see [`InitError::failure`]).

use std::path::PathBuf;

use nix::errno::Errno;

use super::message::{InitFailure, Step};
use crate::hooks::HookError;
use crate::platform::PlatformError;

/// A step of the init's setup or of applying a process, failed.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Platform(#[from] PlatformError),
    #[error(transparent)]
    Hook(#[from] HookError),
    #[error(transparent)]
    Process(#[from] crate::process::ProcessError),
    /// A system call without a path of its own (setsid, setgid, dup2…).
    #[error("{call}: {errno}")]
    Call { call: String, errno: Errno },
    /// A system call on a path (`process.cwd`, the program, the terminal).
    #[error("{what} {}: {errno}", .path.display())]
    Path {
        what: &'static str,
        path: PathBuf,
        errno: Errno,
    },
    #[error("process.rlimits {name} (soft {soft}, hard {hard}): {errno}{}",
            if *.errno == Errno::EPERM {
                "; raising a hard limit above the runtime's own needs privilege \
                 (CAP_SYS_RESOURCE on Linux), and no limit may exceed the kernel's maximum"
            } else { "" })]
    Rlimit {
        name: String,
        soft: u64,
        hard: u64,
        errno: Errno,
    },
    #[error("{} contains a NUL byte", stockade_quote::quote(.value))]
    Nul { value: Vec<u8> },
}

impl InitError {
    /// A failed call.
    pub fn call(call: impl Into<String>, errno: Errno) -> Self {
        InitError::Call {
            call: call.into(),
            errno,
        }
    }

    /// The errno of the system call that failed, when one did.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            InitError::Platform(p) => p.errno(),
            InitError::Call { errno, .. }
            | InitError::Path { errno, .. }
            | InitError::Rlimit { errno, .. } => Some(*errno),
            InitError::Hook(_) | InitError::Process(_) | InitError::Nul { .. } => None,
        }
    }

    /// `failure(step)` as one frame, for the pipes that carry only a failure (the start
    /// fifo, exec's report pipe): nothing written means the process was executed.
    pub fn report(&self, step: Step) -> Vec<u8> {
        super::channel::encode(&super::Message::Failed(self.failure(step))).unwrap_or_default()
    }

    /// What crosses the handshake to create.
    pub fn failure(&self, step: Step) -> InitFailure {
        InitFailure {
            step,
            errno: self.errno(),
            message: self.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_errno_survives_into_the_failure_report() {
        let e = InitError::from(PlatformError::call("mount of proc on /proc", Errno::EACCES));
        let f = e.failure(Step::Enter);
        assert_eq!(f.errno, Some(Errno::EACCES));
        assert_eq!(f.step, Step::Enter);
        assert_eq!(f.message, "mount of proc on /proc: Permission denied");
        let e = InitError::Path {
            what: "process.cwd",
            path: "/nope".into(),
            errno: Errno::ENOENT,
        };
        assert_eq!(e.failure(Step::Enter).errno, Some(Errno::ENOENT));
        assert!(e.to_string().starts_with("process.cwd /nope: ENOENT"));
        let e = InitError::Nul {
            value: b"a\0b".to_vec(),
        };
        assert_eq!(e.errno(), None);
        let e = InitError::Rlimit {
            name: "RLIMIT_NOFILE".into(),
            soft: 1,
            hard: 2,
            errno: Errno::EPERM,
        };
        assert!(e.to_string().contains("CAP_SYS_RESOURCE"), "{e}");
    }

    #[test]
    fn an_io_error_keeps_its_errno_when_it_has_one() {
        let os = std::io::Error::from_raw_os_error(Errno::ENOENT as i32);
        let e = PlatformError::io("opening /x", &os);
        assert_eq!(e.errno(), Some(Errno::ENOENT));
        assert_eq!(e.to_string(), "opening /x: No such file or directory");
        let other = std::io::Error::other("not a system call");
        let e = PlatformError::io("copying", &other);
        assert_eq!(e.errno(), None);
        assert_eq!(e.to_string(), "copying: not a system call");
    }
}
