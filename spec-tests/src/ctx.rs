//! The per-test context: a private temporary directory and `--root`, bundles made on the
//! spot, and helpers that run the stockade binary and remember what they ran (printed as
//! diagnostics when a test fails). Dropping or `cleanup()` force-deletes every container the
//! test made.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::bundle::Bundle;
use crate::env::Env;
use crate::fail::Fail;
use crate::host;
// Test modules read files through `ctx`, next to the context they get.
pub use crate::host::read_text;
use crate::stockade::{Invocation, Output, Session};

/// How long to wait for a container to reach a status before giving up.
pub const STATUS_TIMEOUT: Duration = Duration::from_secs(20);

static CTX_SEQ: AtomicUsize = AtomicUsize::new(0);

pub struct Ctx<'e> {
    pub env: &'e Env,
    /// This test's temporary directory (bundles, io files, --root).
    pub dir: PathBuf,
    /// The `--root` passed to every command.
    pub root: PathBuf,
    seq: usize,
    counter: AtomicUsize,
    ids: Mutex<Vec<String>>,
    transcript: Mutex<Vec<String>>,
    cleaned: AtomicBool,
}

impl<'e> Ctx<'e> {
    pub fn new(env: &'e Env, test_name: &str) -> Result<Ctx<'e>, String> {
        let short: String = test_name.chars().take(40).collect();
        let dir = tempfile::Builder::new()
            .prefix(&format!("stockade-spec-{short}-"))
            .tempdir()
            .map_err(|e| format!("making a temporary directory: {e}"))?
            .keep();
        let root = dir.join("state");
        std::fs::create_dir(&root).map_err(|e| format!("mkdir {}: {e}", root.display()))?;
        std::fs::create_dir(dir.join("io")).map_err(|e| format!("mkdir io: {e}"))?;
        Ok(Ctx {
            env,
            dir,
            root,
            seq: CTX_SEQ.fetch_add(1, Ordering::SeqCst),
            counter: AtomicUsize::new(0),
            ids: Mutex::new(Vec::new()),
            transcript: Mutex::new(Vec::new()),
            cleaned: AtomicBool::new(false),
        })
    }

    /// Fails with Skip when the machine cannot run containers (not root, no busybox).
    pub fn require_containers(&self) -> Result<(), Fail> {
        match &self.env.cannot_run {
            Some(reason) => Err(Fail::Skip(reason.clone())),
            None => Ok(()),
        }
    }

    /// A container id unique on this host (jail names are host-global on FreeBSD).
    pub fn id(&self, name: &str) -> String {
        let n = self.counter.fetch_add(1, Ordering::SeqCst);
        format!("{name}-{}-{}-{n}", std::process::id(), self.seq)
    }

    /// A fresh path inside the test's directory (not created).
    pub fn path(&self, name: &str) -> PathBuf {
        let n = self.counter.fetch_add(1, Ordering::SeqCst);
        self.dir.join(format!("{name}.{n}"))
    }

    /// A fresh file inside the test's io directory, for a command's stdout or stderr.
    pub fn io_file(&self, name: &str) -> PathBuf {
        let n = self.counter.fetch_add(1, Ordering::SeqCst);
        self.dir.join("io").join(format!("{n}.{name}"))
    }

    /// Records a line for the failure diagnostics.
    pub fn note(&self, line: impl Into<String>) {
        self.transcript
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(line.into());
    }

    /// The last commands and notes, for a failing test's diagnostics.
    pub fn transcript(&self) -> Vec<String> {
        let t = self.transcript.lock().unwrap_or_else(|e| e.into_inner());
        let skip = t.len().saturating_sub(12);
        t[skip..].to_vec()
    }

    /// Remembers an id so that cleanup force-deletes it.
    pub fn track(&self, id: &str) {
        let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        if !ids.iter().any(|i| i == id) {
            ids.push(id.to_string());
        }
    }

    /// A stockade command with this test's `--root`.
    pub fn sk<S: AsRef<str>>(&self, args: &[S]) -> Invocation<'_> {
        Invocation::new(self, args.iter().map(|a| a.as_ref().to_string()).collect())
    }

    /// A bundle with a fresh busybox root filesystem whose process runs `args`.
    pub fn bundle(&self, args: &[&str]) -> Result<Bundle, Fail> {
        self.require_containers()?;
        let dir = self.path("bundle");
        Bundle::new(&dir, self.env, args).map_err(Fail::Fail)
    }

    /// `create --bundle B ID` (saving the bundle's config first); the outcome, success or not.
    pub fn create(&self, id: &str, bundle: &Bundle) -> Result<Output, Fail> {
        bundle.save()?;
        self.track(id);
        Ok(self
            .sk(&["create", "--bundle", &bundle.dir.to_string_lossy(), id])
            .run()?)
    }

    /// `create`, which must succeed.
    pub fn create_ok(&self, id: &str, bundle: &Bundle) -> Result<Output, Fail> {
        let out = self.create(id, bundle)?;
        Ok(out.expect_ok()?)
    }

    /// `start ID`, which must succeed.
    pub fn start_ok(&self, id: &str) -> Result<Output, Fail> {
        Ok(self.sk(&["start", id]).run()?.expect_ok()?)
    }

    /// `create` then `start`; returns create's output (whose files are the container's stdio).
    pub fn create_start(&self, id: &str, bundle: &Bundle) -> Result<Output, Fail> {
        let out = self.create_ok(id, bundle)?;
        self.start_ok(id)?;
        Ok(out)
    }

    /// `exec --detach` of `args` in `id`; returns the pid from its pid file. (Only the
    /// Linux checks of host-side state need the pid.)
    #[cfg(target_os = "linux")]
    pub fn exec_detached(&self, id: &str, args: &[&str]) -> Result<i32, Fail> {
        let pid_file = self.path(&format!("exec-{}.pid", args.join("_").replace('/', "_")));
        let pid_arg = pid_file.to_string_lossy().into_owned();
        let mut argv = vec!["exec", "--detach", "--pid-file", pid_arg.as_str(), id];
        argv.extend_from_slice(args);
        self.sk(&argv).run()?.expect_ok()?;
        read_text(&pid_file)
            .parse()
            .map_err(|e| Fail::Fail(format!("exec pid file {}: {e}", pid_file.display())))
    }

    /// Creates and starts a container `name` from `b`, waits until it has stopped, and
    /// returns what it printed on stdout, and its id. Both streams go into the notes.
    pub fn run_to_stop(&self, name: &str, b: &Bundle) -> Result<(String, String), Fail> {
        let id = self.id(name);
        let out = self.create_start(&id, b)?;
        self.wait_status(&id, "stopped")?;
        let text = out.stdout_now();
        self.note(format!(
            "container stdout: {text:?}; stderr: {:?}",
            out.stderr_now()
        ));
        Ok((text, id))
    }

    /// `state ID` parsed as JSON; the command must succeed.
    pub fn state(&self, id: &str) -> Result<Value, Fail> {
        let out = self.sk(&["state", id]).run()?.expect_ok()?;
        serde_json::from_str(&out.stdout)
            .map_err(|e| Fail::Fail(format!("state output is not JSON ({e}): {:?}", out.stdout)))
    }

    /// The `status` field of `state ID`.
    pub fn status(&self, id: &str) -> Result<String, Fail> {
        let st = self.state(id)?;
        st.get("status")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| Fail::Fail(format!("state has no string status: {st}")))
    }

    /// The `pid` field of `state ID`.
    pub fn pid(&self, id: &str) -> Result<i32, Fail> {
        let st = self.state(id)?;
        st.get("pid")
            .and_then(Value::as_i64)
            .filter(|p| *p > 0)
            .map(|p| p as i32)
            .ok_or_else(|| Fail::Fail(format!("state has no positive pid: {st}")))
    }

    /// Polls `state` until the status is `want` (fails after STATUS_TIMEOUT).
    pub fn wait_status(&self, id: &str, want: &str) -> Result<(), Fail> {
        let deadline = Instant::now() + STATUS_TIMEOUT;
        let mut last = String::new();
        while Instant::now() < deadline {
            last = self.status(id)?;
            if last == want {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(Fail::Fail(format!(
            "container {id} did not become {want} within {}s (last status {last:?})",
            STATUS_TIMEOUT.as_secs()
        )))
    }

    /// Polls until `cond` holds (fails with `what` after STATUS_TIMEOUT).
    pub fn wait_until(&self, what: &str, mut cond: impl FnMut() -> bool) -> Result<(), Fail> {
        let deadline = Instant::now() + STATUS_TIMEOUT;
        while Instant::now() < deadline {
            if cond() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(Fail::Fail(format!(
            "gave up after {}s waiting for: {what}",
            STATUS_TIMEOUT.as_secs()
        )))
    }

    /// Entries under `--root`, ignoring dot-files (a runtime may keep a global lock there).
    pub fn root_entries(&self) -> Vec<String> {
        match std::fs::read_dir(&self.root) {
            Ok(rd) => rd
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Fails unless `--root` holds nothing (for the id, or at all).
    pub fn ensure_root_empty(&self, why: &str) -> Result<(), Fail> {
        let entries = self.root_entries();
        if entries.is_empty() {
            Ok(())
        } else {
            Err(Fail::Fail(format!(
                "{why}: --root {} still holds {entries:?}",
                self.root.display()
            )))
        }
    }

    /// Force-deletes every container this test made, then removes the test's directory
    /// unless something is still mounted under it. Returns notes on anything left behind.
    pub fn cleanup(&self) -> Vec<String> {
        if self.cleaned.swap(true, Ordering::SeqCst) {
            return Vec::new();
        }
        let mut notes = Vec::new();
        let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for entry in self.root_entries() {
            if !ids.contains(&entry) {
                ids.push(entry);
            }
        }
        // Ids a test tried and the runtime refused (empty, `..`, with `/`) are not directories
        // of --root; there is nothing to delete for them.
        ids.retain(|id| !id.is_empty() && id != "." && id != ".." && !id.contains('/'));
        for id in &ids {
            match self.sk(&["delete", "--force", id.as_str()]).quiet().run() {
                Ok(out) if out.exit.success() => {}
                Ok(out) => {
                    if self.root.join(id).exists() {
                        notes.push(format!(
                            "delete --force {id}: {}: {}",
                            out.exit,
                            out.stderr.trim()
                        ))
                    }
                }
                Err(e) => notes.push(format!("delete --force {id}: {e}")),
            }
        }
        match host::mounts_under(&self.dir) {
            Ok(m) if !m.is_empty() => {
                notes.push(format!(
                    "left {} in place: still mounted under it: {m:?}",
                    self.dir.display()
                ));
                return notes;
            }
            _ => {}
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            notes.push(format!("removing {}: {e}", self.dir.display()));
        }
        notes
    }
}

impl Session for Ctx<'_> {
    fn binary(&self) -> &Path {
        &self.env.stockade
    }

    fn root(&self) -> &Path {
        &self.root
    }

    fn io_file(&self, name: &str) -> PathBuf {
        Ctx::io_file(self, name)
    }

    fn note(&self, line: String) {
        Ctx::note(self, line)
    }
}

impl Drop for Ctx<'_> {
    fn drop(&mut self) {
        for note in self.cleanup() {
            println!("# cleanup: {note}");
        }
    }
}
