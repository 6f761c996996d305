//! `binary://` log URIs: containerd's logging-binary protocol. The shim starts the program
//! named by the URI's path with, as containerd's own shims do:
//! - fd 3: the read end of the container's stdout pipe, fd 4: of its stderr pipe;
//! - fd 5: a pipe the program closes (or writes a byte to) when it is ready;
//! - the environment `CONTAINER_ID` and `CONTAINER_NAMESPACE` and nothing else;
//! - the URI's query as arguments: each key followed by its value (`?a=b&c` → `a b c ""`);
//! - stdin, stdout and stderr on /dev/null.
//!
//! The process's output goes into the pipes; the program ends when they reach EOF (every
//! process writing to them has exited). The shim reaps it like any other child.

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use command_fds::{CommandFdExt, FdMapping};
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags};

use super::StdioError;

/// How long the logging program may take to say it is ready (containerd waits without a
/// bound; a shim serving a whole pod must not hang on one broken program).
const READY_TIMEOUT_MS: u16 = 10_000;

/// A `binary://` URI, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binary {
    pub path: PathBuf,
    pub args: Vec<String>,
}

/// Who the log is for: the program's environment.
#[derive(Debug, Clone, Copy)]
pub struct LogContext<'a> {
    pub id: &'a str,
    pub namespace: &'a str,
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// A query component as Go's `url.QueryUnescape` reads it (`+` is a space).
fn decode_query(s: &str) -> String {
    decode(&s.replace('+', " "))
}

/// Parses what follows `binary://`: `[host]/path[?query]`. A host is refused (containerd
/// uses the path only, and a host would be silently ignored).
pub fn parse(rest: &str) -> Result<Binary, &'static str> {
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    if !path.starts_with('/') {
        return Err(
            "a binary:// log URI needs an absolute program path and no host (binary:///usr/bin/logger)",
        );
    }
    let path = decode(path);
    if path.contains('\0') {
        return Err("the program path contains a NUL byte");
    }
    let mut args = Vec::new();
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        args.push(decode_query(k));
        args.push(decode_query(v));
    }
    Ok(Binary {
        path: PathBuf::from(path),
        args,
    })
}

/// Starts the logging program and waits until it is ready; returns the write ends of the
/// stdout and stderr pipes, for the container's process.
pub fn start(b: &Binary, ctx: &LogContext<'_>) -> Result<(OwnedFd, OwnedFd), StdioError> {
    let sys = |op| move |source| StdioError::Sys { op, source };
    let (out_r, out_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(sys("pipe2 (log stdout)"))?;
    let (err_r, err_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(sys("pipe2 (log stderr)"))?;
    let (ready_r, ready_w) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(sys("pipe2 (log ready)"))?;
    let mut cmd = Command::new(&b.path);
    cmd.args(&b.args)
        .env_clear()
        .env("CONTAINER_ID", ctx.id)
        .env("CONTAINER_NAMESPACE", ctx.namespace)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd.fd_mappings(vec![
        FdMapping {
            parent_fd: out_r,
            child_fd: 3,
        },
        FdMapping {
            parent_fd: err_r,
            child_fd: 4,
        },
        FdMapping {
            parent_fd: ready_w,
            child_fd: 5,
        },
    ])
    .map_err(|_| StdioError::Logger {
        path: b.path.clone(),
        why: "descriptor mapping collision".into(),
    })?;
    let mut child = cmd.spawn().map_err(|e| StdioError::Logger {
        path: b.path.clone(),
        why: format!("starting it: {e}"),
    })?;
    // The shim's copies of the program's ends go now, so that its exit reads as EOF on fd 5.
    drop(cmd);
    let fail = |child: &mut std::process::Child, why: String| {
        let _ = child.kill();
        StdioError::Logger {
            path: b.path.clone(),
            why,
        }
    };
    let mut fds = [PollFd::new(ready_r.as_fd(), PollFlags::POLLIN)];
    match poll(&mut fds, READY_TIMEOUT_MS) {
        Ok(0) => {
            return Err(fail(
                &mut child,
                format!("not ready (fd 5 not closed) within {READY_TIMEOUT_MS} ms"),
            ))
        }
        Ok(_) => {}
        Err(e) => return Err(fail(&mut child, format!("waiting for it: {e}"))),
    }
    let mut byte = [0u8; 1];
    if let Err(e) = nix::unistd::read(&ready_r, &mut byte) {
        return Err(fail(&mut child, format!("reading its ready signal: {e}")));
    }
    // Not waited for: the reaper collects it when the container's output ends.
    drop(child);
    Ok((out_w, err_w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_and_query_arguments() {
        let b = parse("/usr/local/bin/log%20it?tag=web&flag&msg=a+b%26c").unwrap();
        assert_eq!(b.path, PathBuf::from("/usr/local/bin/log it"));
        assert_eq!(b.args, ["tag", "web", "flag", "", "msg", "a b&c"]);
        let b = parse("/bin/logger").unwrap();
        assert!(b.args.is_empty());
    }

    #[test]
    fn refused() {
        assert!(parse("host/bin/logger").is_err());
        assert!(parse("").is_err());
        assert!(parse("/bin/a%00b").is_err());
    }

    #[test]
    fn protocol_fds_env_and_ready() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("logger");
        let out = dir.path().join("out");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho \"$CONTAINER_NAMESPACE/$CONTAINER_ID $1=$2\" > {o}.env\nexec 5>&-\n/bin/cat <&3 > {o}.1 &\n/bin/cat <&4 > {o}.2\nwait\n",
                o = out.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let b = parse(&format!("{}?k=v", script.display())).unwrap();
        let ctx = LogContext {
            id: "c1",
            namespace: "ns",
        };
        let (o, e) = start(&b, &ctx).unwrap();
        nix::unistd::write(&o, b"to stdout\n").unwrap();
        nix::unistd::write(&e, b"to stderr\n").unwrap();
        drop((o, e));
        // The program writes its files as the data arrives (the bound only ends a failing run).
        let read =
            |s: &str| std::fs::read_to_string(format!("{}.{s}", out.display())).unwrap_or_default();
        for _ in 0..1000 {
            if read("2") == "to stderr\n" && read("1") == "to stdout\n" {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(read("env"), "ns/c1 k=v\n");
        assert_eq!(read("1"), "to stdout\n");
        assert_eq!(read("2"), "to stderr\n");
    }
}
