//! `stockade`: the runc-compatible command line of the stockade jail runtime.

mod args;
mod commands;
mod logging;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use args::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.global.version {
        print!("{}", commands::version_text());
        return ExitCode::SUCCESS;
    }
    let Some(command) = cli.command else {
        let _ = Cli::command().print_help();
        return ExitCode::from(2);
    };
    let logs_to_file = match logging::init(&cli.global) {
        Ok(to_file) => to_file,
        Err(e) => {
            eprintln!("stockade: {e:#}");
            return ExitCode::from(1);
        }
    };
    match commands::dispatch(&cli.global, command) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let msg = error_text(&e);
            tracing::error!("{msg}");
            if logs_to_file {
                eprintln!("stockade: {msg}");
            }
            ExitCode::from(1)
        }
    }
}

/// The error and its causes on one line, leaving out a cause whose text the message before
/// it already contains (library errors often include their source in their own text).
fn error_text(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
    }
    out
}
