//! The task service's state and the steps its RPCs share: the process table, errors
//! mapped to ttrpc codes, starting an exec, wiring a process's stdio, process info.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use containerd_shim_protos::events::task::{TaskExecStarted, TaskExit};
use containerd_shim_protos::protobuf::MessageField;
use containerd_shim_protos::types::task::Status as TaskStatus;
use stockade_runtime::container::{self, ExecRequest};
use stockade_runtime::id::ContainerId;
use stockade_runtime::state::StateStore;
use tokio::sync::{oneshot, Notify};
use ttrpc::{Code, Error as RpcError};

use crate::console::ConsoleSocket;
use crate::events::{Event, Publisher};
use crate::exit::Exit;
use crate::stdio;
use crate::table::{Proc, Table};

type Result<T> = std::result::Result<T, RpcError>;

pub fn rpc_err(code: Code, msg: impl std::fmt::Display) -> RpcError {
    RpcError::RpcStatus(ttrpc::get_status(code, msg.to_string()))
}

pub(super) fn internal(e: impl std::fmt::Display) -> RpcError {
    rpc_err(Code::INTERNAL, e)
}

pub(super) fn runtime_err(e: container::ContainerError) -> RpcError {
    use container::ContainerError as E;
    let code = match &e {
        E::NotRunning { .. } | E::WrongStatus { .. } => Code::FAILED_PRECONDITION,
        E::BadSignal(_) => Code::INVALID_ARGUMENT,
        _ => Code::UNKNOWN,
    };
    rpc_err(code, e)
}

pub struct Service {
    pub(super) table: Arc<Mutex<Table>>,
    pub(super) store: StateStore,
    pub(super) events: Publisher,
    /// Signalled when the shim should exit (Shutdown with no tasks left).
    pub exit: Arc<Notify>,
}

impl Service {
    pub fn new(store: StateStore, events: Publisher, table: Arc<Mutex<Table>>) -> Service {
        Service {
            table,
            store,
            events,
            exit: Arc::new(Notify::new()),
        }
    }

    pub(super) fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn cid(id: &str) -> Result<ContainerId> {
        ContainerId::parse(id).map_err(|e| rpc_err(Code::INVALID_ARGUMENT, e))
    }

    pub(super) fn not_found(id: &str, exec: &str) -> RpcError {
        if exec.is_empty() {
            rpc_err(
                Code::NOT_FOUND,
                format!(
                    "container {} not found in this shim",
                    stockade_quote::quote(id)
                ),
            )
        } else {
            rpc_err(
                Code::NOT_FOUND,
                format!(
                    "exec {} of container {} not found",
                    stockade_quote::quote(exec),
                    stockade_quote::quote(id)
                ),
            )
        }
    }

    /// A process's pid and exit watcher.
    pub(super) fn proc_info(
        &self,
        id: &str,
        exec: &str,
    ) -> Result<(i32, tokio::sync::watch::Receiver<Option<Exit>>)> {
        let t = self.table();
        let task = t.tasks.get(id).ok_or_else(|| Self::not_found(id, ""))?;
        let p = if exec.is_empty() {
            &task.init
        } else {
            &task
                .execs
                .get(exec)
                .ok_or_else(|| Self::not_found(id, exec))?
                .proc_
        };
        Ok((p.pid, p.watch_exit()))
    }

    pub(super) fn start_exec(&self, id: &str, exec: &str) -> Result<u32> {
        let cid = Self::cid(id)?;
        let (spec, terminal, stdin, stdout, stderr) = {
            let mut t = self.table();
            let task = t.tasks.get_mut(id).ok_or_else(|| Self::not_found(id, ""))?;
            let x = task
                .execs
                .get_mut(exec)
                .ok_or_else(|| Self::not_found(id, exec))?;
            let spec = x.spec.take().ok_or_else(|| {
                rpc_err(
                    Code::ALREADY_EXISTS,
                    format!("exec {exec} is started already"),
                )
            })?;
            let p = &x.proc_;
            (
                spec,
                p.terminal,
                p.stdin.clone(),
                p.stdout.clone(),
                p.stderr.clone(),
            )
        };
        let console = if terminal {
            Some(ConsoleSocket::new().map_err(internal)?)
        } else {
            None
        };
        let streams = if terminal {
            stdio::open_streams("", "", "", &self.log_context(id)).map_err(internal)?
        } else {
            stdio::open_streams(&stdin, &stdout, &stderr, &self.log_context(id))
                .map_err(internal)?
        };
        let req = ExecRequest {
            process: spec.process.clone(),
            rlimits: spec.rlimits.clone(),
            capabilities: spec.capabilities.clone(),
            console_socket: console.as_ref().map(|c| c.path()),
            preserve_fds: 0,
            pidfd_socket: None,
        };
        let pid = stdio::with_streams(&streams, || container::exec(&self.store, &cid, &req))
            .map_err(internal)?
            .map_err(runtime_err)?;
        let mut io = Proc::new(pid, &stdin, &stdout, &stderr, terminal);
        self.wire_io(id, &mut io, streams, console.as_ref())?;
        let early = {
            let mut t = self.table();
            let Some(x) = t
                .tasks
                .get_mut(id)
                .and_then(|task| task.execs.get_mut(exec))
            else {
                return Err(Self::not_found(id, exec));
            };
            x.proc_.pid = pid;
            x.proc_.started = true;
            x.proc_.close_stdin = io.close_stdin.take();
            x.proc_.master = io.master.take();
            // An exit reaped before the pid was known is applied now.
            t.claim_exec(id, exec)
        };
        let mut ev = TaskExecStarted::new();
        ev.container_id = id.into();
        ev.exec_id = exec.into();
        ev.pid = pid as u32;
        self.events.publish(Event::ExecStarted(ev));
        if let Some(e) = early {
            self.publish_exit(id, exec, e);
        }
        Ok(pid as u32)
    }

    /// Who a `binary://` logging program logs for.
    pub(super) fn log_context<'a>(&'a self, id: &'a str) -> stdio::LogContext<'a> {
        stdio::LogContext {
            id,
            namespace: self.events.namespace(),
        }
    }

    /// Stdin feeding and the terminal copy for a process just made.
    pub(super) fn wire_io(
        &self,
        id: &str,
        p: &mut Proc,
        streams: stdio::Streams,
        console: Option<&ConsoleSocket>,
    ) -> Result<()> {
        if let Some(c) = console {
            let master = c.receive().map_err(internal)?;
            let out =
                stdio::open_streams("", &p.stdout, "", &self.log_context(id)).map_err(internal)?;
            let stdin = (!p.stdin.is_empty()).then(|| PathBuf::from(&p.stdin));
            p.master =
                Some(crate::console::copy(master, stdin.as_deref(), out.stdout).map_err(internal)?);
            return Ok(());
        }
        if let Some((fifo, pipe)) = streams.stdin_feed {
            let (tx, rx) = oneshot::channel();
            stdio::feed_stdin(fifo, pipe, rx).map_err(internal)?;
            p.close_stdin = Some(tx);
        }
        Ok(())
    }

    /// Starts the OOM watcher of a container just created (Linux, with a memory cgroup of
    /// its own); a failure to watch is logged, not fatal: the container runs regardless.
    #[cfg(target_os = "linux")]
    pub(super) fn watch_oom(
        &self,
        id: &str,
        cid: &ContainerId,
    ) -> Option<tokio::task::AbortHandle> {
        let st = self
            .store
            .read(cid)
            .map_err(|e| tracing::warn!("OOM watch of {id}: reading its state: {e}"))
            .ok()?;
        let Some(src) = super::oom::source(&st.resources.backend.cgroups) else {
            tracing::debug!(cgroups = ?st.resources.backend.cgroups, "{id}: no memory cgroup of its own, no OOM watch");
            return None;
        };
        tracing::info!("{id}: watching for OOM kills in {src:?}");
        let events = self.events.clone();
        let container = id.to_string();
        match super::oom::spawn(src.clone(), move || {
            tracing::info!(container = %container, "out of memory: a process was killed");
            let mut ev = containerd_shim_protos::events::task::TaskOOM::new();
            ev.container_id = container.clone();
            events.publish(Event::Oom(ev));
        }) {
            Ok(h) => Some(h.abort_handle()),
            Err(e) => {
                tracing::warn!("OOM watch of {id} ({src:?}): {e}; TaskOOM will not be sent");
                None
            }
        }
    }

    /// FreeBSD: rctl has no OOM notification to map yet.
    #[cfg(not(target_os = "linux"))]
    pub(super) fn watch_oom(
        &self,
        _id: &str,
        _cid: &ContainerId,
    ) -> Option<tokio::task::AbortHandle> {
        None
    }

    pub fn publish_exit(&self, container: &str, exec: &str, e: Exit) {
        let mut ev = TaskExit::new();
        ev.container_id = container.into();
        ev.id = if exec.is_empty() {
            container.into()
        } else {
            exec.into()
        };
        ev.pid = e.pid as u32;
        ev.exit_status = e.status;
        ev.exited_at = MessageField::some(e.timestamp());
        self.events.publish(Event::Exit(ev));
    }
}

pub(super) fn state_of(p: &Proc) -> TaskStatus {
    match (p.exit(), p.started) {
        (Some(_), _) => TaskStatus::STOPPED,
        (None, true) => TaskStatus::RUNNING,
        (None, false) => TaskStatus::CREATED,
    }
}
