//! One short function per command; each calls the libraries and returns an exit code.

mod explain;
pub mod image;
mod spec;

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

/// Runs one command.
pub fn dispatch(global: &GlobalArgs, command: Command) -> anyhow::Result<u8> {
    match command {
        Command::Spec(a) => spec::run(&a),
        Command::Explain(a) => explain::run(&a),
        Command::Image(a) => image::run(global, &a).map(|c| u8::try_from(c).unwrap_or(1)),
        other => anyhow::bail!("{other:?}: not implemented yet"),
    }
}
