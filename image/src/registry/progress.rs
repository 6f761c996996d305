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

/// The bar of an unpack on a terminal: layers unpacked of the image's layers, and their
/// compressed bytes. Layers already in storage are not unpacked again, so the count may
/// stop short of the total; [`UnpackProgress::finish`] clears the bar either way.
pub struct UnpackProgress {
    bar: Option<ProgressBar>,
    bytes: std::sync::atomic::AtomicU64,
}

impl UnpackProgress {
    /// A bar when `wanted` and stderr is a terminal; silence otherwise.
    pub fn new(wanted: bool) -> std::sync::Arc<UnpackProgress> {
        let on = wanted && std::io::stderr().is_terminal();
        let bar = on.then(|| {
            // Hidden until the layer count is known (set_layers).
            let pb = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::hidden());
            // As for the pull bars: a template indicatif rejects falls back to its default.
            if let Ok(style) = ProgressStyle::with_template(
                "unpacking [{bar:30}] {pos}/{len} layers, {msg} (compressed)",
            ) {
                pb.set_style(style.progress_chars("=> "));
            }
            pb.set_message(indicatif::HumanBytes(0).to_string());
            pb
        });
        std::sync::Arc::new(UnpackProgress {
            bar,
            bytes: Default::default(),
        })
    }

    /// Whether a bar is drawn.
    pub fn is_drawn(&self) -> bool {
        self.bar.is_some()
    }

    /// Sets the number of the image's layers.
    pub fn set_layers(&self, total: usize) {
        if let Some(pb) = &self.bar {
            pb.set_length(total as u64);
            pb.set_draw_target(ProgressDrawTarget::stderr());
            // indicatif rate-limits its draws; an image of a few small layers can be
            // unpacked between two allowed draws and the bar would never be seen. Layers
            // are few, so each change is drawn at once.
            pb.force_draw();
        }
    }

    /// Counts one unpacked layer of `compressed` bytes.
    pub fn layer_done(&self, compressed: u64) {
        use std::sync::atomic::Ordering;
        let total = self.bytes.fetch_add(compressed, Ordering::Relaxed) + compressed;
        if let Some(pb) = &self.bar {
            pb.inc(1);
            pb.set_message(indicatif::HumanBytes(total).to_string());
            pb.force_draw();
        }
    }

    /// The storage drivers' hook that counts each layer here.
    pub fn hook(self: &std::sync::Arc<Self>) -> crate::rootfs::unpack::LayerHook {
        let me = std::sync::Arc::clone(self);
        crate::rootfs::unpack::LayerHook(std::sync::Arc::new(move |_, compressed| {
            me.layer_done(compressed)
        }))
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(pb) = &self.bar {
            pb.finish_and_clear();
        }
    }

    /// The compressed bytes of the layers counted so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unpack_hook_counts_layers_and_bytes_without_a_terminal() {
        // Not wanted: no bar whatever stderr is, and the hook still counts.
        let p = UnpackProgress::new(false);
        assert!(!p.is_drawn());
        p.set_layers(2);
        let hook = p.hook();
        let d: crate::oci::digest::Digest = format!("sha256:{}", "a".repeat(64)).parse().unwrap();
        (hook.0)(&d, 100);
        (hook.0)(&d, 23);
        assert_eq!(p.bytes(), 123);
        p.finish();
    }
}
