//! Log output: text to stderr or `--log FILE`, or runc's JSON lines
//! (`{"level":"error","msg":"…","time":"RFC3339"}`) that containerd and Podman read back.

use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::sync::Mutex;

use anyhow::Context;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

use crate::args::{GlobalArgs, LogFormat};

/// Collects an event's message, then its other fields as `key=value`, into one line.
#[derive(Default)]
struct Message {
    text: String,
    fields: String,
}

impl Message {
    fn line(self) -> String {
        match (self.text.is_empty(), self.fields.is_empty()) {
            (_, true) => self.text,
            (true, false) => self.fields,
            (false, false) => format!("{} {}", self.text, self.fields),
        }
    }
}

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.text, "{value:?}");
        } else {
            let sep = if self.fields.is_empty() { "" } else { " " };
            let _ = write!(self.fields, "{sep}{}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.text.push_str(value);
        } else {
            let sep = if self.fields.is_empty() { "" } else { " " };
            let _ = write!(self.fields, "{sep}{}={value}", field.name());
        }
    }
}

fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "error",
        Level::WARN => "warning",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

/// One JSON object per line, exactly the three keys runc writes.
struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let mut msg = Message::default();
        event.record(&mut msg);
        let line = serde_json::json!({
            "level": level_name(event.metadata().level()),
            "msg": msg.line(),
            "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        });
        writeln!(writer, "{line}")
    }
}

/// `stockade: level: message` lines for people.
struct TextLines;

impl<S, N> FormatEvent<S, N> for TextLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let mut msg = Message::default();
        event.record(&mut msg);
        writeln!(
            writer,
            "stockade: {}: {}",
            level_name(event.metadata().level()),
            msg.line()
        )
    }
}

/// What `--debug` turns on: stockade's own crates' step logs (the libraries' crates it
/// pulls in, such as the HTTP client, stay at warnings; `STOCKADE_LOG` chooses freely).
const DEBUG_FILTER: &str =
    "warn,stockade=debug,stockade_runtime=debug,stockade_image=debug,stockade_net=debug";

/// Installs the global subscriber. Returns whether an error must also be printed on stderr
/// as a `stockade: error:` line: when the log is not already that (it goes to a file, or
/// is JSON), so whoever ran the command sees it as well as the caller reading the log.
pub fn init(global: &GlobalArgs) -> anyhow::Result<bool> {
    let default = if global.debug { DEBUG_FILTER } else { "warn" };
    let filter =
        EnvFilter::try_from_env("STOCKADE_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false);
    let echo = match &global.log {
        Some(path) if path.as_os_str() != "/dev/stderr" => {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("opening log file {}", path.display()))?;
            let w = Mutex::new(file);
            match global.log_format {
                LogFormat::Json => builder.event_format(JsonLines).with_writer(w).try_init(),
                LogFormat::Text => builder.event_format(TextLines).with_writer(w).try_init(),
            }
            .map_err(|e| anyhow::anyhow!("installing the logger: {e}"))?;
            true
        }
        _ => {
            match global.log_format {
                LogFormat::Json => builder
                    .event_format(JsonLines)
                    .with_writer(std::io::stderr)
                    .try_init(),
                LogFormat::Text => builder
                    .event_format(TextLines)
                    .with_writer(std::io::stderr)
                    .try_init(),
            }
            .map_err(|e| anyhow::anyhow!("installing the logger: {e}"))?;
            global.log_format == LogFormat::Json
        }
    };
    Ok(echo)
}
