//! Exit statuses as containerd reports them: the exit code, or 128 + the signal for a
//! process a signal ended (what a shell and runc's shim report), with the time it was seen.

use nix::sys::wait::WaitStatus;
use protobuf::well_known_types::timestamp::Timestamp;

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    pub pid: i32,
    pub status: u32,
    /// Seconds and nanoseconds since the epoch.
    pub at: (i64, i32),
}

impl Exit {
    pub fn timestamp(&self) -> Timestamp {
        let mut t = Timestamp::new();
        t.seconds = self.at.0;
        t.nanos = self.at.1;
        t
    }
}

/// The time now as (seconds, nanos).
pub fn now() -> (i64, i32) {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs() as i64, d.subsec_nanos() as i32)
}

/// The exit of a waited-for process, or None when the status is not a termination.
pub fn from_wait(ws: WaitStatus) -> Option<Exit> {
    let (pid, status) = match ws {
        WaitStatus::Exited(pid, code) => (pid, code as u32 & 0xff),
        WaitStatus::Signaled(pid, sig, _) => (pid, 128 + sig as u32),
        _ => return None,
    };
    Some(Exit {
        pid: pid.as_raw(),
        status,
        at: now(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::Signal;
    use nix::unistd::Pid;

    #[test]
    fn codes_and_signals() {
        let e = from_wait(WaitStatus::Exited(Pid::from_raw(5), 7)).unwrap();
        assert_eq!((e.pid, e.status), (5, 7));
        let e = from_wait(WaitStatus::Signaled(
            Pid::from_raw(6),
            Signal::SIGKILL,
            false,
        ))
        .unwrap();
        assert_eq!((e.pid, e.status), (6, 137));
        let e = from_wait(WaitStatus::Signaled(
            Pid::from_raw(6),
            Signal::SIGTERM,
            true,
        ))
        .unwrap();
        assert_eq!(e.status, 143);
        assert_eq!(from_wait(WaitStatus::StillAlive), None);
        assert_eq!(
            from_wait(WaitStatus::Stopped(Pid::from_raw(1), Signal::SIGSTOP)),
            None
        );
    }

    #[test]
    fn timestamp_carries_time() {
        let e = Exit {
            pid: 1,
            status: 0,
            at: (12, 34),
        };
        let t = e.timestamp();
        assert_eq!((t.seconds, t.nanos), (12, 34));
    }
}
