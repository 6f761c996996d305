//! `stockade`: the runc-compatible command line of the stockade jail runtime.

mod args;
mod commands;
mod logging;
mod report;

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
            eprintln!("stockade: {}", report::error_text(&e));
            return ExitCode::from(1);
        }
    };
    match commands::dispatch(&cli.global, command) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let msg = report::error_text(&e);
            tracing::error!("{msg}");
            if logs_to_file {
                eprintln!("stockade: {msg}");
            }
            ExitCode::from(1)
        }
    }
}
