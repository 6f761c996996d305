//! Per-blob progress bars on stderr, drawn only when stderr is a terminal.

use std::io::IsTerminal;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A set of progress bars, or nothing at all.
pub struct Progress {
    multi: Option<MultiProgress>,
}

/// One blob's bar (a no-op when progress is off).
pub struct Bar(Option<ProgressBar>);

impl Progress {
    /// Bars when `wanted` and stderr is a terminal; silence otherwise.
    pub fn new(wanted: bool) -> Progress {
        let on = wanted && std::io::stderr().is_terminal();
        Progress {
            multi: on.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
        }
    }

    /// No bars, whatever stderr is.
    pub fn off() -> Progress {
        Progress { multi: None }
    }

    /// A bar for `total` bytes labelled `label`.
    pub fn bar(&self, label: &str, total: u64) -> Bar {
        let Some(multi) = &self.multi else {
            return Bar(None);
        };
        let pb = multi.add(ProgressBar::new(total));
        // The template is a constant known to be valid; if indicatif ever rejects it we
        // fall back to its default style rather than fail a download over a progress bar.
        if let Ok(style) = ProgressStyle::with_template(
            "{prefix:.bold} [{bar:30}] {bytes:>10}/{total_bytes:<10} {bytes_per_sec:>12} {eta}",
        ) {
            pb.set_style(style.progress_chars("=> "));
        }
        pb.set_prefix(label.to_string());
        Bar(Some(pb))
    }
}

impl Bar {
    /// Sets the bytes received so far.
    pub fn set(&self, position: u64) {
        if let Some(pb) = &self.0 {
            pb.set_position(position);
        }
    }

    /// Marks the blob done.
    pub fn finish(&self, message: &str) {
        if let Some(pb) = &self.0 {
            pb.finish_with_message(message.to_string());
        }
    }

    /// Marks the blob failed and removes the bar.
    pub fn abandon(&self) {
        if let Some(pb) = &self.0 {
            pb.abandon();
        }
    }
}
