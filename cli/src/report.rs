//! How an error reaches the user: the one place the cause chain is printed, and the one
//! prefix every error line on stderr starts with, `stockade: error:` — for the commands'
//! errors (also when the log goes to a file or is JSON), for clap's usage errors, and for
//! each name `image rm` could not remove.

/// What every error line on stderr starts with.
pub const ERROR_PREFIX: &str = "stockade: error: ";

/// Prints `msg` on stderr as an error line.
pub fn print_error(msg: &str) {
    eprintln!("{ERROR_PREFIX}{msg}");
}

/// clap's own text for a parse error, its first line given the error prefix (clap starts
/// it with `error: `); help and version requests unchanged.
pub fn clap_text(e: &clap::Error) -> String {
    let text = e.render().to_string();
    if !e.use_stderr() {
        return text;
    }
    let body = text.strip_prefix("error: ").unwrap_or(&text);
    format!("{ERROR_PREFIX}{body}")
}

/// Prints a clap parse error (or the help it was asked for) and exits with clap's status:
/// 2 for a usage error, 0 for help.
pub fn clap_exit(e: &clap::Error) -> ! {
    use std::io::Write;
    let text = clap_text(e);
    if e.use_stderr() {
        let _ = std::io::stderr().write_all(text.as_bytes());
    } else {
        let _ = std::io::stdout().write_all(text.as_bytes());
    }
    std::process::exit(e.exit_code())
}

/// The error and its causes on one line, leaving out a cause whose text the message before
/// it already contains (many library errors include their source in their own text).
pub fn error_text(e: &anyhow::Error) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_errors_get_the_prefix_and_help_does_not() {
        use clap::Parser;
        let e = crate::args::Cli::try_parse_from(["stockade", "no-such-command"]).unwrap_err();
        let text = clap_text(&e);
        assert!(text.starts_with("stockade: error: "), "{text}");
        assert!(!text.contains("stockade: error: error:"), "{text}");
        let help = crate::args::Cli::try_parse_from(["stockade", "--help"]).unwrap_err();
        assert!(!clap_text(&help).contains(ERROR_PREFIX));
    }

    #[test]
    fn each_cause_is_printed_once() {
        let io = std::io::Error::other("disk on fire");
        // A library error that repeats its source, then a context above it.
        let repeating = anyhow::Error::new(io).context("writing /x: disk on fire");
        let e = repeating.context("creating container c1");
        assert_eq!(
            error_text(&e),
            "creating container c1: writing /x: disk on fire"
        );
        // A library error that does not repeat it: the chain supplies it.
        let plain = anyhow::Error::new(std::io::Error::other("no space")).context("writing /y");
        assert_eq!(error_text(&plain), "writing /y: no space");
    }
}
