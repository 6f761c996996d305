//! The config file, `stockade.conf` (TOML): defaults for the global and storage flags, the
//! unpack bounds, and per-registry settings. Precedence: flags > environment > file >
//! built-in defaults. `file` reads it into typed [`Settings`]; `merge` makes its values the
//! defaults of the clap command, below the flags and environment clap already handles.

pub mod file;
pub mod merge;

use std::path::{Path, PathBuf};

pub use file::{Settings, SettingsError};

/// The file read when neither `--config` nor `STOCKADE_CONFIG` names one: the target's
/// convention (ports put configuration under /usr/local/etc on FreeBSD).
pub const DEFAULT_CONFIG: &str = if cfg!(target_os = "freebsd") {
    "/usr/local/etc/stockade.conf"
} else {
    "/etc/stockade/stockade.conf"
};

/// The settings of `explicit` (which must exist), or of [`DEFAULT_CONFIG`] when it exists.
pub fn load(explicit: Option<&Path>) -> Result<Option<Settings>, SettingsError> {
    match explicit {
        Some(path) => file::read(path).map(Some),
        None => {
            let path = PathBuf::from(DEFAULT_CONFIG);
            match std::fs::symlink_metadata(&path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                _ => file::read(&path).map(Some),
            }
        }
    }
}
