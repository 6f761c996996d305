//! Fault injection for the crash tests: `STOCKADE_FAULT=create:after-clone` makes the
//! process SIGKILL itself when it reaches that named point, so the tests can check that
//! every instant of every command leaves only what `delete --force` or a prune cleans.
//! Compiled only into debug builds; in a release build [`point`] is an empty inline
//! function. The runtime's points are listed in docs/cli.md, the image side's in
//! docs/storage.md ("Crash safety").

/// The environment variable naming the point at which to die.
pub const ENV: &str = "STOCKADE_FAULT";

/// Dies by SIGKILL (nothing runs after it: no destructors, no unlock) when `STOCKADE_FAULT`
/// names this point.
#[cfg(debug_assertions)]
pub fn point(name: &str) {
    if std::env::var_os(ENV).is_some_and(|v| v == name) {
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    }
}

/// Release builds carry no fault injection.
#[cfg(not(debug_assertions))]
#[inline(always)]
pub fn point(_name: &str) {}
