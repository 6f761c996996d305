//! The one formatter of every listing (`list`, `ps`, `image ls`, `network ls`): the same
//! items printed as a table, as a JSON array, or as their ids alone, as `--format` and
//! `-q` say. A command only says what an item's id, JSON object and table cells are.

use std::io::Write;

use serde::Serialize;

use super::table::write_table;
use crate::args::output::{OutputFlags, OutputFormat};

/// An item of a listing. Its `Serialize` form is its JSON object: the field names are an
/// interface (docs/cli.md), so they are spelled out by the types, never derived from
/// the table's headers.
pub trait Listed: Serialize {
    /// What `-q` prints for it.
    fn id(&self) -> String;
    /// Its table row, one cell per header column.
    fn cells(&self) -> Vec<String>;
}

/// Writes `items` to `out` in the form `flags` asks for; `header` names the table's columns.
pub fn write<T: Listed>(
    out: &mut dyn Write,
    flags: &OutputFlags,
    header: &[&str],
    items: &[T],
) -> anyhow::Result<()> {
    if flags.quiet {
        for i in items {
            writeln!(out, "{}", i.id())?;
        }
        return Ok(());
    }
    match flags.format {
        OutputFormat::Json => writeln!(out, "{}", serde_json::to_string(items)?)?,
        OutputFormat::Table => {
            let rows: Vec<Vec<String>> = items.iter().map(Listed::cells).collect();
            write_table(out, header, &rows)?;
        }
    }
    Ok(())
}

/// [`write`] to stdout.
pub fn print<T: Listed>(flags: &OutputFlags, header: &[&str], items: &[T]) -> anyhow::Result<()> {
    write(&mut std::io::stdout().lock(), flags, header, items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Item {
        name: String,
        size: u64,
    }

    impl Listed for Item {
        fn id(&self) -> String {
            self.name.clone()
        }
        fn cells(&self) -> Vec<String> {
            vec![self.name.clone(), self.size.to_string()]
        }
    }

    fn render(format: OutputFormat, quiet: bool) -> String {
        let items = [
            Item {
                name: "a".into(),
                size: 1,
            },
            Item {
                name: "bbb".into(),
                size: 22,
            },
        ];
        let mut out = Vec::new();
        write(
            &mut out,
            &OutputFlags { format, quiet },
            &["NAME", "SIZE"],
            &items,
        )
        .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn one_listing_three_forms() {
        assert_eq!(
            render(OutputFormat::Table, false),
            "NAME   SIZE\na      1\nbbb    22\n"
        );
        let json: serde_json::Value =
            serde_json::from_str(&render(OutputFormat::Json, false)).unwrap();
        assert_eq!(
            json,
            serde_json::json!([{"name": "a", "size": 1}, {"name": "bbb", "size": 22}])
        );
        // -q wins over --format.
        assert_eq!(render(OutputFormat::Json, true), "a\nbbb\n");
        assert_eq!(render(OutputFormat::Table, true), "a\nbbb\n");
    }

    #[test]
    fn an_empty_listing_is_an_empty_array() {
        let mut out = Vec::new();
        let none: [Item; 0] = [];
        let flags = OutputFlags {
            format: OutputFormat::Json,
            quiet: false,
        };
        write(&mut out, &flags, &["NAME"], &none).unwrap();
        assert_eq!(out, b"[]\n");
    }
}
