//! Plain-text tables with columns as wide as their widest cell (what Go's tabwriter gives
//! runc's and Podman's listings), the last column unpadded.

use std::io::Write;

/// Writes `header` and `rows`, columns separated by three spaces.
pub fn write_table(
    out: &mut dyn Write,
    header: &[&str],
    rows: &[Vec<String>],
) -> std::io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line =
        |out: &mut dyn Write, cells: &mut dyn Iterator<Item = &str>| -> std::io::Result<()> {
            let cells: Vec<&str> = cells.collect();
            let mut text = String::new();
            for (i, c) in cells.iter().enumerate() {
                text.push_str(c);
                if i + 1 < cells.len() {
                    let pad = widths[i] - c.chars().count() + 3;
                    text.extend(std::iter::repeat_n(' ', pad));
                }
            }
            writeln!(out, "{}", text.trim_end())
        };
    line(out, &mut header.iter().copied())?;
    for r in rows {
        line(out, &mut r.iter().map(String::as_str))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_as_wide_as_their_widest_cell() {
        let mut out = Vec::new();
        let rows = vec![
            vec!["a-long-id".to_string(), "1".into(), "x".into()],
            vec!["b".to_string(), "12345".into(), "y".into()],
        ];
        write_table(&mut out, &["ID", "PID", "LAST"], &rows).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "ID          PID     LAST\na-long-id   1       x\nb           12345   y\n"
        );
    }
}
