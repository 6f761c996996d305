//! Cutting a stream of bytes into log entries: at each newline, and every [`MAX_LINE`]
//! bytes of a longer line.

use super::MAX_LINE;

/// Bytes read from one stream and not yet a whole line.
#[derive(Debug, Default)]
pub struct LineSplitter {
    buf: Vec<u8>,
}

impl LineSplitter {
    /// The entries (text, partial) that `data` completes.
    pub fn push(&mut self, data: &[u8]) -> Vec<(Vec<u8>, bool)> {
        let mut out = Vec::new();
        for &b in data {
            if b == b'\n' {
                out.push((std::mem::take(&mut self.buf), false));
            } else {
                self.buf.push(b);
                if self.buf.len() == MAX_LINE {
                    out.push((std::mem::take(&mut self.buf), true));
                }
            }
        }
        out
    }

    /// At the end of the stream: what is left, a partial entry (a line without newline).
    pub fn finish(&mut self) -> Option<(Vec<u8>, bool)> {
        (!self.buf.is_empty()).then(|| (std::mem::take(&mut self.buf), true))
    }
}
