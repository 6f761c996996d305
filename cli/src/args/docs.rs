//! `stockade completion` and `stockade man`.

use std::path::PathBuf;

use clap::Args;
use clap_complete::Shell;

#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Directory to write stockade.8 and one page per command (stockade-run.8, …) into;
    /// created if missing.
    pub dir: PathBuf,
}
