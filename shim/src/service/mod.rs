//! containerd's task service (`containerd.task.v2.Task`) over stockade's runtime library,
//! called in-process: create, start, exec, kill, delete, update, ps are library calls, not
//! runtime processes.

use std::path::PathBuf;

use containerd_shim_protos::api;
use containerd_shim_protos::events::task::{TaskCreate, TaskDelete, TaskExecAdded, TaskStart};
use containerd_shim_protos::protobuf::well_known_types::empty::Empty;
use containerd_shim_protos::protobuf::{EnumOrUnknown, MessageField};
use containerd_shim_protos::shim_async::Task;
use containerd_shim_protos::types::task::ProcessInfo;
use nix::sys::signal::Signal;
use stockade_runtime::container::{self, CreateOptions};
use ttrpc::asynchronous::TtrpcContext;
use ttrpc::{Code, Error as RpcError};

use crate::console::ConsoleSocket;
use crate::events::Event;
use crate::exit::Exit;
use crate::stdio;
use crate::table::{Exec, Proc, Task as Entry};

mod base;
mod oom;

use base::{internal, runtime_err, state_of};
pub use base::{rpc_err, Service};

type Result<T> = std::result::Result<T, RpcError>;

#[async_trait::async_trait]
impl Task for Service {
    async fn create(
        &self,
        _ctx: &TtrpcContext,
        req: api::CreateTaskRequest,
    ) -> Result<api::CreateTaskResponse> {
        let cid = Self::cid(&req.id)?;
        if self.table().tasks.contains_key(&req.id) {
            return Err(rpc_err(
                Code::ALREADY_EXISTS,
                format!("container {} exists", stockade_quote::quote(&req.id)),
            ));
        }
        if !req.checkpoint.is_empty() {
            return Err(rpc_err(
                Code::UNIMPLEMENTED,
                "restoring from a checkpoint is not implemented by stockade",
            ));
        }
        let bundle = PathBuf::from(&req.bundle);
        let mounted = crate::rootfs::mount_all(&bundle, &req.rootfs).map_err(internal)?;
        let made = (|| {
            let console = if req.terminal {
                Some(ConsoleSocket::new().map_err(internal)?)
            } else {
                None
            };
            let streams = if req.terminal {
                stdio::open_streams("", "", "", &self.log_context(&req.id))
            } else {
                stdio::open_streams(
                    &req.stdin,
                    &req.stdout,
                    &req.stderr,
                    &self.log_context(&req.id),
                )
            }
            .map_err(internal)?;
            let opts = CreateOptions {
                console_socket: console.as_ref().map(|c| c.path()),
                ..Default::default()
            };
            let pid = stdio::with_streams(&streams, || {
                container::create(&self.store, &cid, &bundle, &opts)
            })
            .map_err(internal)?
            .map_err(runtime_err)?;
            let mut p = Proc::new(pid, &req.stdin, &req.stdout, &req.stderr, req.terminal);
            if let Err(e) = self.wire_io(&req.id, &mut p, streams, console.as_ref()) {
                let _ = container::delete(&self.store, &cid, true);
                return Err(e);
            }
            Ok(p)
        })();
        let p = match made {
            Ok(p) => p,
            Err(e) => {
                if mounted {
                    let _ = crate::rootfs::unmount(&bundle);
                }
                return Err(e);
            }
        };
        let pid = p.pid;
        self.table().tasks.insert(
            req.id.clone(),
            Entry {
                bundle,
                init: p,
                execs: Default::default(),
                rootfs_mounted: mounted,
                oom_watch: self.watch_oom(&req.id, &cid),
            },
        );
        let mut ev = TaskCreate::new();
        ev.container_id = req.id.clone();
        ev.bundle = req.bundle.clone();
        ev.rootfs = req.rootfs.clone();
        ev.pid = pid as u32;
        let mut io = containerd_shim_protos::events::task::TaskIO::new();
        io.stdin = req.stdin.clone();
        io.stdout = req.stdout.clone();
        io.stderr = req.stderr.clone();
        io.terminal = req.terminal;
        ev.io = MessageField::some(io);
        self.events.publish(Event::Create(ev));
        let mut r = api::CreateTaskResponse::new();
        r.pid = pid as u32;
        Ok(r)
    }

    async fn start(
        &self,
        _ctx: &TtrpcContext,
        req: api::StartRequest,
    ) -> Result<api::StartResponse> {
        let mut r = api::StartResponse::new();
        if !req.exec_id.is_empty() {
            r.pid = self.start_exec(&req.id, &req.exec_id)?;
            return Ok(r);
        }
        let cid = Self::cid(&req.id)?;
        let pid = {
            let t = self.table();
            t.tasks
                .get(&req.id)
                .ok_or_else(|| Self::not_found(&req.id, ""))?
                .init
                .pid
        };
        container::start(&self.store, &cid).map_err(runtime_err)?;
        if let Some(task) = self.table().tasks.get_mut(&req.id) {
            task.init.started = true;
        }
        let mut ev = TaskStart::new();
        ev.container_id = req.id.clone();
        ev.pid = pid as u32;
        self.events.publish(Event::Start(ev));
        r.pid = pid as u32;
        Ok(r)
    }

    async fn state(
        &self,
        _ctx: &TtrpcContext,
        req: api::StateRequest,
    ) -> Result<api::StateResponse> {
        let t = self.table();
        let task = t
            .tasks
            .get(&req.id)
            .ok_or_else(|| Self::not_found(&req.id, ""))?;
        let mut r = api::StateResponse::new();
        r.id = req.id.clone();
        r.bundle = task.bundle.to_string_lossy().into_owned();
        r.exec_id = req.exec_id.clone();
        let p = if req.exec_id.is_empty() {
            &task.init
        } else {
            &task
                .execs
                .get(&req.exec_id)
                .ok_or_else(|| Self::not_found(&req.id, &req.exec_id))?
                .proc_
        };
        r.pid = p.pid as u32;
        r.status = EnumOrUnknown::new(state_of(p));
        r.stdin = p.stdin.clone();
        r.stdout = p.stdout.clone();
        r.stderr = p.stderr.clone();
        r.terminal = p.terminal;
        if let Some(e) = p.exit() {
            r.exit_status = e.status;
            r.exited_at = MessageField::some(e.timestamp());
        }
        Ok(r)
    }

    async fn wait(&self, _ctx: &TtrpcContext, req: api::WaitRequest) -> Result<api::WaitResponse> {
        let (_, mut rx) = self.proc_info(&req.id, &req.exec_id)?;
        let e = loop {
            if let Some(e) = *rx.borrow_and_update() {
                break e;
            }
            rx.changed()
                .await
                .map_err(|_| internal("the process table went away"))?;
        };
        let mut r = api::WaitResponse::new();
        r.exit_status = e.status;
        r.exited_at = MessageField::some(e.timestamp());
        Ok(r)
    }

    async fn kill(&self, _ctx: &TtrpcContext, req: api::KillRequest) -> Result<Empty> {
        let signal = Signal::try_from(req.signal as i32)
            .map_err(|_| rpc_err(Code::INVALID_ARGUMENT, format!("bad signal {}", req.signal)))?;
        let (pid, rx) = self.proc_info(&req.id, &req.exec_id)?;
        if rx.borrow().is_some() {
            return Err(rpc_err(Code::NOT_FOUND, "process already finished"));
        }
        if req.exec_id.is_empty() {
            let cid = Self::cid(&req.id)?;
            container::kill(&self.store, &cid, signal, req.all).map_err(runtime_err)?;
        } else {
            match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal) {
                Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
                Err(e) => return Err(internal(format!("kill({pid}, {signal}): {e}"))),
            }
        }
        Ok(Empty::new())
    }

    async fn exec(&self, _ctx: &TtrpcContext, req: api::ExecProcessRequest) -> Result<Empty> {
        let spec = req
            .spec
            .as_ref()
            .ok_or_else(|| rpc_err(Code::INVALID_ARGUMENT, "exec without a process spec"))?;
        let value: serde_json::Value = serde_json::from_slice(&spec.value)
            .map_err(|e| rpc_err(Code::INVALID_ARGUMENT, format!("exec process spec: {e}")))?;
        let parsed = stockade_runtime::config::parse_process(value)
            .map_err(|e| rpc_err(Code::INVALID_ARGUMENT, format!("exec process spec: {e}")))?;
        let mut t = self.table();
        let task = t
            .tasks
            .get_mut(&req.id)
            .ok_or_else(|| Self::not_found(&req.id, ""))?;
        if task.execs.contains_key(&req.exec_id) {
            return Err(rpc_err(
                Code::ALREADY_EXISTS,
                format!("exec {} exists", stockade_quote::quote(&req.exec_id)),
            ));
        }
        task.execs.insert(
            req.exec_id.clone(),
            Exec {
                proc_: Proc::new(0, &req.stdin, &req.stdout, &req.stderr, req.terminal),
                spec: Some(Box::new(parsed)),
            },
        );
        drop(t);
        let mut ev = TaskExecAdded::new();
        ev.container_id = req.id.clone();
        ev.exec_id = req.exec_id.clone();
        self.events.publish(Event::ExecAdded(ev));
        Ok(Empty::new())
    }

    async fn delete(
        &self,
        _ctx: &TtrpcContext,
        req: api::DeleteRequest,
    ) -> Result<api::DeleteResponse> {
        let mut r = api::DeleteResponse::new();
        if !req.exec_id.is_empty() {
            let mut t = self.table();
            let task = t
                .tasks
                .get_mut(&req.id)
                .ok_or_else(|| Self::not_found(&req.id, ""))?;
            let x = task
                .execs
                .get(&req.exec_id)
                .ok_or_else(|| Self::not_found(&req.id, &req.exec_id))?;
            let p = &x.proc_;
            if p.started && p.exit().is_none() {
                return Err(rpc_err(
                    Code::FAILED_PRECONDITION,
                    "the exec'd process is still running",
                ));
            }
            r.pid = p.pid as u32;
            if let Some(e) = p.exit() {
                r.exit_status = e.status;
                r.exited_at = MessageField::some(e.timestamp());
            }
            task.execs.remove(&req.exec_id);
            return Ok(r);
        }
        let cid = Self::cid(&req.id)?;
        let (pid, exit, bundle, mounted) = {
            let t = self.table();
            let task = t
                .tasks
                .get(&req.id)
                .ok_or_else(|| Self::not_found(&req.id, ""))?;
            (
                task.init.pid,
                task.init.exit(),
                task.bundle.clone(),
                task.rootfs_mounted,
            )
        };
        // A created container that never ran is deleted (its init killed) like runc delete
        // does; a running one has to be killed first.
        let force = exit.is_some()
            || self
                .table()
                .tasks
                .get(&req.id)
                .is_some_and(|t| !t.init.started);
        if !force {
            return Err(rpc_err(
                Code::FAILED_PRECONDITION,
                "the task is running; kill it first",
            ));
        }
        container::delete(&self.store, &cid, true).map_err(runtime_err)?;
        if mounted {
            crate::rootfs::unmount(&bundle).map_err(internal)?;
        }
        if let Some(w) = self.table().tasks.remove(&req.id).and_then(|t| t.oom_watch) {
            w.abort();
        }
        let e = exit.unwrap_or(Exit {
            pid,
            status: 128 + 9,
            at: crate::exit::now(),
        });
        r.pid = pid as u32;
        r.exit_status = e.status;
        r.exited_at = MessageField::some(e.timestamp());
        let mut ev = TaskDelete::new();
        ev.container_id = req.id.clone();
        ev.id = req.id.clone();
        ev.pid = pid as u32;
        ev.exit_status = e.status;
        ev.exited_at = MessageField::some(e.timestamp());
        self.events.publish(Event::Delete(ev));
        Ok(r)
    }

    async fn pids(&self, _ctx: &TtrpcContext, req: api::PidsRequest) -> Result<api::PidsResponse> {
        let cid = Self::cid(&req.id)?;
        let pids = container::pids(&self.store, &cid).map_err(runtime_err)?;
        let mut r = api::PidsResponse::new();
        r.processes = pids
            .into_iter()
            .map(|p| {
                let mut i = ProcessInfo::new();
                i.pid = p as u32;
                i
            })
            .collect();
        Ok(r)
    }

    async fn close_io(&self, _ctx: &TtrpcContext, req: api::CloseIORequest) -> Result<Empty> {
        let mut t = self.table();
        let task = t
            .tasks
            .get_mut(&req.id)
            .ok_or_else(|| Self::not_found(&req.id, ""))?;
        let p = if req.exec_id.is_empty() {
            &mut task.init
        } else {
            &mut task
                .execs
                .get_mut(&req.exec_id)
                .ok_or_else(|| Self::not_found(&req.id, &req.exec_id))?
                .proc_
        };
        if req.stdin {
            if let Some(tx) = p.close_stdin.take() {
                let _ = tx.send(());
            }
        }
        Ok(Empty::new())
    }

    async fn resize_pty(&self, _ctx: &TtrpcContext, req: api::ResizePtyRequest) -> Result<Empty> {
        use std::os::fd::AsFd;
        let master = {
            let t = self.table();
            let task = t
                .tasks
                .get(&req.id)
                .ok_or_else(|| Self::not_found(&req.id, ""))?;
            let p = if req.exec_id.is_empty() {
                &task.init
            } else {
                &task
                    .execs
                    .get(&req.exec_id)
                    .ok_or_else(|| Self::not_found(&req.id, &req.exec_id))?
                    .proc_
            };
            p.master
                .clone()
                .ok_or_else(|| rpc_err(Code::FAILED_PRECONDITION, "the process has no terminal"))?
        };
        let rows = u16::try_from(req.height).unwrap_or(u16::MAX);
        let cols = u16::try_from(req.width).unwrap_or(u16::MAX);
        stockade_runtime::platform::pty::set_winsize(master.as_fd(), rows, cols)
            .map_err(internal)?;
        Ok(Empty::new())
    }

    async fn update(&self, _ctx: &TtrpcContext, req: api::UpdateTaskRequest) -> Result<Empty> {
        let cid = Self::cid(&req.id)?;
        let any = req
            .resources
            .as_ref()
            .ok_or_else(|| rpc_err(Code::INVALID_ARGUMENT, "update without resources"))?;
        let resources: oci_spec::runtime::LinuxResources = serde_json::from_slice(&any.value)
            .map_err(|e| {
                rpc_err(
                    Code::INVALID_ARGUMENT,
                    format!("update resources ({}): {e}", any.type_url),
                )
            })?;
        if let Some(w) = container::update(&self.store, &cid, &resources).map_err(runtime_err)? {
            tracing::warn!("update of {}: {w}", req.id);
        }
        Ok(Empty::new())
    }

    async fn stats(
        &self,
        _ctx: &TtrpcContext,
        req: api::StatsRequest,
    ) -> Result<api::StatsResponse> {
        let cid = Self::cid(&req.id)?;
        let st = self
            .store
            .read(&cid)
            .map_err(|e| rpc_err(Code::NOT_FOUND, e))?;
        let any = crate::stats::collect(&st).map_err(|e| rpc_err(Code::UNIMPLEMENTED, e))?;
        let mut r = api::StatsResponse::new();
        r.stats = MessageField::some(any);
        Ok(r)
    }

    async fn connect(
        &self,
        _ctx: &TtrpcContext,
        req: api::ConnectRequest,
    ) -> Result<api::ConnectResponse> {
        let mut r = api::ConnectResponse::new();
        r.shim_pid = std::process::id();
        r.task_pid = self
            .table()
            .tasks
            .get(&req.id)
            .map_or(0, |t| t.init.pid as u32);
        r.version = concat!("stockade-shim ", env!("CARGO_PKG_VERSION")).into();
        Ok(r)
    }

    async fn shutdown(&self, _ctx: &TtrpcContext, _req: api::ShutdownRequest) -> Result<Empty> {
        // One shim serves a pod: it stays while any container of it is left.
        if self.table().tasks.is_empty() {
            self.exit.notify_one();
        }
        Ok(Empty::new())
    }

    async fn pause(&self, _ctx: &TtrpcContext, _req: api::PauseRequest) -> Result<Empty> {
        Err(rpc_err(
            Code::UNIMPLEMENTED,
            "pause is not implemented by stockade",
        ))
    }

    async fn resume(&self, _ctx: &TtrpcContext, _req: api::ResumeRequest) -> Result<Empty> {
        Err(rpc_err(
            Code::UNIMPLEMENTED,
            "resume is not implemented by stockade",
        ))
    }

    async fn checkpoint(
        &self,
        _ctx: &TtrpcContext,
        _req: api::CheckpointTaskRequest,
    ) -> Result<Empty> {
        Err(rpc_err(
            Code::UNIMPLEMENTED,
            "checkpoint is not implemented by stockade",
        ))
    }
}
