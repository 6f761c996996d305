//! Fault injection for crash tests: in debug builds, `STOCKADE_FAULT=NAME` makes the
//! process SIGKILL itself when it reaches the point `NAME`, so a test can stop a command
//! at exactly the step it wants to prove crash-safe. Release builds compile it to nothing.
//!
//! The named points are listed in `docs/storage.md` ("Crash safety").

/// The environment variable naming the point to die at.
pub const FAULT_ENV: &str = "STOCKADE_FAULT";

/// Dies here (SIGKILL, no clean-up of any kind) when `STOCKADE_FAULT` names this point.
#[cfg(debug_assertions)]
pub fn point(name: &str) {
    if std::env::var_os(FAULT_ENV).is_some_and(|v| v == name) {
        let _ = nix::sys::signal::kill(nix::unistd::getpid(), nix::sys::signal::Signal::SIGKILL);
    }
}

/// Release builds have no fault points.
#[cfg(not(debug_assertions))]
#[inline(always)]
pub fn point(_name: &str) {}
