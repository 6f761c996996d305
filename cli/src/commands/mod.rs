//! One short function per command; each calls the libraries and prints the result. The
//! flags are parsed in `args/`; what to do with them is decided by the libraries
//! (`stockade_runtime::container`, `stockade_image::provision`, …).

mod base;
mod bundle;
mod docs;
mod exec;
mod explain;
mod features;
mod human;
mod image;
mod image_push;
mod inspect;
mod lifecycle;
mod listing;
mod logs;
mod monitor;
mod network;
mod ps;
mod rm;
mod run_image;
mod service;
mod service_paths;
mod spec;
mod stop;
mod table;
mod terminal;
mod update;

use crate::args::{Command, GlobalArgs};

/// `stockade --version`, in the three lines callers parse.
pub fn version_text() -> String {
    format!(
        "stockade version {}\ncommit: {}\nspec: {}\n",
        env!("CARGO_PKG_VERSION"),
        env!("STOCKADE_COMMIT"),
        stockade_runtime::config::SPEC_VERSION
    )
}

/// runc's `--rootless=true|false|auto`. stockade runs rootless exactly when it is not root
/// (runc's `auto`): a value that asks otherwise is refused rather than ignored.
fn check_rootless(global: &GlobalArgs, command: &Command) -> anyhow::Result<()> {
    let makes_containers = !matches!(
        command,
        Command::Spec(_)
            | Command::Explain(_)
            | Command::Features
            | Command::Bundle(_)
            | Command::Completion(_)
            | Command::Man(_)
            | Command::Network(_)
            | Command::Logs(_)
            | Command::Inspect(_)
    );
    let root = nix::unistd::geteuid().is_root();
    match global.rootless.as_deref() {
        None | Some("auto") => Ok(()),
        Some("true") if root && makes_containers => anyhow::bail!(
            "--rootless=true as root: stockade runs rootless only as an unprivileged user (drop the flag, or run it as that user)"
        ),
        Some("false") if !root && makes_containers => anyhow::bail!(
            "--rootless=false as an unprivileged user: root is needed for a container that is not rootless"
        ),
        Some("true" | "false") => Ok(()),
        Some(other) => anyhow::bail!("--rootless={other:?}: expected true, false or auto"),
    }
}

/// Runs one command.
pub fn dispatch(global: &GlobalArgs, command: Command) -> anyhow::Result<u8> {
    check_rootless(global, &command)?;
    match command {
        Command::Spec(a) => spec::run(&a),
        Command::Explain(a) => explain::run(&a),
        Command::Image(a) => image::run(&a),
        Command::Create(a) => lifecycle::create(global, &a),
        Command::Start(a) => service::start(global, &a),
        Command::State(a) => lifecycle::state(global, &a),
        Command::Kill(a) => lifecycle::kill(global, &a),
        Command::Delete(a) => lifecycle::delete(global, &a),
        Command::List(a) => lifecycle::list(global, &a),
        Command::Run(a) if a.image.is_some() => run_image::run(global, &a),
        Command::Run(a) if a.registry.any() => anyhow::bail!(
            "run: --platform, --creds, --authfile and --insecure go with --image (they say how to pull it)"
        ),
        Command::Run(a) if a.limits.any() => anyhow::bail!(
            "run: --memory, --memory-swap, --pids-limit and --cpus go with --image; a bundle's limits are its config.json's linux.resources"
        ),
        Command::Run(a) => lifecycle::run(global, &a),
        Command::Bundle(a) => bundle::run(global, &a),
        Command::Ps(a) => ps::run(global, &a),
        Command::Update(a) => update::run(global, &a),
        Command::Exec(a) => exec::exec(global, &a),
        Command::Features => features::run(),
        Command::Completion(a) => docs::completion(&a),
        Command::Man(a) => docs::man(&a),
        Command::Network(a) => network::run(&a),
        Command::Logs(a) => logs::run(&a),
        Command::Stop(a) => stop::run(global, &a),
        Command::Rm(a) => rm::run(global, &a),
        Command::Inspect(a) => inspect::run(global, &a),
        Command::Monitor(a) => monitor::run(global, &a),
    }
}
