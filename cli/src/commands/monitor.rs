//! The monitor of a detached service (conmon's role): `run --image -d` starts
//! `stockade monitor ID` in a session of its own and returns; the monitor runs the
//! container with `stockade run --bundle` as its child, stdout and stderr on pipes it
//! reads into the log, records each start and exit in the service directory, starts the
//! container again as the restart policy says, and with `--rm` removes everything once
//! the container exited for good.
//!
//! Why a child `stockade run` rather than the runtime's create/start in this process: the
//! foreground `run` already makes the container with the stdio it is given, waits for it,
//! forwards signals and deletes the runtime's state at its exit; the monitor only has to
//! supply the pipes. Why a re-executed binary rather than a forked child: a process that
//! has threads (the log readers) must not fork, and a fresh process has no state of the
//! command that started it.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use stockade_image::provision;
use stockade_monitor::log::{Entry, LineSplitter, LogWriter, Stream};
use stockade_monitor::policy::Backoff;
use stockade_monitor::record::{ServiceConfig, ServiceDir, ServiceState, ServiceStatus};
use stockade_runtime::container;
use stockade_runtime::id::ContainerId;
use stockade_runtime::state::{StateStore, Status};

use crate::args::service::MonitorArgs;
use crate::args::storage::StorageLocation;
use crate::args::GlobalArgs;

use super::service_paths::service_dir;

/// How often the monitor looks for the pid file and for a stop request.
const POLL: Duration = Duration::from_millis(20);

/// Starts the monitor of service `id`, detached from this process's stdio, and returns it.
pub fn spawn(global: &GlobalArgs, storage: &StorageLocation, id: &str) -> anyhow::Result<Child> {
    let exe = std::env::current_exe().context("finding the stockade binary")?;
    let mut cmd = Command::new(exe);
    // Paths absolute, as the monitor runs in `/` (it must hold no directory busy).
    if let Some(c) = &global.config {
        cmd.arg("--config")
            .arg(std::path::absolute(c).context("the config file")?);
    }
    let root = std::path::absolute(&global.root).context("the state directory")?;
    let storage_root = std::path::absolute(&storage.storage_root).context("the storage root")?;
    cmd.arg("--root").arg(root);
    if global.debug {
        cmd.arg("--debug");
    }
    cmd.arg("monitor").arg("--storage-root").arg(storage_root);
    if let Some(d) = storage.storage_driver {
        cmd.arg("--storage-driver")
            .arg(crate::settings::file::driver_flag_value(d));
    }
    if let Some(z) = &storage.zfs_dataset {
        cmd.arg("--zfs-dataset").arg(z);
    }
    cmd.arg(id)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd.spawn().context("starting the service monitor")
}

/// `stockade monitor ID`; exits 0 once the container ran at least once, 1 when its first
/// start failed.
pub fn run(global: &GlobalArgs, a: &MonitorArgs) -> anyhow::Result<u8> {
    // A session of its own: no terminal's hangup or job control reaches it. It is not a
    // process group leader (its parent made it), so this does not fail.
    let _ = nix::unistd::setsid();
    if !provision::is_provisioned(&a.storage.storage_root, &a.id) {
        anyhow::bail!("monitor: no container {} made by `run --image`", a.id);
    }
    let dir = service_dir(&a.storage.storage_root, &a.id);
    // Before any thread exists, so that all of them (and the children) have them blocked.
    stop_on_signals(global, &a.storage.storage_root, &a.id, &dir)?;
    let _lock = dir.lock(&a.id)?;
    if dir.removal_requested() {
        // `rm`/`delete` got here first (the `run -d` that started this was killed).
        return Ok(1);
    }
    let cfg = dir.read_config()?;
    let mut st = ServiceState::starting(std::process::id() as i32);
    // The restart count survives a `start` of a stopped service.
    if let Ok(Some(old)) = dir.read_state() {
        st.restart_count = old.restart_count;
    }
    dir.write_state(&st)?;
    let ran = supervise(global, &cfg, &dir, &mut st);
    st.pid = None;
    st.status = if ran {
        ServiceStatus::Exited
    } else {
        ServiceStatus::Failed
    };
    st.stopped = dir.stop_requested();
    dir.write_state(&st)?;
    // A first start that failed is left for `run` to report (and, with --rm, remove);
    // `rm` removes what it asked to stop itself.
    if ran && cfg.remove && !dir.removal_requested() {
        if let Err(e) = remove(global, &a.storage, &cfg.id) {
            // Nobody reads this process's stderr: the record says why it is still there.
            st.error = Some(format!("removing the container (--rm): {e:#}"));
            let _ = dir.write_state(&st);
            return Err(e);
        }
    }
    Ok(if ran { 0 } else { 1 })
}

/// TERM, INT or HUP to the monitor stop the service as `stockade stop` does (the stop
/// signal to the container, no restart); a second one SIGKILLs every process of it. The
/// signals are blocked and taken by a thread: the children inherit the mask, and `run`
/// blocks these signals itself anyway (the container's init resets its mask).
fn stop_on_signals(
    global: &GlobalArgs,
    storage_root: &Path,
    id: &str,
    dir: &ServiceDir,
) -> anyhow::Result<()> {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        set.add(s);
    }
    set.thread_block()
        .context("blocking the signals that stop the service")?;
    let (root, storage_root, id, dir) = (
        global.root.clone(),
        storage_root.to_path_buf(),
        id.to_string(),
        dir.clone(),
    );
    std::thread::spawn(move || {
        let mut signal = super::stop::stop_settings(&storage_root, &id).0;
        let mut all = false;
        while set.wait().is_ok() {
            // An `rm` that asked first keeps its request (the removal is its).
            if !dir.stop_requested() {
                let _ = dir.request_stop(false);
            }
            if let (Ok(store), Ok(cid)) = (StateStore::open(&root), ContainerId::parse(&id)) {
                let _ = container::kill(&store, &cid, signal, all);
            }
            signal = nix::sys::signal::Signal::SIGKILL;
            all = true;
        }
    });
    Ok(())
}

/// Runs the container until the policy lets it rest; returns whether it ever started.
fn supervise(
    global: &GlobalArgs,
    cfg: &ServiceConfig,
    dir: &ServiceDir,
    st: &mut ServiceState,
) -> bool {
    let writer = match LogWriter::open(dir.path(), cfg.log.clone()) {
        Ok(w) => Arc::new(Mutex::new(w)),
        Err(e) => {
            st.error = Some(e.to_string());
            return false;
        }
    };
    let mut backoff = Backoff::default();
    let mut ever = false;
    loop {
        if dir.stop_requested() {
            return ever;
        }
        let began = Instant::now();
        let (code, started) = match run_once(global, cfg, dir, &writer, st) {
            Ok(r) => r,
            Err(e) => {
                st.error = Some(format!("{e:#}"));
                return ever;
            }
        };
        ever |= started;
        if !ever {
            // Its stderr (the runtime's message) is in the log; `run -d` shows its end.
            st.error = Some(format!("the container did not start (exit status {code})"));
            return false;
        }
        st.pid = None;
        st.exit_code = Some(code);
        st.finished_at = Some(Utc::now());
        if !cfg
            .restart
            .restarts(code, st.restart_count, dir.stop_requested())
        {
            return ever;
        }
        st.status = ServiceStatus::Restarting;
        let _ = dir.write_state(st);
        let wait = backoff.after_run(began.elapsed());
        let until = Instant::now() + wait;
        while Instant::now() < until {
            if dir.stop_requested() {
                return ever;
            }
            std::thread::sleep(POLL.min(until - Instant::now()));
        }
        st.restart_count += 1;
    }
}

/// One run of the container: returns its exit status and whether it started.
fn run_once(
    global: &GlobalArgs,
    cfg: &ServiceConfig,
    dir: &ServiceDir,
    writer: &Arc<Mutex<LogWriter>>,
    st: &mut ServiceState,
) -> anyhow::Result<(u8, bool)> {
    let pid_file = dir.pid_file();
    match std::fs::remove_file(&pid_file) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("removing {}", pid_file.display()))
        }
        _ => {}
    }
    let exe = std::env::current_exe().context("finding the stockade binary")?;
    let spawned = Utc::now();
    let mut cmd = Command::new(exe);
    // The config file `run -d` was given (its defaults apply to the runtime's flags too).
    if let Some(c) = &global.config {
        cmd.arg("--config").arg(c);
    }
    let mut child = cmd
        .arg("--root")
        .arg(&cfg.root)
        .arg("run")
        .arg("--bundle")
        .arg(&cfg.bundle)
        .arg("--pid-file")
        .arg(&pid_file)
        .arg(&cfg.id)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting the container")?;
    let readers = [
        child
            .stdout
            .take()
            .map(|o| reader(o, Stream::Stdout, writer)),
        child
            .stderr
            .take()
            .map(|e| reader(e, Stream::Stderr, writer)),
    ];
    let mut started = false;
    let status = loop {
        if let Some(s) = child.try_wait().context("waiting for the container")? {
            break s;
        }
        if !started {
            // The pid file is written by create; the container runs once start is done.
            if let Some(pid) = read_pid(&pid_file).filter(|_| runtime_started(cfg)) {
                started = true;
                st.pid = Some(pid);
                st.status = ServiceStatus::Running;
                st.started_at = Some(Utc::now());
                let _ = dir.write_state(st);
                // Nothing more to look for: wait for the exit itself.
                break child.wait().context("waiting for the container")?;
            }
        }
        std::thread::sleep(POLL);
    };
    // A container that ran and exited between two looks still wrote its pid file; its
    // start is then known to the poll interval only.
    if !started && read_pid(&pid_file).is_some() {
        started = true;
        st.started_at = Some(spawned);
    }
    for r in readers.into_iter().flatten() {
        let _ = r.join();
    }
    Ok((exit_code(status), started))
}

/// The thread copying one of the container's streams into the log.
fn reader(
    mut from: impl Read + Send + 'static,
    stream: Stream,
    writer: &Arc<Mutex<LogWriter>>,
) -> std::thread::JoinHandle<()> {
    let writer = Arc::clone(writer);
    std::thread::spawn(move || {
        let mut split = LineSplitter::default();
        let mut buf = vec![0u8; 8192];
        let write = |pieces: Vec<(Vec<u8>, bool)>| {
            let Ok(mut w) = writer.lock() else { return };
            for (text, partial) in pieces {
                // A full disk loses lines, not the service.
                let _ = w.write(&Entry {
                    time: Utc::now(),
                    stream,
                    partial,
                    text,
                });
            }
        };
        loop {
            match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => write(split.push(&buf[..n])),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        write(split.finish().into_iter().collect());
    })
}

/// Whether the runtime's state of the service's container is past `created`.
fn runtime_started(cfg: &ServiceConfig) -> bool {
    let Ok(id) = ContainerId::parse(&cfg.id) else {
        return false;
    };
    StateStore::open(&cfg.root)
        .and_then(|s| s.read(&id))
        .is_ok_and(|st| {
            !matches!(
                container::container_state(&st).status,
                Status::Created | Status::Creating
            )
        })
}

fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The container's status as `run` returns it: its exit code, or 128 + the signal.
fn exit_code(s: ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (s.code(), s.signal()) {
        (Some(c), _) => u8::try_from(c).unwrap_or(255),
        (None, Some(sig)) => 128u8.saturating_add(u8::try_from(sig).unwrap_or(127)),
        _ => 255,
    }
}

/// Removes service `id`: the runtime's container if any, then what `run --image` made.
pub fn remove(global: &GlobalArgs, storage: &StorageLocation, id: &str) -> anyhow::Result<()> {
    let store = StateStore::open(&global.root)?;
    if let Ok(cid) = ContainerId::parse(id) {
        if store.dir(&cid).exists() {
            container::delete(&store, &cid, true)?;
        }
    }
    let driver = storage.config(Default::default()).open()?;
    provision::remove_container(&storage.storage_root, driver.as_ref(), id)
        .with_context(|| format!("removing the bundle and root filesystem of {id}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;

    use super::*;

    #[test]
    fn exit_codes_are_runs_own_or_128_plus_the_signal() {
        // Raw wait statuses: an exit code in the second byte, a signal in the first.
        assert_eq!(exit_code(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(exit_code(ExitStatus::from_raw(0)), 0);
        assert_eq!(exit_code(ExitStatus::from_raw(9)), 137);
        assert_eq!(exit_code(ExitStatus::from_raw(15)), 143);
    }
}
