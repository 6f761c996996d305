//! `exec`: run another process in a running container, with the same process settings as
//! the init (user, groups, cwd, env, umask, rlimits, terminal, preserved descriptors).

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Process;

use super::{live_status, ContainerError};
use crate::config::{CapabilitySets, ParsedProcess, Rlimit};
use crate::id::ContainerId;
use crate::init::{attach_terminal, exec_process, InitError, Step};
use crate::platform::{Host, Platform};
use crate::process::{Confinement, ProcessSpec};
use crate::state::{StateStore, Status};

/// What to run: a process object (from `--process` or built from flags) plus its rlimits.
#[derive(Debug, Clone)]
pub struct ExecRequest {
    pub process: Process,
    pub rlimits: Vec<Rlimit>,
    /// The process's own `capabilities` (plus `--cap`).
    pub capabilities: CapabilitySets,
    pub console_socket: Option<PathBuf>,
    pub preserve_fds: u32,
    /// AF_UNIX socket receiving a pidfd of the process (`--pidfd-socket`).
    pub pidfd_socket: Option<PathBuf>,
}

/// The container's own process settings (as derived at create), the base that `exec` flags
/// modify, as runc does.
pub fn base_process(store: &StateStore, id: &ContainerId) -> Result<ParsedProcess, ContainerError> {
    let d = store.read_derived(id)?;
    Ok(ParsedProcess {
        process: d.process,
        rlimits: d.rlimits,
        capabilities: d.capabilities,
    })
}

/// Starts the process in container `id`; returns its pid (a child of the caller).
pub fn exec(
    store: &StateStore,
    id: &ContainerId,
    req: &ExecRequest,
) -> Result<i32, ContainerError> {
    let st = {
        let _lock = store.lock(id)?;
        stockade_fault::point("exec:after-lock");
        store.read(id)?
    };
    let status = live_status(&st);
    let (Status::Running, Some(init)) = (status, st.pid) else {
        return Err(ContainerError::WrongStatus {
            id: id.clone(),
            op: "exec in",
            status,
            expected: "only a running container can run more processes",
        });
    };
    super::pidfd::check(req.pidfd_socket.as_deref())?;
    // The container's seccomp profile holds for every process in it, as with runc.
    let seccomp = store.read_derived(id)?.seccomp;
    // A notifying profile: the agent gets this process's notify descriptor too, as with runc.
    let listener = match seccomp.as_ref().and_then(|p| p.listener_path.as_deref()) {
        Some(path) => Some(crate::platform::SeccompListener {
            socket: std::os::unix::net::UnixStream::connect(path).map_err(ContainerError::io(
                "connecting to linux.seccomp.listenerPath",
                path,
            ))?,
            state: serde_json::to_vec(&super::container_state_as(&st, Status::Running))
                .unwrap_or_default(),
        }),
        None => None,
    };
    let terminal = req.process.terminal().unwrap_or(false);
    match (terminal, &req.console_socket) {
        (true, None) => {
            return Err(ContainerError::Terminal(
                "the process has a terminal but no --console-socket was given to receive the pty"
                    .into(),
            ))
        }
        (false, Some(s)) => {
            return Err(ContainerError::Terminal(format!(
                "--console-socket {} was given but the process has no terminal; use --tty",
                s.display()
            )))
        }
        _ => {}
    }
    let console: Option<OwnedFd> = match &req.console_socket {
        Some(p) => Some(
            std::os::unix::net::UnixStream::connect(p)
                .map_err(ContainerError::io("connecting to --console-socket", p))?
                .into(),
        ),
        None => None,
    };
    // Closed on exec: end-of-file with nothing written means the process is running.
    let (mut report_read, report_write) =
        std::io::pipe().map_err(ContainerError::io("creating a pipe for", Path::new("exec")))?;
    let mut report_write = Some(report_write);
    let mut console = console;
    let p = &req.process;
    let rlimits = &req.rlimits;
    let preserve = req.preserve_fds;
    let mut confinement = Confinement {
        capabilities: req.capabilities.clone(),
        seccomp,
        apparmor_profile: p.apparmor_profile().clone(),
        selinux_label: p.selinux_label().clone(),
        compiled: None,
    };
    // Compiled before the fork from create's cache, so the child only loads it.
    Host::precompile_confinement(&mut confinement)?;
    let pid = Host::spawn_joined(
        &st.resources,
        init,
        Box::new(move || {
            use std::io::Write;
            let Some(mut report) = report_write.take() else {
                return 1;
            };
            let user = p.user();
            let spec = ProcessSpec::build(
                Path::new("/"),
                p.args().clone().unwrap_or_default(),
                p.env().clone().unwrap_or_default(),
                p.cwd().clone(),
                (
                    user.uid(),
                    user.gid(),
                    user.additional_gids().clone().unwrap_or_default(),
                    user.umask(),
                ),
                rlimits,
                p.no_new_privileges().unwrap_or(false),
                terminal,
                p.console_size()
                    .as_ref()
                    .map(|b| (b.height() as u16, b.width() as u16)),
                confinement.clone(),
                Host::TARGET,
            );
            let mut spec = match spec {
                Ok(s) => s,
                Err(e) => {
                    let _ = report.write_all(&InitError::from(e).report(Step::Prepare));
                    return 127;
                }
            };
            spec.oom_score_adj = p.oom_score_adj();
            let io = crate::process::refuse_unapplied(p, Host::TARGET).and_then(|()| {
                p.io_priority()
                    .as_ref()
                    .map(crate::process::io_priority)
                    .transpose()
            });
            match io {
                Ok(io) => spec.io_priority = io,
                Err(e) => {
                    let _ = report.write_all(&InitError::from(e).report(Step::Prepare));
                    return 127;
                }
            }
            if let Some(c) = console.take() {
                if let Err(e) = attach_terminal(c, spec.console_size) {
                    let _ = report.write_all(&e.report(Step::Terminal));
                    return 1;
                }
            }
            if let Err(e) = crate::platform::procs::cloexec_from(3 + preserve as i32) {
                let _ = report.write_all(&InitError::from(e).report(Step::Exec));
                return 1;
            }
            let err = exec_process::<Host>(&spec, listener.as_ref());
            let _ = report.write_all(&err.report(Step::Exec));
            127
        }),
    )?;
    stockade_fault::point("exec:after-spawn");
    let mut report = Vec::new();
    let _ = report_read.read_to_end(&mut report);
    if !report.is_empty() {
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
        return Err(ContainerError::reported(id, &report, |id, failure| {
            ContainerError::Exec { id, failure }
        }));
    }
    if let Some(socket) = &req.pidfd_socket {
        if let Err(e) = super::pidfd::send(socket, pid, super::pidfd::EXEC) {
            // The caller asked for a handle it will not get: the process must not run on.
            let child = nix::unistd::Pid::from_raw(pid);
            let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(child, None);
            return Err(e);
        }
    }
    Ok(pid)
}
