//! A service's directory (`<storage root>/bundles/<id>/service/`, inside the bundle so that
//! whatever removes the bundle removes it): what `run --image -d` asked for
//! (`config.json`), the monitor's state (`state.json`), the lock the monitor holds while it
//! lives (`monitor.lock`), a stop request (`stop`) and the log files.
//!
//! Whether the monitor lives is the lock, not its pid: a pid is reused, a lock dies with
//! its process (also under SIGKILL), so a dead monitor is never taken for a live one.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::log::LogOptions;
use crate::policy::RestartPolicy;
use crate::{io, MonitorError};

/// The service directory's name in the bundle.
pub const SERVICE_DIR: &str = "service";
/// Largest record read (they are a few hundred bytes).
const MAX_RECORD: u64 = 1 << 20;

/// What the monitor needs to run the service, written once by `run --image -d`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceConfig {
    pub id: String,
    pub image: String,
    /// The bundle the monitor runs (`stockade run --bundle`).
    pub bundle: PathBuf,
    /// The runtime's state directory (`--root`).
    pub root: PathBuf,
    pub restart: RestartPolicy,
    pub log: LogOptions,
    /// `--rm`: remove everything once the container exited for good.
    pub remove: bool,
    /// `--network` as given (`host`, `none` or a network's name).
    pub network: String,
    /// `--publish` values, as given.
    pub ports: Vec<String>,
}

/// The service as the monitor last recorded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceStatus {
    /// The monitor runs and the container is being created.
    Starting,
    Running,
    /// Exited; the monitor waits out the back-off before starting it again.
    Restarting,
    /// Exited for good (the policy does not restart it, or `stop` asked).
    Exited,
    /// The first start failed: the container never ran.
    Failed,
}

/// The monitor's record of the service (`state.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceState {
    pub status: ServiceStatus,
    pub monitor_pid: i32,
    /// The container's init process while it runs.
    pub pid: Option<i32>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The last exit status (128 + signal when a signal ended it).
    pub exit_code: Option<u8>,
    /// How many times the monitor started the container again.
    pub restart_count: u32,
    /// Whether `stop` (or `rm -f`) ended it.
    pub stopped: bool,
    /// Why the monitor could not do its job, when it could not.
    pub error: Option<String>,
}

impl ServiceState {
    pub fn starting(monitor_pid: i32) -> ServiceState {
        ServiceState {
            status: ServiceStatus::Starting,
            monitor_pid,
            pid: None,
            started_at: None,
            finished_at: None,
            exit_code: None,
            restart_count: 0,
            stopped: false,
            error: None,
        }
    }
}

/// The directory of service `id`.
#[derive(Debug, Clone)]
pub struct ServiceDir {
    path: PathBuf,
}

impl ServiceDir {
    /// The service directory in `bundle`.
    pub fn in_bundle(bundle: &Path) -> ServiceDir {
        ServiceDir {
            path: bundle.join(SERVICE_DIR),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn exists(&self) -> bool {
        self.path.is_dir()
    }

    /// Makes the directory (root's alone: it holds the container's output).
    pub fn create(&self) -> Result<(), MonitorError> {
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&self.path)
            .map_err(io("creating", &self.path))
    }

    fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// The pid file the runtime writes for each start.
    pub fn pid_file(&self) -> PathBuf {
        self.file("container.pid")
    }

    pub fn write_config(&self, c: &ServiceConfig) -> Result<(), MonitorError> {
        write_json(&self.file("config.json"), c)
    }

    pub fn read_config(&self) -> Result<ServiceConfig, MonitorError> {
        read_json(&self.file("config.json"))
    }

    pub fn write_state(&self, s: &ServiceState) -> Result<(), MonitorError> {
        write_json(&self.file("state.json"), s)
    }

    /// The monitor's state; `None` before the monitor wrote one.
    pub fn read_state(&self) -> Result<Option<ServiceState>, MonitorError> {
        let path = self.file("state.json");
        match fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            _ => read_json(&path).map(Some),
        }
    }

    /// Asks the monitor not to start the container again; with `remove`, also not to
    /// remove it (`rm` does that itself).
    pub fn request_stop(&self, remove: bool) -> Result<(), MonitorError> {
        let path = self.file("stop");
        write_file(&path, if remove { b"rm\n" } else { b"stop\n" })
    }

    /// Whether `rm` asked the monitor to stop.
    pub fn removal_requested(&self) -> bool {
        fs::read(self.file("stop")).is_ok_and(|b| b == b"rm\n")
    }

    pub fn stop_requested(&self) -> bool {
        fs::symlink_metadata(self.file("stop")).is_ok()
    }

    /// Withdraws a stop request (the service is started again).
    pub fn clear_stop(&self) -> Result<(), MonitorError> {
        let path = self.file("stop");
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("removing", &path)(e)),
            _ => Ok(()),
        }
    }

    /// Takes the monitor's lock, held until the returned value is dropped (or the process
    /// ends). Fails with [`MonitorError::Running`] when another monitor holds it.
    pub fn lock(&self, id: &str) -> Result<Flock<File>, MonitorError> {
        let path = self.file("monitor.lock");
        let f = open_lock(&path)?;
        match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
            Ok(l) => Ok(l),
            Err((_, Errno::EWOULDBLOCK)) => Err(MonitorError::Running {
                id: id.to_string(),
                pid: self
                    .read_state()
                    .ok()
                    .flatten()
                    .map_or(0, |s| s.monitor_pid),
            }),
            Err((_, e)) => Err(io("locking", &path)(e.into())),
        }
    }

    /// Whether a monitor holds the lock now. (The file is not made here: a monitor that
    /// removes its service removes the file while it still runs, and a new, unlocked file
    /// would hide it.)
    pub fn monitor_alive(&self) -> Result<bool, MonitorError> {
        let path = self.file("monitor.lock");
        let f = match OpenOptions::new()
            .read(true)
            .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(io("opening", &path)(e)),
        };
        match Flock::lock(f, FlockArg::LockSharedNonblock) {
            Ok(_) => Ok(false),
            Err((_, Errno::EWOULDBLOCK)) => Ok(true),
            Err((_, e)) => Err(io("locking", &path)(e.into())),
        }
    }
}

fn open_lock(path: &Path) -> Result<File, MonitorError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .open(path)
        .map_err(io("opening", path))
}

fn write_json<T: Serialize>(path: &Path, v: &T) -> Result<(), MonitorError> {
    let mut bytes = serde_json::to_vec_pretty(v).map_err(|e| MonitorError::BadRecord {
        path: path.to_path_buf(),
        why: e.to_string(),
    })?;
    bytes.push(b'\n');
    write_file(path, &bytes)
}

/// Writes `path` atomically (a temporary renamed over it), so a reader never sees half.
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), MonitorError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .open(&tmp)
        .map_err(io("writing", &tmp))?;
    f.write_all(bytes).map_err(io("writing", &tmp))?;
    fs::rename(&tmp, path).map_err(io("renaming", &tmp))
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, MonitorError> {
    use std::io::Read;
    let f = File::open(path).map_err(io("reading", path))?;
    let mut bytes = Vec::new();
    f.take(MAX_RECORD)
        .read_to_end(&mut bytes)
        .map_err(io("reading", path))?;
    serde_json::from_slice(&bytes).map_err(|e| MonitorError::BadRecord {
        path: path.to_path_buf(),
        why: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path) -> ServiceConfig {
        ServiceConfig {
            id: "web".into(),
            image: "localhost/x:1".into(),
            bundle: dir.to_path_buf(),
            root: "/run/stockade".into(),
            restart: RestartPolicy::OnFailure(Some(2)),
            log: LogOptions::default(),
            remove: false,
            network: "stockade".into(),
            ports: vec!["127.0.0.1:8080:80".into()],
        }
    }

    #[test]
    fn records_round_trip_and_a_missing_state_is_none() {
        let t = tempfile::tempdir().unwrap();
        let d = ServiceDir::in_bundle(t.path());
        d.create().unwrap();
        let c = config(t.path());
        d.write_config(&c).unwrap();
        assert_eq!(d.read_config().unwrap(), c);
        assert_eq!(d.read_state().unwrap(), None);
        let mut s = ServiceState::starting(42);
        s.exit_code = Some(3);
        d.write_state(&s).unwrap();
        assert_eq!(d.read_state().unwrap(), Some(s));
        // No temporaries are left behind.
        let names: Vec<_> = fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(
            names.iter().all(|n| !n.to_string_lossy().ends_with(".tmp")),
            "{names:?}"
        );
    }

    #[test]
    fn a_corrupt_record_is_an_error_naming_the_file() {
        let t = tempfile::tempdir().unwrap();
        let d = ServiceDir::in_bundle(t.path());
        d.create().unwrap();
        fs::write(d.path().join("state.json"), b"{\"status\":").unwrap();
        let e = d.read_state().unwrap_err().to_string();
        assert!(e.contains("state.json"), "{e}");
    }

    #[test]
    fn the_lock_says_whether_a_monitor_lives() {
        let t = tempfile::tempdir().unwrap();
        let d = ServiceDir::in_bundle(t.path());
        d.create().unwrap();
        assert!(!d.monitor_alive().unwrap());
        let held = d.lock("web").unwrap();
        assert!(d.monitor_alive().unwrap());
        assert!(matches!(d.lock("web"), Err(MonitorError::Running { .. })));
        drop(held);
        assert!(!d.monitor_alive().unwrap());
        assert!(d.lock("web").is_ok());
    }

    #[test]
    fn a_stop_request_is_recorded_and_withdrawn() {
        let t = tempfile::tempdir().unwrap();
        let d = ServiceDir::in_bundle(t.path());
        d.create().unwrap();
        assert!(!d.stop_requested());
        d.request_stop(false).unwrap();
        assert!(d.stop_requested());
        assert!(!d.removal_requested());
        d.request_stop(true).unwrap();
        assert!(d.removal_requested());
        d.clear_stop().unwrap();
        assert!(!d.removal_requested());
        assert!(!d.stop_requested());
        d.clear_stop().unwrap();
    }
}
