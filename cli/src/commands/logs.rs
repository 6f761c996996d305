//! `stockade logs [-f] [--tail N] [--since WHEN] NAME`: the service's log as the container
//! wrote it, stdout lines to stdout and stderr lines to stderr.

use std::io::Write;
use std::time::Duration;

use chrono::Utc;
use stockade_monitor::filter;
use stockade_monitor::log::{self, Entry, Follower, Stream, LOG_FILE};

use super::stop::find;
use crate::args::service::LogsArgs;

/// How often `-f` looks for more.
const FOLLOW_POLL: Duration = Duration::from_millis(100);

pub fn run(a: &LogsArgs) -> anyhow::Result<u8> {
    let since = a
        .since
        .as_deref()
        .map(|s| filter::parse_since(s, Utc::now()))
        .transpose()?;
    let tail = filter::parse_tail(&a.tail)?;
    let dir = find(&a.storage.storage_root, &a.name)?;
    let cfg = dir.read_config()?;
    let driver = cfg.log.driver;
    // The current file is opened first and read to its end by the follower, so that `-f`
    // goes on exactly where the listing stopped.
    let current = dir.path().join(LOG_FILE);
    let mut follower = Follower::from_start(&current, driver)?;
    let mut entries = Vec::new();
    for f in log::log_files(dir.path(), cfg.log.max_files) {
        if f != current {
            entries.extend(log::read_entries_of(&f, driver)?);
        }
    }
    entries.extend(follower.poll()?);
    print(&filter::select(entries, since, tail))?;
    if !a.follow {
        return Ok(0);
    }
    loop {
        // Read after the liveness check: what the monitor wrote before it ended is printed.
        let alive = dir.monitor_alive()?;
        let more = follower.poll()?;
        let more: Vec<Entry> = more
            .into_iter()
            .filter(|e| since.is_none_or(|t| e.time >= t))
            .collect();
        print(&more)?;
        if !alive {
            return Ok(0);
        }
        std::thread::sleep(FOLLOW_POLL);
    }
}

fn print(entries: &[Entry]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    for e in entries {
        let w: &mut dyn Write = match e.stream {
            Stream::Stdout => &mut out,
            Stream::Stderr => &mut err,
        };
        w.write_all(&e.text)?;
        if !e.partial {
            w.write_all(b"\n")?;
        }
    }
    out.flush()?;
    Ok(())
}
