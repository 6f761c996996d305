//! Running the binary under test: `stockade --root <private> ARGS…`, with stdout and stderr
//! captured in files (not pipes: a container started by `create` inherits them and may hold
//! them open long after the command exits), and a timeout.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::fail::Fail;
use crate::host::read_text;
use crate::procs::{self, Exit, Io, Running};

/// Set in every stockade command's environment; a container must never see it.
pub const HOST_ENV_MARKER: &str = "STOCKADE_SPEC_HOST_ONLY";

/// Default timeout of one stockade command.
pub const CMD_TIMEOUT: Duration = Duration::from_secs(30);

/// What a command needs from the test that runs it: the binary, the test's `--root`, where
/// to capture output, and the transcript its diagnostics show. `ctx::Ctx` is the one
/// implementation; the trait keeps this module below the test context that uses it.
pub trait Session {
    /// The stockade binary under test.
    fn binary(&self) -> &Path;
    /// The `--root` passed to every command.
    fn root(&self) -> &Path;
    /// A fresh file for a command's stdout or stderr.
    fn io_file(&self, name: &str) -> PathBuf;
    /// Records a line for the failure diagnostics.
    fn note(&self, line: String);
}

pub struct Invocation<'c> {
    ctx: &'c dyn Session,
    global: Vec<String>,
    args: Vec<String>,
    stdin: Io,
    stdout: Option<Io>,
    stderr: Option<Io>,
    extra_fds: Vec<OwnedFd>,
    cwd: Option<PathBuf>,
    env: Vec<(String, String)>,
    timeout: Duration,
    quiet: bool,
}

/// What a finished command did.
#[derive(Debug)]
pub struct Output {
    pub cmdline: String,
    pub exit: Exit,
    pub stdout: String,
    pub stderr: String,
    /// The files that held stdout/stderr (a container made by `create` keeps writing there).
    pub stdout_path: Option<PathBuf>,
    pub stderr_path: Option<PathBuf>,
}

impl Output {
    pub fn ok(&self) -> bool {
        self.exit.success()
    }

    /// This output if the command succeeded, else a failure quoting its stderr.
    pub fn expect_ok(self) -> Result<Output, String> {
        if self.ok() {
            Ok(self)
        } else {
            Err(format!(
                "`{}` failed ({}): {}",
                self.cmdline,
                self.exit,
                self.stderr.trim()
            ))
        }
    }

    /// Fails unless the command failed (non-zero exit).
    pub fn expect_failure(&self, what: &str) -> Result<(), Fail> {
        if self.ok() {
            Err(Fail::Fail(format!(
                "{what}: `{}` succeeded but must fail (stdout {:?})",
                self.cmdline,
                self.stdout.trim()
            )))
        } else {
            Ok(())
        }
    }

    /// Fails unless stderr contains `text`.
    pub fn expect_stderr_contains(&self, text: &str) -> Result<(), Fail> {
        if self.stderr.contains(text) {
            Ok(())
        } else {
            Err(Fail::Fail(format!(
                "`{}` ({}): stderr does not contain {text:?}: {:?}",
                self.cmdline,
                self.exit,
                self.stderr.trim()
            )))
        }
    }

    /// Re-reads the stdout file (a container may have written to it since).
    pub fn stdout_now(&self) -> String {
        read_optional(self.stdout_path.as_deref())
    }

    /// Re-reads the stderr file.
    pub fn stderr_now(&self) -> String {
        read_optional(self.stderr_path.as_deref())
    }
}

/// The text of a captured stream's file, empty when the stream was not captured.
fn read_optional(path: Option<&std::path::Path>) -> String {
    path.map(read_text).unwrap_or_default()
}

/// A command started with `spawn`, not yet waited for.
pub struct Pending {
    running: Running,
    cmdline: String,
    stdout_path: Option<PathBuf>,
    stderr_path: Option<PathBuf>,
    timeout: Duration,
}

impl Pending {
    /// The pid of the stockade process itself.
    pub fn pid(&self) -> i32 {
        self.running.pid
    }

    /// What it has written to stdout so far.
    pub fn stdout_now(&self) -> String {
        self.stdout_path
            .as_deref()
            .map(read_text)
            .unwrap_or_default()
    }

    /// What it has written to stderr so far.
    pub fn stderr_now(&self) -> String {
        self.stderr_path
            .as_deref()
            .map(read_text)
            .unwrap_or_default()
    }

    pub fn exited(&self) -> bool {
        self.running.try_status().is_some()
    }

    pub fn wait(self) -> Result<Output, String> {
        let exit = self
            .running
            .wait(self.timeout)
            .map_err(|e| format!("`{}` {e}", self.cmdline))?;
        Ok(Output {
            exit,
            stdout: self
                .stdout_path
                .as_deref()
                .map(read_text)
                .unwrap_or_default(),
            stderr: self
                .stderr_path
                .as_deref()
                .map(read_text)
                .unwrap_or_default(),
            cmdline: self.cmdline,
            stdout_path: self.stdout_path,
            stderr_path: self.stderr_path,
        })
    }
}

fn open_capture(path: &Path) -> Result<Io, String> {
    let f = File::create(path).map_err(|e| format!("creating {}: {e}", path.display()))?;
    Ok(Io::Fd(OwnedFd::from(f)))
}

impl<'c> Invocation<'c> {
    pub fn new(ctx: &'c dyn Session, args: Vec<String>) -> Self {
        Invocation {
            ctx,
            global: Vec::new(),
            args,
            stdin: Io::Null,
            stdout: None,
            stderr: None,
            extra_fds: Vec::new(),
            cwd: None,
            env: Vec::new(),
            timeout: CMD_TIMEOUT,
            quiet: false,
        }
    }

    /// A global flag placed before the command (after `--root`).
    pub fn global(mut self, flag: &str) -> Self {
        self.global.push(flag.to_string());
        self
    }

    pub fn stdin(mut self, io: Io) -> Self {
        self.stdin = io;
        self
    }

    pub fn stdin_bytes(self, bytes: &[u8]) -> Self {
        self.stdin(Io::Bytes(bytes.to_vec()))
    }

    /// Standard output to this fd instead of a capture file.
    pub fn stdout(mut self, io: Io) -> Self {
        self.stdout = Some(io);
        self
    }

    /// An extra fd for the command: the first becomes fd 3, the next 4, ….
    pub fn extra_fd(mut self, fd: OwnedFd) -> Self {
        self.extra_fds.push(fd);
        self
    }

    /// An extra environment variable for the command (e.g. `STOCKADE_FAULT`).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    pub fn cwd(mut self, dir: &Path) -> Self {
        self.cwd = Some(dir.to_path_buf());
        self
    }

    /// Leave this command out of the failure transcript (cleanup commands).
    pub fn quiet(mut self) -> Self {
        self.quiet = true;
        self
    }

    pub fn spawn(self) -> Result<Pending, String> {
        let ctx = self.ctx;
        let verb = self
            .args
            .iter()
            .find(|a| !a.starts_with('-'))
            .cloned()
            .unwrap_or_else(|| "cmd".to_string());
        let mut argv = vec![
            "--root".to_string(),
            ctx.root().to_string_lossy().into_owned(),
        ];
        argv.extend(self.global);
        argv.extend(self.args);
        let cmdline = format!("stockade {}", shell_words(&argv));
        if !self.quiet {
            ctx.note(format!("$ {cmdline}"));
        }
        let (stdout, stdout_path) = match self.stdout {
            Some(io) => (io, None),
            None => {
                let p = ctx.io_file(&format!("{verb}.out"));
                (open_capture(&p)?, Some(p))
            }
        };
        let (stderr, stderr_path) = match self.stderr {
            Some(io) => (io, None),
            None => {
                let p = ctx.io_file(&format!("{verb}.err"));
                (open_capture(&p)?, Some(p))
            }
        };
        let running = procs::spawn(procs::Spec {
            program: ctx.binary().to_path_buf(),
            args: argv,
            env: std::iter::once((HOST_ENV_MARKER.to_string(), "leaked".to_string()))
                .chain(self.env)
                .collect(),
            cwd: self.cwd,
            stdin: self.stdin,
            stdout,
            stderr,
            extra_fds: self.extra_fds,
        })?;
        Ok(Pending {
            running,
            cmdline,
            stdout_path,
            stderr_path,
            timeout: self.timeout,
        })
    }

    pub fn run(self) -> Result<Output, String> {
        let ctx = self.ctx;
        let quiet = self.quiet;
        let out = self.spawn()?.wait();
        if !quiet {
            match &out {
                Ok(o) => ctx.note(format!(
                    "  -> {}; stdout {:?}; stderr {:?}",
                    o.exit,
                    clip(&o.stdout),
                    clip(&o.stderr)
                )),
                Err(e) => ctx.note(format!("  -> {e}")),
            }
        }
        out
    }
}

fn clip(s: &str) -> String {
    let s = s.trim();
    if s.len() > 400 {
        let mut end = 400;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &s[..end])
    } else {
        s.to_string()
    }
}

fn shell_words(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:+,@".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
