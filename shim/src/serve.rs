//! The shim daemon: its own session, subreaper, log to containerd's `log` FIFO in the
//! bundle, the task service on its socket, and the reaper turning SIGCHLD into exits.

use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::args::Args;
use crate::events::Publisher;
use crate::service::Service;
use crate::table::Table;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("-socket is required to serve")]
    NoSocket,
    #[error("{op}: {source}")]
    Io { op: String, source: std::io::Error },
    #[error("ttrpc server: {0}")]
    Server(String),
    #[error("runtime state: {0}")]
    State(String),
}

fn io_err(op: impl Into<String>) -> impl FnOnce(std::io::Error) -> ServeError {
    let op = op.into();
    move |source| ServeError::Io { op, source }
}

/// containerd's log FIFO for this shim (`log` in the bundle), else nothing.
fn open_log() -> Option<std::fs::File> {
    use nix::fcntl::OFlag;
    let fd = nix::fcntl::open(
        Path::new("log"),
        OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ok()?;
    let fl = nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_GETFL).ok()?;
    nix::fcntl::fcntl(
        &fd,
        nix::fcntl::FcntlArg::F_SETFL(OFlag::from_bits_truncate(fl) - OFlag::O_NONBLOCK),
    )
    .ok()?;
    Some(std::fs::File::from(fd))
}

pub fn run(args: &Args) -> Result<(), ServeError> {
    let socket = args.socket.clone().ok_or(ServeError::NoSocket)?;
    // Its own session: containerd or a terminal going away does not signal the shim.
    let _ = nix::unistd::setsid();
    let level = if args.debug { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::new(level);
    match open_log() {
        Some(f) => {
            // A panic message (stderr) lands in containerd's log too.
            let _ = nix::unistd::dup2_stderr(&f);
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_ansi(false)
                .with_writer(Mutex::new(f))
                .init()
        }
        None => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(false)
            .with_writer(std::io::sink)
            .init(),
    }
    if let Err(e) = crate::sys::become_subreaper() {
        tracing::warn!("becoming the subreaper: {e}; orphans of containers go to init");
    }
    if let Some(dir) = socket.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(dir)
            .map_err(io_err(format!("creating {}", dir.display())))?;
    }
    let listener = std::os::unix::net::UnixListener::bind(&socket)
        .map_err(io_err(format!("binding {}", socket.display())))?;
    listener
        .set_nonblocking(true)
        .map_err(io_err("set_nonblocking"))?;
    let root = crate::launch::state_root(&args.namespace);
    let store = stockade_runtime::state::StateStore::open(&root)
        .map_err(|e| ServeError::State(e.to_string()))?;

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io_err("starting the async runtime"))?;
    let result = rt.block_on(async {
        let events = Publisher::spawn(
            std::env::var("TTRPC_ADDRESS")
                .ok()
                .filter(|s| !s.is_empty()),
            args.namespace.clone(),
        );
        let table = Arc::new(Mutex::new(Table::default()));
        let service = Arc::new(Service::new(store, events, table.clone()));
        let exit = service.exit.clone();
        let tokio_listener = tokio::net::UnixListener::from_std(listener)
            .map_err(io_err("registering the socket"))?;
        let mut server = ttrpc::asynchronous::Server::new()
            .add_listener(tokio_listener.into())
            .register_service(task_services(service.clone()));
        server
            .start()
            .await
            .map_err(|e| ServeError::Server(e.to_string()))?;
        tokio::spawn(reap(service, table));
        // Listening: tell `start`, then let go of its pipe.
        let mut out = std::io::stdout();
        let _ = out.write_all(b"ready\n").and_then(|()| out.flush());
        if let Ok(null) = std::fs::File::open("/dev/null") {
            let _ = nix::unistd::dup2_stdout(&null);
        }
        tracing::info!("serving on {}", socket.display());
        exit.notified().await;
        tracing::info!("shutting down: no task left");
        let _ = server.shutdown().await;
        Ok(())
    });
    let _ = std::fs::remove_file(&socket);
    result
}

/// The task service under both names: containerd-shim-protos generates it as
/// `containerd.task.v3.Task` (containerd 2's name); containerd 1.6 calls
/// `containerd.task.v2.Task`, the same messages on the wire.
fn task_services(
    service: Arc<Service>,
) -> std::collections::HashMap<String, ttrpc::asynchronous::Service> {
    use containerd_shim_protos::shim_async::create_task;
    let mut all = create_task(service.clone());
    all.extend(
        create_task(service)
            .into_values()
            .map(|s| ("containerd.task.v2.Task".to_string(), s)),
    );
    all
}

/// Turns SIGCHLD into exits: every terminated child is reaped (the shim is the subreaper,
/// so orphans too), and exits of the shim's processes are recorded and published.
async fn reap(service: Arc<Service>, table: Arc<Mutex<Table>>) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut sig = match signal(SignalKind::child()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("SIGCHLD handler: {e}; exits will not be seen");
            return;
        }
    };
    loop {
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(ws) => {
                    let Some(e) = crate::exit::from_wait(ws) else {
                        continue;
                    };
                    let owner = table
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .record_exit(e);
                    if let Some(o) = owner {
                        tracing::info!(container = %o.container, exec = %o.exec, pid = e.pid, status = e.status, "exited");
                        service.publish_exit(&o.container, &o.exec, e);
                    }
                }
            }
        }
        if sig.recv().await.is_none() {
            return;
        }
    }
}
