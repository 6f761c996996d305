//! `stockade`: the runc-compatible command line of the stockade jail runtime.

mod args;
mod closed_output;
mod commands;
mod logging;
mod report;
mod settings;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser};

use args::Cli;

fn main() -> ExitCode {
    closed_output::install();
    let cli = match parse() {
        Ok(cli) => cli,
        Err(e) => {
            report::print_error(&report::error_text(&e));
            return ExitCode::from(1);
        }
    };
    if cli.global.version {
        print!("{}", commands::version_text());
        return ExitCode::SUCCESS;
    }
    let Some(command) = cli.command else {
        let _ = Cli::command().print_help();
        return ExitCode::from(2);
    };
    let echo_errors = match logging::init(&cli.global) {
        Ok(echo) => echo,
        Err(e) => {
            report::print_error(&report::error_text(&e));
            return ExitCode::from(1);
        }
    };
    match commands::dispatch(&cli.global, command) {
        Ok(code) => ExitCode::from(code),
        Err(e) if closed_output::is_closed_stdout(&e) => {
            ExitCode::from(closed_output::EXIT_CLOSED_STDOUT)
        }
        Err(e) => {
            let msg = report::error_text(&e);
            // The log line is what runc's callers read back (the --log file, JSON lines).
            tracing::error!("{msg}");
            if echo_errors {
                report::print_error(&msg);
            }
            ExitCode::from(1)
        }
    }
}

/// The command line, with the config file's values as defaults below the flags and the
/// environment: a first parse finds `--config` (or `STOCKADE_CONFIG`), the second applies
/// the file it names. A request for help is answered by the second parse, so that the
/// defaults it shows are the file's.
fn parse() -> anyhow::Result<Cli> {
    let first = Cli::try_parse();
    let explicit = match &first {
        Ok(cli) => cli.global.config.clone(),
        Err(e) if is_help(e) => config_for_help(),
        Err(e) => report::clap_exit(e),
    };
    let Some(settings) = settings::load(explicit.as_deref())? else {
        return Ok(first.unwrap_or_else(|e| report::clap_exit(&e)));
    };
    let matches = settings::merge::apply(Cli::command(), &settings)
        .try_get_matches()
        .unwrap_or_else(|e| report::clap_exit(&e));
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| report::clap_exit(&e));
    if let Some(command) = &mut cli.command {
        settings::merge::attach_registries(command, &settings.registry_hosts());
        settings::merge::attach_network(command, settings.network.as_deref());
    }
    Ok(cli)
}

fn is_help(e: &clap::Error) -> bool {
    use clap::error::ErrorKind;
    matches!(
        e.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    )
}

/// `--config` when the command line is a request for help (which clap does not parse
/// further): a plain scan of the arguments, then `STOCKADE_CONFIG`. It only chooses which
/// defaults the help shows.
fn config_for_help() -> Option<std::path::PathBuf> {
    let mut args = std::env::args_os().skip(1);
    while let Some(a) = args.next() {
        if a == "--" {
            break;
        }
        if a == "--config" {
            return args.next().map(Into::into);
        }
        if let Some(v) = a.to_str().and_then(|s| s.strip_prefix("--config=")) {
            return Some(v.into());
        }
    }
    std::env::var_os("STOCKADE_CONFIG")
        .filter(|v| !v.is_empty())
        .map(Into::into)
}
