//! The container's init process, after it has entered the container: report to `create`,
//! wait on the start fifo, apply the process settings and exec. Shared by both backends;
//! everything here is async-signal-safe enough for a freshly forked single-threaded child.
//!
//! The create handshake is typed ([`Message`] over a [`Channel`]; see `message.rs` for
//! the order). The start handshake: the init opens `exec.fifo` for writing (which blocks
//! until `start` opens it for reading), writes one `0` byte, and execs with the fifo
//! close-on-exec. So `start` sees the `0` (the init is past the wait), then either an error
//! message (the init failed before exec and exits) or end-of-file, which means exec
//! succeeded: only then is the container `running`.

mod channel;
mod error;
mod exec;
mod message;
mod terminal;

use std::io::Write;
use std::os::fd::AsFd;

use nix::fcntl::{openat, OFlag};
use nix::sys::stat::Mode;

pub use channel::{decode_failure, Channel, ChannelError, MAX_PAYLOAD};
pub use error::InitError;
pub use exec::exec_process;
#[cfg(test)]
pub(crate) use exec::setgroups_list;
pub use message::{InitFailure, Message, Step};
pub use terminal::attach_terminal;

use crate::hooks::{self, Phase};
use crate::platform::{ContainerPlan, InitHandoff, Platform, SeccompListener};
use crate::state::START_FIFO;

/// Reports an object of the root filesystem to create: before it exists, as an intent,
/// waiting until create has recorded it (a create that died means end-of-file: the init
/// exits before making anything unrecorded); after, with its identity.
fn report_made(chan: &mut Channel, p: &std::path::Path) {
    match crate::mounts::Created::observe(p) {
        Ok(r) => {
            let _ = chan.send(&Message::Made(r));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if chan.send(&Message::Intent(p.to_path_buf())).is_err() {
                std::process::exit(1);
            }
            await_recorded(chan);
        }
        // Not a kind create makes (it is about to fail on it): nothing to record.
        Err(_) => {}
    }
}

/// Waits for create's [`Message::Recorded`]; anything else (create died, or gave up)
/// ends the init before it makes anything more.
fn await_recorded(chan: &mut Channel) {
    if !matches!(chan.recv(), Ok(Some(Message::Recorded))) {
        std::process::exit(1);
    }
}

/// The init process's life after `spawn_init`: enter, hand over to create's hooks,
/// createContainer hooks, enter the root, terminal, report, wait for start,
/// startContainer hooks, exec. Never returns.
pub fn container_init<P: Platform>(
    plan: &ContainerPlan,
    made: &crate::platform::Resources<P::Made>,
    ctx: &P::InitContext,
    mut handoff: InitHandoff,
) -> ! {
    handoff.close_inherited();
    let mut chan = Channel::from(handoff.sync);
    let fail = |chan: &mut Channel, step: Step, e: InitError| -> ! {
        let _ = chan.send(&Message::Failed(e.failure(step)));
        std::process::exit(1);
    };
    stockade_fault::point("init:before-recorded");
    // Nothing is made before create has recorded this process in the state: a create
    // killed before that leaves an init that sees end-of-file here and exits, having made
    // nothing that delete would not know of.
    await_recorded(&mut chan);
    let entered = P::enter(plan, made, ctx, &mut |p| report_made(&mut chan, p));
    if let Err(e) = entered {
        fail(&mut chan, Step::Enter, e.into());
    }
    if chan.send(&Message::Prepared).is_err() {
        std::process::exit(1);
    }
    let (creating, created) = match chan.recv() {
        Ok(Some(Message::Go { creating, created })) => (creating, created),
        // create gave up (a hook failed) and is about to kill this process.
        _ => std::process::exit(1),
    };
    if let Err(e) = hooks::run(
        Phase::CreateContainer,
        &plan.create_container_hooks,
        &creating,
    ) {
        fail(&mut chan, Step::CreateContainerHooks, e.into());
    }
    if let Err(e) = P::enter_root(plan, made) {
        fail(&mut chan, Step::EnterRoot, e.into());
    }
    if let Some(console) = handoff.console {
        if let Err(e) = attach_terminal(console, plan.process.console_size) {
            fail(&mut chan, Step::Terminal, e);
        }
    }
    // Limits the process cannot have fail create, as they do with runc, not start.
    if let Err(e) = exec::apply_rlimits(&plan.process) {
        fail(&mut chan, Step::Rlimits, e);
    }
    let _ = chan.send(&Message::Ready);
    drop(chan);

    // Blocks until `start` opens the fifo for reading.
    let fifo = match openat(
        handoff.state_dir.as_fd(),
        START_FIFO,
        OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => std::fs::File::from(fd),
        Err(_) => std::process::exit(1),
    };
    drop(handoff.state_dir);
    let mut fifo = fifo;
    if fifo.write_all(b"0").is_err() {
        std::process::exit(1);
    }
    if let Err(e) = hooks::run(Phase::StartContainer, &plan.start_container_hooks, &created) {
        let _ = fifo.write_all(&InitError::from(e).report(Step::StartContainerHooks));
        std::process::exit(1);
    }
    if let Err(e) = crate::platform::procs::cloexec_from(3 + plan.preserve_fds as i32) {
        let _ = fifo.write_all(&InitError::from(e).report(Step::Exec));
        std::process::exit(1);
    }
    let listener = handoff.seccomp_listener.map(|fd| SeccompListener {
        socket: fd.into(),
        state: created,
    });
    let err = exec_process::<P>(&plan.process, listener.as_ref());
    let _ = fifo.write_all(&err.report(Step::Exec));
    std::process::exit(127);
}
