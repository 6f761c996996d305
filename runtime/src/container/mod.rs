//! The container lifecycle: create, start, kill, delete, and the status predicates. Status
//! is derived afresh on every load from the stored status and whether the init process is
//! still the same live process (pid and start time).

mod create;
mod delete;
mod error;
mod exec;
mod pidfd;
mod remove_created;
mod start;
mod status;
mod update;

pub use create::{check_console, create, create_from_config, plan, write_pid_file, CreateOptions};
pub use delete::delete;
pub use error::ContainerError;
pub use exec::{base_process, exec, ExecRequest};
#[cfg(test)]
pub(crate) use remove_created::remove_created_under;
pub use start::start;
pub use status::{container_state, container_state_as, live_status, Snapshot};
pub use update::update;

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::id::ContainerId;
use crate::state::{StateStore, Status};

/// Whether a container in `status` may be started.
pub fn can_start(status: Status) -> bool {
    status == Status::Created
}

/// Whether a container in `status` may be signalled.
pub fn can_kill(status: Status) -> bool {
    matches!(status, Status::Created | Status::Running)
}

/// Whether a container in `status` may be deleted without `--force`.
pub fn can_delete(status: Status) -> bool {
    matches!(status, Status::Created | Status::Stopped | Status::Creating)
}

/// Sends `signal` to the container's init, or with `all` to every process in it.
pub fn kill(
    store: &StateStore,
    id: &ContainerId,
    signal: Signal,
    all: bool,
) -> Result<(), ContainerError> {
    let _lock = store.lock(id)?;
    stockade_fault::point("kill:after-lock");
    let st = store.read(id)?;
    let status = live_status(&st);
    if !can_kill(status) {
        return Err(ContainerError::NotRunning {
            id: id.clone(),
            status,
        });
    }
    let Some(pid) = st.pid else {
        return Err(ContainerError::NotRunning {
            id: id.clone(),
            status,
        });
    };
    let targets = if all {
        crate::platform::procs::container_pids(&st.resources, Some(pid))?
    } else {
        vec![pid]
    };
    tracing::debug!("kill {id}: {signal} to {targets:?}");
    for p in targets {
        stockade_fault::point("kill:before-signal");
        match nix::sys::signal::kill(Pid::from_raw(p), signal) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
            Err(e) => {
                return Err(ContainerError::Signal {
                    id: id.clone(),
                    pid: p,
                    signal,
                    errno: e,
                })
            }
        }
    }
    Ok(())
}

/// The host pids of every process in the container.
pub fn pids(store: &StateStore, id: &ContainerId) -> Result<Vec<i32>, ContainerError> {
    let st = store.read(id)?;
    if !can_kill(live_status(&st)) {
        return Ok(Vec::new());
    }
    Ok(crate::platform::procs::container_pids(
        &st.resources,
        st.pid,
    )?)
}

/// Parses a signal as callers send it: a number (`15`), or a name with or without `SIG`
/// (`TERM`, `SIGKILL`), in any case.
pub fn parse_signal(s: &str) -> Result<Signal, ContainerError> {
    let bad = || ContainerError::BadSignal(s.to_string());
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| bad());
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<Signal>().map_err(|_| bad())
}

/// Waits until `pid` (with `start_time`) is gone, up to `timeout`.
pub(crate) fn wait_gone(pid: i32, start_time: Option<u64>, timeout: std::time::Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    let mut pause = std::time::Duration::from_micros(200);
    loop {
        let now = crate::platform::procs::process_start_time(pid);
        if now.is_none() || now != start_time {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(std::time::Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_as_callers_send_them() {
        for (s, want) in [
            ("15", Signal::SIGTERM),
            ("TERM", Signal::SIGTERM),
            ("SIGKILL", Signal::SIGKILL),
            ("kill", Signal::SIGKILL),
            ("sigusr1", Signal::SIGUSR1),
            ("9", Signal::SIGKILL),
        ] {
            assert_eq!(parse_signal(s).unwrap(), want, "{s}");
        }
        for s in ["", "0x", "SIGNOPE", "999", "-1", "TERMX"] {
            assert!(parse_signal(s).is_err(), "{s}");
        }
    }

    #[test]
    fn status_predicates_follow_the_spec() {
        assert!(can_start(Status::Created));
        assert!(!can_start(Status::Running) && !can_start(Status::Stopped));
        assert!(
            can_kill(Status::Created) && can_kill(Status::Running) && !can_kill(Status::Stopped)
        );
        assert!(
            can_delete(Status::Stopped)
                && can_delete(Status::Created)
                && !can_delete(Status::Running)
        );
    }
}
