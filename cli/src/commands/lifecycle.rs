//! `create`, `start`, `state`, `kill`, `delete`, `list`, `run`, `ps`: each a few lines over
//! `stockade_runtime::container`.

use anyhow::Context;
use stockade_image::provision;
use stockade_runtime::config::ContainerConfig;
use stockade_runtime::container::{self, container_state, CreateOptions, Snapshot};
use stockade_runtime::id::ContainerId;
use stockade_runtime::state::StateStore;

use super::listing::Listed;
use super::terminal::{self, ConsoleListener};
use crate::args::lifecycle::{CreateArgs, DeleteArgs, IdArgs, KillArgs, ListArgs, RunArgs};
use crate::args::GlobalArgs;

fn store(global: &GlobalArgs) -> anyhow::Result<StateStore> {
    Ok(StateStore::open(&global.root)?)
}

pub fn create(global: &GlobalArgs, a: &CreateArgs) -> anyhow::Result<u8> {
    let id = ContainerId::parse(&a.id)?;
    container::create(&store(global)?, &id, &a.create.bundle, &a.create.options())?;
    Ok(0)
}

pub fn start(global: &GlobalArgs, a: &IdArgs) -> anyhow::Result<u8> {
    container::start(&store(global)?, &ContainerId::parse(&a.id)?)?;
    Ok(0)
}

pub fn state(global: &GlobalArgs, a: &IdArgs) -> anyhow::Result<u8> {
    let id = ContainerId::parse(&a.id)?;
    let st = store(global)?.read(&id)?;
    println!("{}", serde_json::to_string_pretty(&container_state(&st))?);
    Ok(0)
}

pub fn kill(global: &GlobalArgs, a: &KillArgs) -> anyhow::Result<u8> {
    let id = ContainerId::parse(&a.id)?;
    let signal = container::parse_signal(&a.signal)?;
    container::kill(&store(global)?, &id, signal, a.all)?;
    Ok(0)
}

/// `delete`: the runtime's container, then, for a container `run --image` made, its
/// bundle and root filesystem (also when a crash stopped `run --image` before the
/// runtime had the container).
pub fn delete(global: &GlobalArgs, a: &DeleteArgs) -> anyhow::Result<u8> {
    let store = store(global)?;
    let provisioned = provision::is_provisioned(&a.storage.storage_root, &a.id);
    // A service's monitor would otherwise start the deleted container again.
    let _held = if provisioned {
        super::rm::quiesce(&store, &a.storage.storage_root, &a.id, a.force)?
    } else {
        None
    };
    match ContainerId::parse(&a.id) {
        // The runtime never had it only when it has no directory at all: a create killed
        // before its first state write leaves a directory without state.json, which `ids`
        // does not list and the runtime's delete still removes.
        Ok(id) if provisioned && !store.dir(&id).exists() => {}
        Ok(id) => container::delete(&store, &id, a.force)?,
        // No container can have an invalid id, so with --force there is nothing to do.
        Err(_) if a.force => {}
        Err(e) => return Err(e.into()),
    }
    if provisioned {
        // The driver it was made with, whatever the default is now.
        let driver = a
            .storage
            .config(Default::default())
            .for_container(&a.id)
            .open()?;
        provision::remove_container(&a.storage.storage_root, driver.as_ref(), &a.id)
            .with_context(|| format!("removing the bundle and root filesystem of {}", a.id))?;
    }
    Ok(0)
}

pub fn list(global: &GlobalArgs, a: &ListArgs) -> anyhow::Result<u8> {
    let store = store(global)?;
    let mut states = Vec::new();
    for id in store.ids()? {
        // A container deleted while listing is simply not listed.
        if let Ok(st) = store.read(&id) {
            states.push(container_state(&st));
        }
    }
    super::listing::print(
        &a.output,
        &["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"],
        &states,
    )?;
    Ok(0)
}

/// A container in `list`: its JSON object is runc's state object (`state` prints the same).
impl Listed for Snapshot {
    fn id(&self) -> String {
        self.id.clone()
    }
    fn cells(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            self.pid.unwrap_or(0).to_string(),
            self.status.to_string(),
            self.bundle.display().to_string(),
            self.created.to_string(),
            self.owner.to_string(),
        ]
    }
}

/// `run`: create and start from a bundle; see [`run_container`].
pub fn run(global: &GlobalArgs, a: &RunArgs) -> anyhow::Result<u8> {
    let id = ContainerId::parse(a.id.as_deref().unwrap_or_default())?;
    let cfg = ContainerConfig::load(&a.create.bundle)?;
    run_container(global, &id, &cfg, &a.create.options(), a.detach)
}

/// Creates and starts container `id` from `cfg`; in the foreground waits for the process,
/// deletes the container and returns its status (128+signal when killed by one). A
/// foreground process with a terminal and no `--console-socket` gets its pty relayed here.
pub fn run_container(
    global: &GlobalArgs,
    id: &ContainerId,
    cfg: &ContainerConfig,
    opts: &CreateOptions,
    detach: bool,
) -> anyhow::Result<u8> {
    let store = store(global)?;
    let terminal = cfg
        .spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    let console = if terminal && !detach && opts.console_socket.is_none() {
        Some(ConsoleListener::new(&global.root)?)
    } else {
        None
    };
    let mut opts = opts.clone();
    if let Some(c) = &console {
        opts.console_socket = Some(c.path().to_path_buf());
    }
    // In the foreground, signals meant for the container are held from here on and
    // forwarded once it exists (the init resets its signal mask before exec).
    let forwarded = if detach {
        None
    } else {
        Some(block_forwarded_signals(console.is_none())?)
    };
    let pid = container::create_from_config(&store, id, cfg, &opts)?;
    stockade_fault::point("run:after-create");
    if let Some(set) = forwarded {
        // Started only now: create forks, which a process with threads should not do.
        std::thread::spawn(move || loop {
            if let Ok(sig) = set.wait() {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
            }
        });
    }
    // Received before start: the init sends it during create.
    let master = match console.as_ref().map(ConsoleListener::receive).transpose() {
        Ok(m) => m,
        Err(e) => {
            let _ = container::delete(&store, id, true);
            return Err(e);
        }
    };
    if let Some(m) = &master {
        terminal::copy_size(m);
    }
    if let Err(e) = container::start(&store, id) {
        let _ = container::delete(&store, id, true);
        return Err(e.into());
    }
    stockade_fault::point("run:after-start");
    if detach {
        return Ok(0);
    }
    let code = match master {
        Some(m) => terminal::relay(m, pid),
        None => wait_exit_code(pid),
    }
    .with_context(|| format!("waiting for container {id}"))?;
    container::delete(&store, id, true)?;
    Ok(code)
}

/// Blocks the signals a foreground `run` forwards to the container (as runc does): INT,
/// TERM, HUP, QUIT, USR1, USR2 and, without a relayed terminal (whose size the relay
/// follows), WINCH.
fn block_forwarded_signals(winch: bool) -> anyhow::Result<nix::sys::signal::SigSet> {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
    ] {
        set.add(s);
    }
    if winch {
        set.add(Signal::SIGWINCH);
    }
    set.thread_block()
        .context("blocking signals to forward to the container")?;
    Ok(set)
}

pub fn wait_exit_code(pid: i32) -> anyhow::Result<u8> {
    use nix::sys::wait::{waitpid, WaitStatus};
    loop {
        match waitpid(nix::unistd::Pid::from_raw(pid), None)? {
            WaitStatus::Exited(_, code) => return Ok(u8::try_from(code).unwrap_or(255)),
            WaitStatus::Signaled(_, sig, _) => return Ok(128u8.saturating_add(sig as u8)),
            _ => continue,
        }
    }
}
