//! The container's standard streams as containerd gives them: FIFO paths that containerd
//! (or ctr) holds the other end of, `file://` URIs (output appended to a file), or nothing.
//! `binary://` log URIs (a logging program the shim runs, `binary.rs`).
//!
//! The output FIFOs are handed to the process directly, so the shim copies nothing on the
//! way out. Stdin goes through a pipe the shim feeds from the FIFO, because containerd
//! ends it with CloseIO rather than by closing the FIFO.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::stat::Mode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

mod binary;

pub use binary::LogContext;

/// Where one stream goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Nothing: /dev/null.
    Null,
    /// A FIFO containerd made.
    Fifo(PathBuf),
    /// `file:///path`: appended to that file.
    File(PathBuf),
    /// `binary:///path?args`: a logging program reading the output from pipes.
    Binary(binary::Binary),
}

#[derive(Debug, thiserror::Error)]
pub enum StdioError {
    #[error("log URI {uri}: {why}")]
    Uri { uri: String, why: &'static str },
    #[error("opening {op} {path}: {source}")]
    Open {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: nix::errno::Errno,
    },
    #[error("logging program {path}: {why}")]
    Logger { path: PathBuf, why: String },
    #[error("stdout and stderr name different binary:// logging programs ({stdout}, {stderr}); containerd gives both the same URI")]
    TwoLoggers { stdout: String, stderr: String },
    #[error("{op}: {source}")]
    Sys {
        op: &'static str,
        #[source]
        source: nix::errno::Errno,
    },
}

/// Parses one of containerd's stdio strings.
pub fn parse_target(s: &str) -> Result<Target, StdioError> {
    if s.is_empty() {
        return Ok(Target::Null);
    }
    let uri = || stockade_quote::quote(s).to_string();
    match s.split_once("://") {
        None => Ok(Target::Fifo(PathBuf::from(s))),
        Some(("fifo", p)) => Ok(Target::Fifo(PathBuf::from(p))),
        Some(("file", p)) => {
            let p = p.split('?').next().unwrap_or_default();
            if !p.starts_with('/') {
                return Err(StdioError::Uri {
                    uri: uri(),
                    why: "a file:// log URI needs an absolute path (file:///var/log/x)",
                });
            }
            Ok(Target::File(PathBuf::from(p)))
        }
        Some(("binary", rest)) => binary::parse(rest)
            .map(Target::Binary)
            .map_err(|why| StdioError::Uri { uri: uri(), why }),
        Some(_) => Err(StdioError::Uri {
            uri: uri(),
            why: "unknown scheme (expected a FIFO path, fifo://, file:// or binary://)",
        }),
    }
}

/// The three descriptors a process starts with, plus the shim's end of its stdin.
pub struct Streams {
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    /// The stdin FIFO and the pipe end feeding the process (None without stdin).
    pub stdin_feed: Option<(PathBuf, OwnedFd)>,
}

fn open(path: &Path, flags: OFlag, op: &'static str) -> Result<OwnedFd, StdioError> {
    let fd = nix::fcntl::open(
        path,
        flags | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o640),
    )
    .map_err(|source| StdioError::Open {
        op,
        path: path.to_path_buf(),
        source,
    })?;
    Ok(fd)
}

fn clear_nonblock(fd: &OwnedFd) -> Result<(), StdioError> {
    let sys = |source| StdioError::Sys {
        op: "fcntl(F_SETFL)",
        source,
    };
    let fl = OFlag::from_bits_truncate(fcntl(fd.as_fd(), FcntlArg::F_GETFL).map_err(sys)?);
    fcntl(fd.as_fd(), FcntlArg::F_SETFL(fl - OFlag::O_NONBLOCK)).map_err(sys)?;
    Ok(())
}

fn output(target: &Target) -> Result<OwnedFd, StdioError> {
    match target {
        Target::Null => open(Path::new("/dev/null"), OFlag::O_WRONLY, "output"),
        // Non-blocking, so a FIFO nobody reads fails at once (ENXIO) instead of hanging
        // the shim; then blocking again, as the process expects.
        Target::Fifo(p) => {
            let fd = open(p, OFlag::O_WRONLY | OFlag::O_NONBLOCK, "output FIFO")?;
            clear_nonblock(&fd)?;
            Ok(fd)
        }
        Target::File(p) => open(
            p,
            OFlag::O_WRONLY | OFlag::O_APPEND | OFlag::O_CREAT,
            "output log file",
        ),
        // Handled with both streams in `outputs`.
        Target::Binary(b) => Err(StdioError::Logger {
            path: b.path.clone(),
            why: "a logging program serves stdout and stderr together".into(),
        }),
    }
}

/// The stdout and stderr descriptors. One logging program serves both when either names
/// one (containerd's log URI is given as both); a stream without it gets its own target.
fn outputs(
    out: &Target,
    err: &Target,
    ctx: &LogContext<'_>,
) -> Result<(OwnedFd, OwnedFd), StdioError> {
    let b = match (out, err) {
        (Target::Binary(a), Target::Binary(b)) if a != b => {
            return Err(StdioError::TwoLoggers {
                stdout: stockade_quote::quote_os(a.path.as_os_str()).to_string(),
                stderr: stockade_quote::quote_os(b.path.as_os_str()).to_string(),
            })
        }
        (Target::Binary(b), _) | (_, Target::Binary(b)) => b,
        _ => return Ok((output(out)?, output(err)?)),
    };
    let (o, e) = binary::start(b, ctx)?;
    let o = match out {
        Target::Binary(_) => o,
        t => output(t)?,
    };
    let e = match err {
        Target::Binary(_) => e,
        t => output(t)?,
    };
    Ok((o, e))
}

/// Opens the streams for a process from containerd's three strings.
pub fn open_streams(
    stdin: &str,
    stdout: &str,
    stderr: &str,
    ctx: &LogContext<'_>,
) -> Result<Streams, StdioError> {
    let (out, err) = outputs(&parse_target(stdout)?, &parse_target(stderr)?, ctx)?;
    let (input, feed) = match parse_target(stdin)? {
        Target::Null => (
            open(Path::new("/dev/null"), OFlag::O_RDONLY, "stdin")?,
            None,
        ),
        Target::Fifo(p) => {
            let (r, w) =
                nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|source| StdioError::Sys {
                    op: "pipe2 (stdin)",
                    source,
                })?;
            (r, Some((p, w)))
        }
        Target::File(p) => (open(&p, OFlag::O_RDONLY, "stdin file")?, None),
        Target::Binary(b) => {
            return Err(StdioError::Logger {
                path: b.path,
                why: "a logging program cannot be stdin".into(),
            })
        }
    };
    Ok(Streams {
        stdin: input,
        stdout: out,
        stderr: err,
        stdin_feed: feed,
    })
}

/// Runs `f` with the shim's own 0, 1 and 2 replaced by `streams`, so that the process the
/// runtime forks inside `f` inherits them; then puts the shim's back. The shim is single
/// threaded (see main.rs), so no other code sees the swapped descriptors.
pub fn with_streams<T>(streams: &Streams, f: impl FnOnce() -> T) -> Result<T, StdioError> {
    let sys = |op| move |source| StdioError::Sys { op, source };
    let saved = (
        nix::unistd::dup(std::io::stdin()).map_err(sys("dup(0)"))?,
        nix::unistd::dup(std::io::stdout()).map_err(sys("dup(1)"))?,
        nix::unistd::dup(std::io::stderr()).map_err(sys("dup(2)"))?,
    );
    nix::unistd::dup2_stdin(&streams.stdin).map_err(sys("dup2(0)"))?;
    nix::unistd::dup2_stdout(&streams.stdout).map_err(sys("dup2(1)"))?;
    nix::unistd::dup2_stderr(&streams.stderr).map_err(sys("dup2(2)"))?;
    let r = f();
    nix::unistd::dup2_stdin(&saved.0).map_err(sys("dup2(0) back"))?;
    nix::unistd::dup2_stdout(&saved.1).map_err(sys("dup2(1) back"))?;
    nix::unistd::dup2_stderr(&saved.2).map_err(sys("dup2(2) back"))?;
    Ok(r)
}

/// Copies the stdin FIFO into the process's pipe until containerd's CloseIO (`close`),
/// then copies what is already in the FIFO and closes the pipe (the process sees EOF).
/// The FIFO is opened read-write so that it never reads as ended before CloseIO, even
/// while no writer has it open.
pub fn feed_stdin(
    fifo: PathBuf,
    pipe: OwnedFd,
    close: oneshot::Receiver<()>,
) -> Result<(), StdioError> {
    let fd = open(&fifo, OFlag::O_RDWR | OFlag::O_NONBLOCK, "stdin FIFO")?;
    let mut rx =
        tokio::net::unix::pipe::Receiver::from_owned_fd(fd).map_err(|e| StdioError::Sys {
            op: "registering the stdin FIFO",
            source: errno_of(&e),
        })?;
    let mut tx =
        tokio::net::unix::pipe::Sender::from_owned_fd(pipe).map_err(|e| StdioError::Sys {
            op: "registering the stdin pipe",
            source: errno_of(&e),
        })?;
    tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        tokio::pin!(close);
        loop {
            tokio::select! {
                r = rx.read(&mut buf) => match r {
                    Ok(0) | Err(_) => break,
                    Ok(n) => if tx.write_all(&buf[..n]).await.is_err() { return },
                },
                _ = &mut close => {
                    // What was written before CloseIO is in the FIFO already.
                    while let Ok(n) = rx.try_read(&mut buf) {
                        if n == 0 || tx.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    break;
                }
            }
        }
    });
    Ok(())
}

fn errno_of(e: &std::io::Error) -> nix::errno::Errno {
    nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CTX: LogContext<'static> = LogContext {
        id: "c",
        namespace: "ns",
    };

    #[test]
    fn two_different_loggers_refused() {
        let e = open_streams("", "binary:///bin/a", "binary:///bin/b", &CTX)
            .err()
            .unwrap();
        assert!(matches!(e, StdioError::TwoLoggers { .. }), "{e}");
    }

    #[test]
    fn targets() {
        assert_eq!(parse_target("").unwrap(), Target::Null);
        assert_eq!(
            parse_target("/run/f/x-stdout").unwrap(),
            Target::Fifo("/run/f/x-stdout".into())
        );
        assert_eq!(
            parse_target("fifo:///a").unwrap(),
            Target::Fifo("/a".into())
        );
        assert_eq!(
            parse_target("file:///var/log/c.log").unwrap(),
            Target::File("/var/log/c.log".into())
        );
        assert_eq!(
            parse_target("file:///var/log/c.log?x=1").unwrap(),
            Target::File("/var/log/c.log".into())
        );
        assert!(parse_target("file://relative").is_err());
        assert!(matches!(
            parse_target("binary:///usr/bin/logger?a=b").unwrap(),
            Target::Binary(b) if b.path == Path::new("/usr/bin/logger") && b.args == ["a", "b"]
        ));
        let e = parse_target("binary://host/logger")
            .unwrap_err()
            .to_string();
        assert!(e.contains("absolute"), "{e}");
        assert!(parse_target("http://x").is_err());
    }

    #[test]
    fn file_output_appends() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("out.log");
        std::fs::write(&log, "a\n").unwrap();
        let uri = format!("file://{}", log.display());
        let s = open_streams("", &uri, "", &CTX).unwrap();
        nix::unistd::write(&s.stdout, b"b\n").unwrap();
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "a\nb\n");
        assert!(s.stdin_feed.is_none());
    }

    #[test]
    fn fifo_without_reader_fails_instead_of_hanging() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("stdout");
        nix::unistd::mkfifo(&f, Mode::from_bits_truncate(0o600)).unwrap();
        let e = open_streams("", f.to_str().unwrap(), "", &CTX)
            .err()
            .unwrap();
        assert!(
            matches!(
                e,
                StdioError::Open {
                    source: nix::errno::Errno::ENXIO,
                    ..
                }
            ),
            "{e}"
        );
    }
}
