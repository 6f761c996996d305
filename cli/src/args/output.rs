//! `--format json|table` and `-q`: the output flags every listing command shares
//! (docs/cli.md, "Output formats").

use clap::{Args, ValueEnum};

/// How a listing is printed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Columns as wide as their widest cell, with a header line.
    #[default]
    Table,
    /// One JSON array on one line, with the field names docs/cli.md lists.
    Json,
}

/// The flags of a listing command.
#[derive(Debug, Clone, Args)]
pub struct OutputFlags {
    /// Output format: table (default) or json (one array, field names in docs/cli.md).
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
    /// Print only the ids, one per line (whatever --format says).
    #[arg(short, long)]
    pub quiet: bool,
}
