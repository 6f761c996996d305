//! Child processes: the suite is a subreaper, the way containerd's shim and conmon are, so
//! that a container's init process (left behind by `create`) is reparented to us and reaped
//! here. One reaper thread is the only caller of `waitpid`; commands we spawn collect their
//! exit status from it, with a timeout so that a hung command never hangs the suite.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Condvar, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// Exit status as the kernel reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

impl Exit {
    fn from_raw(status: i32) -> Exit {
        if libc::WIFEXITED(status) {
            Exit::Code(libc::WEXITSTATUS(status))
        } else if libc::WIFSIGNALED(status) {
            Exit::Signal(libc::WTERMSIG(status))
        } else {
            Exit::Code(-1)
        }
    }

    pub fn success(&self) -> bool {
        *self == Exit::Code(0)
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exit {c}"),
            Exit::Signal(s) => write!(f, "killed by signal {s}"),
        }
    }
}

struct Table {
    /// Commands we spawned and wait for: pid → status once reaped.
    commands: HashMap<i32, Option<i32>>,
}

fn table() -> &'static (Mutex<Table>, Condvar) {
    static TABLE: OnceLock<(Mutex<Table>, Condvar)> = OnceLock::new();
    TABLE.get_or_init(|| {
        (
            Mutex::new(Table {
                commands: HashMap::new(),
            }),
            Condvar::new(),
        )
    })
}

/// Makes this process a subreaper and starts the reaper thread. Call once, before any child
/// is spawned through `spawn`, and never use `std::process::Child::wait` afterwards.
pub fn start_reaper() {
    become_subreaper();
    thread::Builder::new()
        .name("reaper".into())
        .spawn(reap_forever)
        .expect("spawning the reaper thread");
}

#[cfg(target_os = "linux")]
fn become_subreaper() {
    // SAFETY: PR_SET_CHILD_SUBREAPER takes an integer flag and touches no memory of ours.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    if rc != 0 {
        eprintln!(
            "warning: PR_SET_CHILD_SUBREAPER failed: {}",
            std::io::Error::last_os_error()
        );
    }
}

#[cfg(target_os = "freebsd")]
fn become_subreaper() {
    // SAFETY: PROC_REAP_ACQUIRE takes no data argument; a null pointer is what it expects.
    let rc = unsafe {
        libc::procctl(
            libc::P_PID,
            libc::getpid() as libc::id_t,
            libc::PROC_REAP_ACQUIRE,
            std::ptr::null_mut(),
        )
    };
    if rc != 0 {
        eprintln!(
            "warning: PROC_REAP_ACQUIRE failed: {}",
            std::io::Error::last_os_error()
        );
    }
}

#[cfg(not(any(target_os = "linux", target_os = "freebsd")))]
fn become_subreaper() {}

fn reap_forever() {
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes one int through a valid pointer to a local.
        let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
        if pid > 0 {
            // Taking the lock after the reap orders us after any spawn that was registering
            // this pid (spawn holds the lock from fork until the pid is in the table).
            let (lock, cvar) = table();
            let mut t = lock.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(slot) = t.commands.get_mut(&pid) {
                *slot = Some(status);
                cvar.notify_all();
            }
            // Anything else is an orphan (a container's init or one of its children, a hook's
            // leftover): reaping it is all a subreaper owes it.
        } else {
            // ECHILD (no children right now) or EINTR.
            thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Where a child's standard stream comes from or goes to.
pub enum Io {
    Null,
    /// A file (already opened by the caller) or one end of a pipe.
    Fd(OwnedFd),
    /// A pipe fed with these bytes by a helper thread, then closed.
    Bytes(Vec<u8>),
}

/// A command to run: program, arguments, standard streams, extra fds at 3, 4, ….
pub struct Spec {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
    pub stdin: Io,
    pub stdout: Io,
    pub stderr: Io,
    pub extra_fds: Vec<OwnedFd>,
}

/// A spawned command.
pub struct Running {
    pub pid: i32,
}

fn stdio(io: Io) -> Result<(Stdio, Option<Vec<u8>>), String> {
    Ok(match io {
        Io::Null => (Stdio::null(), None),
        Io::Fd(fd) => (Stdio::from(File::from(fd)), None),
        Io::Bytes(b) => (Stdio::piped(), Some(b)),
    })
}

/// Spawns a command and registers it with the reaper.
pub fn spawn(spec: Spec) -> Result<Running, String> {
    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args);
    for (k, v) in &spec.env {
        cmd.env(k, v);
    }
    if let Some(cwd) = &spec.cwd {
        cmd.current_dir(cwd);
    }
    let (stdin, feed) = stdio(spec.stdin)?;
    let (stdout, _) = stdio(spec.stdout)?;
    let (stderr, _) = stdio(spec.stderr)?;
    cmd.stdin(stdin).stdout(stdout).stderr(stderr);
    let sources: Vec<i32> = spec.extra_fds.iter().map(|f| f.as_raw_fd()).collect();
    if !sources.is_empty() {
        // SAFETY: the closure runs between fork and exec and only calls fcntl/dup2, which are
        // async-signal-safe; it allocates nothing (`sources` was built before the fork).
        unsafe {
            cmd.pre_exec(move || {
                // First move every source above the target range so no dup2 clobbers a source.
                let mut high = [0i32; 64];
                for (i, &fd) in sources.iter().enumerate().take(64) {
                    let d = libc::fcntl(fd, libc::F_DUPFD, 200);
                    if d < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    high[i] = d;
                }
                for (i, &fd) in high.iter().enumerate().take(sources.len().min(64)) {
                    if libc::dup2(fd, 3 + i as i32) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
    }

    let (lock, _) = table();
    let mut t = lock.lock().unwrap_or_else(|e| e.into_inner());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("spawning {}: {e}", spec.program.display()))?;
    let pid = child.id() as i32;
    t.commands.insert(pid, None);
    drop(t);
    drop(spec.extra_fds);

    if let Some(bytes) = feed {
        if let Some(mut w) = child.stdin.take() {
            thread::spawn(move || {
                let _ = w.write_all(&bytes);
                // Dropping `w` closes the pipe: the reader sees EOF.
            });
        }
    }
    // `child` is dropped without waiting: the reaper collects it.
    drop(child);
    Ok(Running { pid })
}

impl Running {
    /// Waits for the command to exit. On timeout it is killed with SIGKILL and an error
    /// saying so is returned.
    pub fn wait(self, timeout: Duration) -> Result<Exit, String> {
        match wait_pid(self.pid, timeout) {
            Some(st) => Ok(st),
            None => {
                // SAFETY: kill(2) with a pid we spawned and have not yet reaped (it is still
                // registered, so the reaper has not released it for reuse).
                unsafe { libc::kill(self.pid, libc::SIGKILL) };
                let after = wait_pid(self.pid, Duration::from_secs(10));
                Err(format!(
                    "timed out after {}s and was killed (then: {})",
                    timeout.as_secs(),
                    after
                        .map(|e| e.to_string())
                        .unwrap_or("still not reaped".into())
                ))
            }
        }
    }

    /// The exit status if the command has already exited.
    pub fn try_status(&self) -> Option<Exit> {
        let (lock, _) = table();
        let t = lock.lock().unwrap_or_else(|e| e.into_inner());
        t.commands
            .get(&self.pid)
            .copied()
            .flatten()
            .map(Exit::from_raw)
    }
}

fn wait_pid(pid: i32, timeout: Duration) -> Option<Exit> {
    let deadline = Instant::now() + timeout;
    let (lock, cvar) = table();
    let mut t = lock.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if let Some(Some(st)) = t.commands.get(&pid) {
            let st = *st;
            t.commands.remove(&pid);
            return Some(Exit::from_raw(st));
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        t = cvar
            .wait_timeout(t, deadline - now)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}

/// A pipe with both ends close-on-exec (set atomically: other threads fork concurrently).
pub fn pipe() -> Result<(OwnedFd, OwnedFd), String> {
    use std::os::fd::FromRawFd;
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 writes two ints into the array we pass.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    if rc != 0 {
        return Err(format!("pipe2: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: both fds are fresh and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Reads everything from `fd` on a helper thread, giving up after `timeout` (the thread is
/// left to finish on its own; it ends once every writer has closed the pipe).
pub fn read_to_end_timeout(fd: OwnedFd, timeout: Duration) -> Result<Vec<u8>, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        use std::io::Read;
        let mut f = File::from(fd);
        let mut buf = Vec::new();
        let r = f.read_to_end(&mut buf).map(|_| buf);
        let _ = tx.send(r);
    });
    match rx.recv_timeout(timeout) {
        Ok(Ok(b)) => Ok(b),
        Ok(Err(e)) => Err(format!("reading pipe: {e}")),
        Err(_) => Err(format!(
            "pipe not closed within {}s (some process still holds its write end)",
            timeout.as_secs()
        )),
    }
}
