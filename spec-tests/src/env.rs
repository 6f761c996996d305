//! What the whole run shares: where things are on this machine.

use std::path::PathBuf;

/// What the whole run shares: where things are on this machine.
pub struct Env {
    /// The stockade binary under test.
    pub stockade: PathBuf,
    /// busybox (static) copied into every root filesystem.
    pub busybox: PathBuf,
    /// `busybox --list`, read once at start-up.
    pub applets: Vec<String>,
    /// runtime-spec 1.3.0 JSON schemas.
    pub schema_dir: PathBuf,
    /// Why container tests cannot run here, if they cannot (not root, no busybox).
    pub cannot_run: Option<String>,
}
