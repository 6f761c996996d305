//! `start`: release the init from the start fifo and wait until it has executed the
//! container's process (or failed to).

use std::io::{ErrorKind, Read};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::{can_start, live_status, ContainerError};
use crate::hooks::{self, Phase};
use crate::id::ContainerId;
use crate::state::{StateStore, Status, START_FIFO};

/// Starts a created container. Returns once the process is executing; `running` is never
/// recorded before that.
pub fn start(store: &StateStore, id: &ContainerId) -> Result<(), ContainerError> {
    let lock = store.lock(id)?;
    stockade_fault::point("start:after-lock");
    let mut st = store.read(id)?;
    let status = live_status(&st);
    if !can_start(status) {
        return Err(ContainerError::WrongStatus {
            id: id.clone(),
            op: "start",
            status,
            expected: "only a created container can be started",
        });
    }
    // Read before the init is released: a record that cannot be read fails start while
    // the container is still only created.
    let poststart = store.read_derived(id)?.hooks.poststart;
    let fifo_path = lock.dir().join(START_FIFO);
    let mut fifo = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&fifo_path)
        .map_err(ContainerError::io("opening start fifo", &fifo_path))?;

    let alive = || live_status(&st) == Status::Created;
    let gone = |id: &ContainerId| ContainerError::InitFailed {
        id: id.clone(),
        message: "the init process exited before it could start the container's process".into(),
    };

    // Phase 1: the init opens the fifo (unblocked by our open) and writes "0".
    let mut byte = [0u8; 1];
    let mut pause = Duration::from_micros(100);
    loop {
        match fifo.read(&mut byte) {
            Ok(1) => break,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(ContainerError::io("reading start fifo", &fifo_path)(e)),
        }
        if !alive() {
            return Err(gone(id));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(10));
    }

    stockade_fault::point("start:after-go");
    tracing::debug!("start {id}: the init has opened the start fifo; waiting for its exec");
    // Phase 2: end-of-file means exec closed the fifo; bytes are the init's error message.
    let mut message = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let ready = {
            let mut fds = [PollFd::new(fifo.as_fd(), PollFlags::POLLIN)];
            poll(&mut fds, PollTimeout::from(100u16)).unwrap_or(0)
        };
        if ready == 0 {
            if !alive() {
                break;
            }
            continue;
        }
        match fifo.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => message.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(ContainerError::io("reading start fifo", &fifo_path)(e)),
        }
    }
    let _ = std::fs::remove_file(&fifo_path);
    if !message.is_empty() {
        return Err(ContainerError::reported(id, &message, |id, failure| {
            ContainerError::Init { id, failure }
        }));
    }
    stockade_fault::point("start:before-state");
    st.status = Status::Running;
    store.write(&st)?;
    tracing::debug!("start {id}: running (pid {})", st.pid.unwrap_or(0));
    stockade_fault::point("start:after-state");
    drop(lock);
    if !poststart.is_empty() {
        tracing::debug!("start {id}: {} poststart hooks", poststart.len());
        let state = serde_json::to_vec(&super::container_state_as(&st, Status::Running))
            .unwrap_or_default();
        // The runtime spec: a failing poststart hook is a warning, and the lifecycle goes
        // on as if it had succeeded (runc destroys the container instead).
        hooks::run_warning(Phase::Poststart, &poststart, &state);
    }
    Ok(())
}
