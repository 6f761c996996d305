//! Fault injection for the crash tests: `STOCKADE_FAULT=create:after-clone` makes the
//! process SIGKILL itself when it reaches that named step, so the tests can check that
//! every instant of every command leaves only what `delete --force` cleans. Compiled only
//! into debug builds; in a release build [`point`] is an empty inline function.

/// The environment variable naming the step at which to die.
pub const ENV: &str = "STOCKADE_FAULT";

/// Dies by SIGKILL (nothing runs after it: no destructors, no unlock) when `STOCKADE_FAULT`
/// names this step.
#[cfg(debug_assertions)]
pub fn point(step: &str) {
    if std::env::var_os(ENV).is_some_and(|v| v == step) {
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    }
}

/// Release builds carry no fault injection.
#[cfg(not(debug_assertions))]
#[inline(always)]
pub fn point(_step: &str) {}
