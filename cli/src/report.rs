//! How an error reaches the user: the one place the cause chain is printed.

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
