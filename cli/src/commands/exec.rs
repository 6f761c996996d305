//! `exec`: run another process in a running container.

use anyhow::Context;
use stockade_runtime::container::{self, ExecRequest};
use stockade_runtime::id::ContainerId;
use stockade_runtime::state::StateStore;

use super::terminal::{self, ConsoleListener};
use crate::args::exec::ExecArgs;
use crate::args::GlobalArgs;

/// Builds the process from `--process`, or from the container's own process with the
/// flags applied (as runc does), and runs it.
pub fn exec(global: &GlobalArgs, a: &ExecArgs) -> anyhow::Result<u8> {
    let store = StateStore::open(&global.root)?;
    let id = ContainerId::parse(&a.id)?;
    // Unknown ids fail here, before anything else, with "does not exist".
    store.read(&id)?;
    let parsed = match &a.process {
        Some(file) => {
            let text = std::fs::read(file)
                .with_context(|| format!("reading --process {}", file.display()))?;
            let v: serde_json::Value = serde_json::from_slice(&text)
                .with_context(|| format!("--process {}: not valid JSON", file.display()))?;
            stockade_runtime::config::parse_process(v)
                .with_context(|| format!("--process {}", file.display()))?
        }
        None => {
            anyhow::ensure!(
                !a.command.is_empty(),
                "exec needs a command to run, or --process FILE"
            );
            let mut parsed = container::base_process(&store, &id)?;
            let p = &mut parsed.process;
            p.set_args(Some(a.command.clone()));
            p.set_terminal(Some(a.tty));
            if let Some(cwd) = &a.cwd {
                p.set_cwd(cwd.into());
            }
            let mut env = p.env().clone().unwrap_or_default();
            for kv in &a.env {
                anyhow::ensure!(kv.contains('='), "--env {kv:?}: expected KEY=VALUE");
                let key = kv.split('=').next().unwrap_or_default();
                env.retain(|e| e.split('=').next() != Some(key));
                env.push(kv.clone());
            }
            p.set_env(Some(env));
            let mut user = p.user().clone();
            if let Some(u) = &a.user {
                let (uid, gid) = match u.split_once(':') {
                    Some((uid, gid)) => (uid, Some(gid)),
                    None => (u.as_str(), None),
                };
                user.set_uid(
                    uid.parse()
                        .with_context(|| format!("--user {u:?}: expected UID[:GID] as numbers"))?,
                );
                if let Some(g) = gid {
                    user.set_gid(
                        g.parse().with_context(|| {
                            format!("--user {u:?}: expected UID[:GID] as numbers")
                        })?,
                    );
                }
            }
            if !a.additional_gids.is_empty() {
                user.set_additional_gids(Some(a.additional_gids.clone()));
            }
            p.set_user(user);
            if a.no_new_privs {
                p.set_no_new_privileges(Some(true));
            }
            if a.apparmor.is_some() {
                p.set_apparmor_profile(a.apparmor.clone());
            }
            if a.process_label.is_some() {
                p.set_selinux_label(a.process_label.clone());
            }
            parsed.capabilities.add_from_flags(&a.caps)?;
            parsed
        }
    };
    // A foreground terminal without --console-socket is relayed here, as runc does.
    let terminal = parsed.process.terminal().unwrap_or(false);
    let console = if terminal && !a.detach && a.console_socket.is_none() {
        Some(ConsoleListener::new(&global.root)?)
    } else {
        None
    };
    let mut process = parsed.process;
    if console.is_some() && process.console_size().is_none() {
        // The process runs before the relay has the master: its first size is set here.
        if let Some((rows, cols)) = terminal::caller_size() {
            let size = oci_spec::runtime::BoxBuilder::default()
                .height(u64::from(rows))
                .width(u64::from(cols))
                .build()
                .context("the terminal's size")?;
            process.set_console_size(Some(size));
        }
    }
    let req = ExecRequest {
        process,
        rlimits: parsed.rlimits,
        capabilities: parsed.capabilities,
        console_socket: match &console {
            Some(c) => Some(c.path().to_path_buf()),
            None => a.console_socket.clone(),
        },
        preserve_fds: a.preserve_fds,
        pidfd_socket: a.pidfd_socket.clone(),
    };
    let pid = container::exec(&store, &id, &req)?;
    if let Some(pid_file) = &a.pid_file {
        container::write_pid_file(pid_file, pid)?;
    }
    if a.detach {
        return Ok(0);
    }
    match &console {
        Some(c) => terminal::relay(c.receive()?, pid),
        None => super::lifecycle::wait_exit_code(pid),
    }
}
