//! Terminals on Linux, for `platform::pty`.

use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::PathBuf;

use nix::fcntl::OFlag;

use super::{call, sys};
use crate::platform::PlatformError;

/// Opens a new pseudo-terminal in the current root: (master, slave path).
pub fn open_pty() -> Result<(OwnedFd, PathBuf), PlatformError> {
    use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(|e| call("posix_openpt (/dev/ptmx inside the container)", e))?;
    grantpt(&master).map_err(|e| call("grantpt", e))?;
    unlockpt(&master).map_err(|e| call("unlockpt", e))?;
    let name = ptsname_r(&master).map_err(|e| call("ptsname", e))?;
    Ok((master.into(), PathBuf::from(name)))
}

/// Makes `tty` the controlling terminal of the calling session leader.
pub fn set_controlling_tty(tty: BorrowedFd<'_>) -> Result<(), PlatformError> {
    sys::set_controlling_tty(tty).map_err(|e| call("ioctl(TIOCSCTTY)", e))
}

/// Sets a terminal's size.
pub fn set_winsize(tty: BorrowedFd<'_>, rows: u16, cols: u16) -> Result<(), PlatformError> {
    sys::set_winsize(tty, rows, cols).map_err(|e| call("ioctl(TIOCSWINSZ)", e))
}
