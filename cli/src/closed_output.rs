//! A closed standard output (`stockade list | head -0`) ends the command quietly, as
//! SIGPIPE ends a C program, instead of a panic or an error line.
//!
//! Rust starts every program with SIGPIPE ignored, so a write to a pipe nobody reads fails
//! with EPIPE: `println!` panics on it and `writeln!` returns it. Putting SIGPIPE back to
//! its default would also kill the process when it writes to a container's stdin or a
//! terminal relay whose reader went away, where EPIPE is an error to handle; so instead the
//! two ways EPIPE on stdout surfaces are caught here: the panic of `print!`/`println!`
//! (by a panic hook) and an error returned by a command (checked in `main`).

use std::io::{self, ErrorKind};
use std::os::fd::AsFd;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

/// The exit code for a closed stdout: what a shell reports for a program killed by
/// SIGPIPE (128 + 13).
pub const EXIT_CLOSED_STDOUT: u8 = 141;

/// Makes a panic that comes from EPIPE on stdout exit with [`EXIT_CLOSED_STDOUT`] and
/// nothing on stderr: the one `print!` raises, and a library's `expect` on a write to
/// stdout (clap_complete's) while stdout has no reader. Every other panic reports as before.
pub fn install() {
    let epipe = io::Error::from_raw_os_error(nix::libc::EPIPE).to_string();
    let print_panic = format!("failed printing to stdout: {epipe}");
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        let closed = msg == print_panic
            || ((msg.contains(&epipe) || msg.contains("BrokenPipe")) && stdout_reader_gone());
        if closed {
            std::process::exit(i32::from(EXIT_CLOSED_STDOUT));
        }
        previous(info);
    }));
}

/// Whether a command's error is a write to a stdout nobody reads any more: an EPIPE in
/// its chain while stdout is a pipe or socket whose reader is gone. (An EPIPE from a
/// container's pipe while stdout still works stays an error.)
pub fn is_closed_stdout(e: &anyhow::Error) -> bool {
    let epipe = e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == ErrorKind::BrokenPipe)
    });
    epipe && stdout_reader_gone()
}

/// Whether stdout has no reader: poll reports POLLERR (Linux) or POLLHUP (FreeBSD) for
/// the write end of such a pipe.
fn stdout_reader_gone() -> bool {
    let stdout = io::stdout();
    let mut fds = [PollFd::new(stdout.as_fd(), PollFlags::POLLOUT)];
    match poll(&mut fds, PollTimeout::ZERO) {
        Ok(_) => fds[0]
            .revents()
            .is_some_and(|r| r.intersects(PollFlags::POLLERR | PollFlags::POLLHUP)),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_without_epipe_is_reported() {
        let e = anyhow::Error::new(io::Error::from(ErrorKind::PermissionDenied));
        assert!(!is_closed_stdout(&e));
    }

    #[test]
    fn an_epipe_while_stdout_is_readable_is_reported() {
        // The test harness's stdout is a terminal, a file or a pipe that is read.
        let e = anyhow::Error::new(io::Error::from_raw_os_error(nix::libc::EPIPE))
            .context("writing to the container");
        assert!(!is_closed_stdout(&e));
    }
}
