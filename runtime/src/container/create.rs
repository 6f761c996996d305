//! `create`: validate everything, then make the state directory, the host-side resources
//! and the init process, which waits on the start fifo. Any failure undoes all of it.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::signal::Signal;
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::sys::stat::Mode;
use nix::unistd::{mkfifo, Pid};

use super::remove_created::remove_created_under;
use super::ContainerError;
use crate::config::ContainerConfig;
use crate::hooks::{self, Phase};
use crate::id::ContainerId;
use crate::init::{Channel, Message};
use crate::mounts::Created;
use crate::platform::{ContainerPlan, Host, InitHandoff, PlanOptions, Platform};
use crate::process::ProcessSpec;
use crate::state::{Derived, Resources, StateLock, StateStore, Status, StoredState, START_FIFO};
use stockade_fault as fault;

/// Flags of `create` that are not in the bundle.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// Where to write the init's pid (no trailing newline).
    pub pid_file: Option<PathBuf>,
    /// AF_UNIX socket receiving the pty master when `process.terminal` is set.
    pub console_socket: Option<PathBuf>,
    /// Extra descriptors passed to the process.
    pub preserve_fds: u32,
    /// AF_UNIX socket receiving a pidfd of the init (`--pidfd-socket`).
    pub pidfd_socket: Option<PathBuf>,
}

/// Plans container `id` from the bundle, checking everything that can be checked before
/// anything is made.
pub fn plan(
    cfg: &ContainerConfig,
    id: &ContainerId,
    preserve_fds: u32,
) -> Result<ContainerPlan, ContainerError> {
    let listen_fds: u32 = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let options = PlanOptions {
        preserve_fds: preserve_fds.max(listen_fds),
    };
    let plan = ContainerPlan::new(cfg, id, options, Host::TARGET)?;
    Host::check(&plan)?;
    tracing::debug!(
        "create {id}: planned and checked for {:?} (rootfs {})",
        Host::TARGET,
        cfg.root.display()
    );
    Ok(plan)
}

/// A terminal needs a console socket to hand its master to, and a console socket a
/// terminal to hand over.
pub fn check_console(process: &ProcessSpec, opts: &CreateOptions) -> Result<(), ContainerError> {
    match (process.terminal, &opts.console_socket) {
        (true, None) => {
            return Err(ContainerError::Terminal(
                "process.terminal is true but no --console-socket was given to receive the pty".into(),
            ))
        }
        (false, Some(s)) => {
            return Err(ContainerError::Terminal(format!(
                "--console-socket {} was given but process.terminal is false; set terminal to use a console",
                s.display()
            )))
        }
        _ => {}
    }
    Ok(())
}

/// Undoes a create that failed midway: the init, what the platform made, mount points,
/// the state directory.
struct Undo<'a> {
    store: &'a StateStore,
    id: &'a ContainerId,
    root: &'a Path,
    made: Resources,
    init: Option<i32>,
    armed: bool,
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(pid) = self.init {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(Pid::from_raw(pid), None);
        }
        for e in Host::destroy(&self.made) {
            tracing::error!("undoing create of {}: {e}", self.id);
        }
        for w in remove_created_under(self.root, &self.made.mount_points) {
            tracing::warn!("undoing create of {}: {w}", self.id);
        }
        if let Err(e) = self.store.remove(self.id) {
            tracing::error!("undoing create of {}: {e}", self.id);
        }
    }
}

fn owner() -> String {
    let uid = nix::unistd::getuid();
    nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| uid.to_string())
}

/// Creates container `id` from `bundle`. Returns the init's pid; the init is a child of
/// the calling process and waits for `start`.
pub fn create(
    store: &StateStore,
    id: &ContainerId,
    bundle: &Path,
    opts: &CreateOptions,
) -> Result<i32, ContainerError> {
    create_from_config(store, id, &ContainerConfig::load(bundle)?, opts)
}

/// Creates container `id` from a config already loaded from its bundle (as `run --image`
/// has one, having just written it), so that it is not read and parsed twice.
pub fn create_from_config(
    store: &StateStore,
    id: &ContainerId,
    cfg: &ContainerConfig,
    opts: &CreateOptions,
) -> Result<i32, ContainerError> {
    let plan = plan(cfg, id, opts.preserve_fds)?;
    check_console(&plan.process, opts)?;
    super::pidfd::check(opts.pidfd_socket.as_deref())?;
    fault::point("create:before-lock");
    let lock = store.create(id)?;
    fault::point("create:after-lock");
    let mut undo = Undo {
        store,
        id,
        root: &cfg.root,
        made: Resources::default(),
        init: None,
        armed: true,
    };
    let pid = make(store, &lock, cfg, &plan, opts, &mut undo)?;
    if let Some(socket) = &opts.pidfd_socket {
        super::pidfd::send(socket, pid, super::pidfd::INIT)?;
    }
    undo.armed = false;
    fault::point("create:done");
    Ok(pid)
}

fn make(
    store: &StateStore,
    lock: &StateLock,
    cfg: &ContainerConfig,
    plan: &ContainerPlan,
    opts: &CreateOptions,
    undo: &mut Undo<'_>,
) -> Result<i32, ContainerError> {
    let dir = lock.dir().to_path_buf();
    let mut st = StoredState {
        oci_version: crate::config::SPEC_VERSION.to_string(),
        id: plan.id.clone(),
        status: Status::Creating,
        pid: None,
        pid_start_time: None,
        bundle: cfg.bundle.clone(),
        rootfs: cfg.root.clone(),
        created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        owner: owner(),
        annotations: cfg.annotations.clone(),
        resources: Resources::default(),
        limits: plan.limits.clone(),
    };
    store.write(&st)?;
    fault::point("create:after-state");
    // What later commands need of the configuration, as it was at create: later edits to
    // the bundle have no effect.
    store.write_derived(&plan.id, &Derived::from_config(cfg)?)?;
    let fifo = dir.join(START_FIFO);
    mkfifo(&fifo, Mode::from_bits_truncate(0o600)).map_err(|e| ContainerError::Io {
        op: "making start fifo",
        path: fifo.clone(),
        source: e.into(),
    })?;

    fault::point("create:before-prepare");
    tracing::debug!("create {}: prepare_host", plan.id);
    let prepared = Host::prepare_host(plan, &mut undo.made, &mut |made| {
        tracing::debug!("create {}: recording {:?}", plan.id, made.backend);
        // Persisted before each kernel call, so a delete after a SIGKILL finds it.
        st.resources = made.clone();
        store
            .write(&st)
            .map_err(|e| crate::platform::PlatformError::Failed {
                call: "recording what create made in state.json".into(),
                detail: e.to_string(),
            })
    });
    if undo.made != Resources::default() {
        // Recorded at once, so a delete after a crash still finds what was made.
        st.resources = undo.made.clone();
        store.write(&st)?;
    }
    prepared?;
    tracing::debug!("create {}: host prepared: {:?}", plan.id, undo.made.backend);
    fault::point("create:after-prepare");

    let console = match &opts.console_socket {
        Some(path) => Some(connect_console(path)?),
        None => None,
    };
    let (parent_end, child_end) = socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| crate::platform::PlatformError::call("socketpair (create handshake)", e))?;
    let state_dir: OwnedFd = nix::fcntl::open(
        &dir,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| ContainerError::Io {
        op: "opening",
        path: dir.clone(),
        source: e.into(),
    })?;
    let pid = Host::spawn_init(
        plan,
        &undo.made,
        InitHandoff {
            state_dir,
            start_fifo: START_FIFO,
            sync: child_end,
            console,
            inherited: vec![lock.as_raw_fd(), parent_end.as_raw_fd()],
            seccomp_listener: connect_seccomp_listener(&plan.process)?,
        },
        crate::init::container_init::<Host>,
    )?;
    undo.init = Some(pid);
    tracing::debug!("create {}: spawn_init: init pid {pid}", plan.id);
    fault::point("create:after-clone");
    // Recorded before the init may make anything or wait on anything: from here on a
    // delete finds the init (by pid and start time) and kills it.
    st.pid = Some(pid);
    st.pid_start_time = crate::platform::procs::process_start_time(pid);
    store.write(&st)?;
    fault::point("create:after-pid");

    let mut chan = Channel::from(parent_end);
    let handshake = |source| ContainerError::Handshake {
        id: plan.id.clone(),
        source,
    };
    chan.send(&Message::Recorded).map_err(handshake)?;
    tracing::debug!(
        "create {}: handshake: sent {}",
        plan.id,
        Message::Recorded.name()
    );
    // Until the init is prepared: the mount points it makes, each recorded at once.
    await_init(
        &mut chan,
        &Message::Prepared,
        store,
        &mut st,
        &mut undo.made,
    )?;
    fault::point("create:after-prepared");
    tracing::debug!("create {}: prestart and createRuntime hooks", plan.id);
    let state_json =
        serde_json::to_vec(&super::container_state_as(&st, Status::Creating)).unwrap_or_default();
    hooks::run(
        Phase::Prestart,
        &Phase::Prestart.hooks(&cfg.spec),
        &state_json,
    )?;
    hooks::run(
        Phase::CreateRuntime,
        &Phase::CreateRuntime.hooks(&cfg.spec),
        &state_json,
    )?;
    fault::point("create:after-hooks");
    chan.send(&Message::Go {
        creating: state_json,
        created: serde_json::to_vec(&super::container_state_as(&st, Status::Created))
            .unwrap_or_default(),
    })
    .map_err(handshake)?;
    tracing::debug!("create {}: handshake: sent go", plan.id);
    // Then createContainer hooks, entering the root, and the terminal.
    await_init(&mut chan, &Message::Ready, store, &mut st, &mut undo.made)?;
    fault::point("create:after-ready");

    st.status = Status::Created;
    st.resources = undo.made.clone();
    store.write(&st)?;
    tracing::debug!("create {}: created (init pid {pid})", plan.id);
    if let Some(pid_file) = &opts.pid_file {
        write_pid_file(pid_file, pid)?;
    }
    Ok(pid)
}

/// Reads handshake messages until `until`. Each thing the init is about to make on the
/// root filesystem is recorded in the state before the init may make it (it waits for the
/// answer), and its identity once made: a create killed at any instant leaves nothing
/// that delete does not know of.
fn await_init(
    chan: &mut Channel,
    until: &Message,
    store: &StateStore,
    st: &mut StoredState,
    made: &mut Resources,
) -> Result<(), ContainerError> {
    let id = || st.id.clone();
    let handshake = |source| ContainerError::Handshake { id: id(), source };
    loop {
        let msg = chan.recv().map_err(handshake)?;
        if let Some(m) = &msg {
            tracing::debug!("create {}: handshake: received {}", st.id, m.name());
        }
        match msg {
            Some(Message::Intent(path)) => {
                tracing::debug!("create {}: the init is to make {}", st.id, path.display());
                made.mount_points.push(Created::intent(&path));
                st.resources = made.clone();
                store.write(st)?;
                fault::point("create:after-intent");
                chan.send(&Message::Recorded).map_err(handshake)?;
            }
            Some(Message::Made(record)) => {
                tracing::debug!("create {}: the init made {}", st.id, record.path.display());
                // The intent becomes the record with identity (written with the next
                // state; until then the intent covers it).
                match made
                    .mount_points
                    .iter_mut()
                    .rev()
                    .find(|m| m.intended && m.path == record.path)
                {
                    Some(m) => *m = record,
                    None => made.mount_points.push(record),
                }
                fault::point("create:after-mount-point");
            }
            Some(m) if &m == until => {
                st.resources = made.clone();
                store.write(st)?;
                return Ok(());
            }
            Some(Message::Failed(failure)) => {
                return Err(ContainerError::Init { id: id(), failure })
            }
            Some(m) => {
                return Err(ContainerError::InitFailed {
                    id: id(),
                    message: format!(
                        "unexpected handshake message {} while waiting for {}",
                        m.name(),
                        until.name()
                    ),
                })
            }
            None => {
                return Err(ContainerError::InitFailed {
                    id: id(),
                    message: "the init process exited while setting up the container".into(),
                })
            }
        }
    }
}

/// Connects to the caller's console socket, which will receive the pty master.
fn connect_console(path: &Path) -> Result<OwnedFd, ContainerError> {
    let stream = std::os::unix::net::UnixStream::connect(path)
        .map_err(ContainerError::io("connecting to --console-socket", path))?;
    Ok(stream.into())
}

/// Writes the pid file atomically, with no trailing newline (callers parse it as is).
pub fn write_pid_file(path: &Path, pid: i32) -> Result<(), ContainerError> {
    let path = std::path::absolute(path).map_err(ContainerError::io("resolving", path))?;
    let dir = path.parent().unwrap_or(Path::new("/"));
    let tmp = dir.join(format!(
        ".{}.stockade-tmp",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    // Errors name the pid file asked for, not the temporary one.
    std::fs::write(&tmp, pid.to_string()).map_err(ContainerError::io("writing pid file", &path))?;
    std::fs::rename(&tmp, &path).map_err(ContainerError::io("writing pid file", &path))
}

/// Connects to `linux.seccomp.listenerPath` when the profile notifies (see
/// `InitHandoff::seccomp_listener`).
fn connect_seccomp_listener(
    process: &crate::process::ProcessSpec,
) -> Result<Option<OwnedFd>, ContainerError> {
    let Some(path) = process
        .confinement
        .seccomp
        .as_ref()
        .and_then(|p| p.listener_path.as_deref())
    else {
        return Ok(None);
    };
    let socket = std::os::unix::net::UnixStream::connect(path).map_err(ContainerError::io(
        "connecting to linux.seccomp.listenerPath",
        path,
    ))?;
    Ok(Some(socket.into()))
}
