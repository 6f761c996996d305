//! Untrusted values in messages. A config, an image or a registry is an attacker: a value it
//! sends may be megabytes long, may carry terminal escapes, NULs or right-to-left overrides
//! that make a log line lie. Every value quoted in an error goes through [`quote`]: at most
//! [`MAX_CHARS`] characters are shown (with the full length when cut), inside double quotes,
//! with control, format (bidi) and invalid-UTF-8 bytes escaped.

use std::fmt::{self, Display, Write as _};
use std::os::unix::ffi::OsStrExt;

/// How many characters of a value a message shows.
pub const MAX_CHARS: usize = 200;

/// A value to quote in a message: bytes, shown as UTF-8 where they are.
#[derive(Clone, Copy)]
pub struct Quoted<'a> {
    bytes: &'a [u8],
    max_chars: usize,
}

/// Quotes `value` for a message: `"…"`, bounded and escaped.
pub fn quote<T: AsRef<[u8]> + ?Sized>(value: &T) -> Quoted<'_> {
    Quoted {
        bytes: value.as_ref(),
        max_chars: MAX_CHARS,
    }
}

/// Quotes a path (or any OS string) for a message.
pub fn quote_os<T: AsRef<std::ffi::OsStr> + ?Sized>(value: &T) -> Quoted<'_> {
    quote(value.as_ref().as_bytes())
}

impl<'a> Quoted<'a> {
    /// The same value with another bound on the characters shown.
    pub fn max_chars(self, max_chars: usize) -> Self {
        Quoted { max_chars, ..self }
    }
}

/// Characters that reorder or hide text on a terminal (Unicode bidi controls and the
/// invisible marks), which a hostile value could use to make a message read otherwise.
fn is_deceptive(c: char) -> bool {
    matches!(c,
        '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2069}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

fn escape(c: char, out: &mut impl fmt::Write) -> fmt::Result {
    match c {
        '"' => out.write_str("\\\""),
        '\\' => out.write_str("\\\\"),
        '\n' => out.write_str("\\n"),
        '\r' => out.write_str("\\r"),
        '\t' => out.write_str("\\t"),
        c if c.is_control() || is_deceptive(c) => write!(out, "\\u{{{:x}}}", c as u32),
        c => out.write_char(c),
    }
}

impl Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('"')?;
        let mut shown = 0usize;
        let mut rest = self.bytes;
        let mut cut = false;
        'outer: while !rest.is_empty() {
            let (valid, invalid) = match std::str::from_utf8(rest) {
                Ok(s) => (s, &[][..]),
                Err(e) => {
                    let (ok, bad) = rest.split_at(e.valid_up_to());
                    // `valid_up_to` marks the end of the valid prefix, so this cannot fail.
                    let ok = std::str::from_utf8(ok).unwrap_or_default();
                    let n = e.error_len().unwrap_or(bad.len());
                    (ok, &bad[..n])
                }
            };
            for c in valid.chars() {
                if shown == self.max_chars {
                    cut = true;
                    break 'outer;
                }
                escape(c, f)?;
                shown += 1;
            }
            for b in invalid {
                if shown == self.max_chars {
                    cut = true;
                    break 'outer;
                }
                write!(f, "\\x{b:02x}")?;
                shown += 1;
            }
            rest = &rest[valid.len() + invalid.len()..];
        }
        f.write_char('"')?;
        if cut {
            write!(f, "… ({} bytes in all)", self.bytes.len())?;
        }
        Ok(())
    }
}

/// A message fragment that may carry untrusted text but is already escaped for its own
/// purpose (a value's `{:?}` form, serde's echo of a wrong value): control and deceptive
/// characters are escaped and the length bounded, with no quotes added and backslashes
/// and quotes left alone, so the escaping already there reads as it did.
#[derive(Clone, Copy)]
pub struct Clipped<'a>(&'a str);

/// See [`Clipped`].
pub fn clip(text: &str) -> Clipped<'_> {
    Clipped(text)
}

impl Display for Clipped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut chars = self.0.chars();
        for c in chars.by_ref().take(MAX_CHARS) {
            if c.is_control() || is_deceptive(c) {
                write!(f, "\\u{{{:x}}}", c as u32)?;
            } else {
                f.write_char(c)?;
            }
        }
        if chars.next().is_some() {
            write!(f, "… ({} bytes in all)", self.0.len())?;
        }
        Ok(())
    }
}

impl fmt::Debug for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_value_is_quoted_as_is() {
        assert_eq!(quote("web-1").to_string(), "\"web-1\"");
    }

    #[test]
    fn long_value_is_cut_and_its_length_given() {
        let v = "a".repeat(10_000_000);
        let s = quote(&v).to_string();
        assert_eq!(
            s,
            format!("\"{}\"… (10000000 bytes in all)", "a".repeat(MAX_CHARS))
        );
    }

    #[test]
    fn value_of_exactly_the_bound_is_not_cut() {
        let v = "b".repeat(MAX_CHARS);
        assert_eq!(quote(&v).to_string(), format!("\"{v}\""));
    }

    #[test]
    fn control_and_bidi_characters_are_escaped() {
        let s = quote("a\0b\x1b[31m\u{202E}c\n\"\\").to_string();
        assert_eq!(s, "\"a\\u{0}b\\u{1b}[31m\\u{202e}c\\n\\\"\\\\\"");
    }

    #[test]
    fn invalid_utf8_bytes_are_shown_as_hex() {
        let s = quote(&b"ok\xff\xfeend"[..]).to_string();
        assert_eq!(s, "\"ok\\xff\\xfeend\"");
    }

    #[test]
    fn the_bound_counts_escaped_bytes_too() {
        let v = vec![0xffu8; 500];
        let s = quote(&v[..]).max_chars(3).to_string();
        assert_eq!(s, "\"\\xff\\xff\\xff\"… (500 bytes in all)");
    }

    #[test]
    fn clipped_text_keeps_its_escapes_and_loses_its_tricks() {
        let s = clip("\"a\\n\" \u{202E}\u{1b}").to_string();
        assert_eq!(s, "\"a\\n\" \\u{202e}\\u{1b}");
        let long = "x".repeat(MAX_CHARS + 1);
        assert_eq!(
            clip(&long).to_string(),
            format!(
                "{}… ({} bytes in all)",
                "x".repeat(MAX_CHARS),
                MAX_CHARS + 1
            )
        );
    }

    #[test]
    fn paths_quote_like_strings() {
        let p = std::path::Path::new("/tmp/x\u{202E}y");
        assert_eq!(quote_os(p).to_string(), "\"/tmp/x\\u{202e}y\"");
    }
}
