//! `stockade completion SHELL` and `stockade man DIR`: shell completions and man pages,
//! both generated from the clap definitions in `args`, so they cannot disagree with the
//! command line they describe.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::CommandFactory;

use crate::args::docs::{CompletionArgs, ManArgs};
use crate::args::Cli;

/// Prints the completion script for a shell.
pub fn completion(a: &CompletionArgs) -> anyhow::Result<u8> {
    let mut cmd = Cli::command();
    clap_complete::generate(a.shell, &mut cmd, "stockade", &mut std::io::stdout());
    Ok(0)
}

/// Writes the man pages; prints each file written.
pub fn man(a: &ManArgs) -> anyhow::Result<u8> {
    std::fs::create_dir_all(&a.dir).with_context(|| format!("creating {}", a.dir.display()))?;
    let mut cmd = Cli::command().disable_help_subcommand(true);
    // Building gives each subcommand its display name (`stockade-image-pull`), which is
    // its page's name.
    cmd.build();
    let mut written = Vec::new();
    pages(&cmd, &a.dir, &mut written)?;
    for path in written {
        println!("{}", path.display());
    }
    Ok(0)
}

fn pages(cmd: &clap::Command, dir: &Path, written: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let page = clap_mangen::Man::new(cmd.clone())
        .section("8")
        .manual("System Manager's Manual")
        .source(format!("stockade {}", env!("CARGO_PKG_VERSION")));
    let path = page
        .generate_to(dir)
        .with_context(|| format!("writing a man page into {}", dir.display()))?;
    written.push(path);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        pages(sub, dir, written)?;
    }
    Ok(())
}
