//! Detached services (`run --image -d`): the flags `run` takes for them, and `logs`,
//! `stop`, `rm`, `inspect` and the hidden `monitor` the CLI starts for each service.

use clap::Args;
use stockade_monitor::log::{self, LogDriver, LogOptions};
use stockade_monitor::policy::RestartPolicy;

use super::storage::StorageLocation;

fn policy(s: &str) -> Result<RestartPolicy, String> {
    s.parse()
        .map_err(|e: stockade_monitor::MonitorError| e.to_string())
}

fn driver(s: &str) -> Result<LogDriver, String> {
    s.parse()
        .map_err(|e: stockade_monitor::MonitorError| e.to_string())
}

fn size(s: &str) -> Result<u64, String> {
    log::parse_size(s).map_err(|e| e.to_string())
}

/// `run --image -d`'s restart policy and log (the log is the monitor's: a foreground
/// container writes to the terminal).
#[derive(Debug, Clone, Args)]
pub struct ServiceFlags {
    /// With -d: no, on-failure[:N] (at most N restarts), always, unless-stopped.
    #[arg(long, value_parser = policy, requires = "detach")]
    pub restart: Option<RestartPolicy>,
    /// With -d: the log file format, k8s-file or json-file (config key log_driver).
    #[arg(long = "log-driver", value_parser = driver, default_value = "k8s-file")]
    pub log_driver: LogDriver,
    /// With -d: the size at which the log file is rotated (k, m, g suffixes; config key log_size).
    #[arg(long = "log-size", value_parser = size, default_value = "10m")]
    pub log_size: u64,
    /// With -d: how many log files are kept, the current one included.
    #[arg(long = "log-files", default_value_t = log::DEFAULT_LOG_FILES, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub log_files: u32,
}

impl ServiceFlags {
    pub fn log_options(&self) -> LogOptions {
        LogOptions {
            driver: self.log_driver,
            max_size: self.log_size,
            max_files: self.log_files,
        }
    }
}

/// `stockade start ID`: runc's start of a created container, or a stopped service again.
#[derive(Debug, Args)]
pub struct StartArgs {
    /// For a service `run --image -d` made: where its bundle is.
    #[command(flatten)]
    pub storage: StorageLocation,
    /// Container id.
    pub id: String,
}

/// `stockade monitor ID`: started by `run --image -d`, not by hand.
#[derive(Debug, Args)]
pub struct MonitorArgs {
    #[command(flatten)]
    pub storage: StorageLocation,
    /// The service's container id.
    pub id: String,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Keep printing what the container writes, until the service exits.
    #[arg(short, long)]
    pub follow: bool,
    /// Print only the last N lines (or `all`).
    #[arg(long, default_value = "all")]
    pub tail: String,
    /// Print only what was written after this: a duration back from now (10s, 5m, 1h30m)
    /// or an RFC 3339 time.
    #[arg(long)]
    pub since: Option<String>,
    #[command(flatten)]
    pub storage: StorageLocation,
    /// The service's name (container id).
    pub name: String,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds between the stop signal and SIGKILL (default: --stop-timeout of run, else 10).
    #[arg(short = 't', long = "time")]
    pub time: Option<u32>,
    #[command(flatten)]
    pub storage: StorageLocation,
    /// The services' names.
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Kill a running service first; a name that does not exist is not an error.
    #[arg(short, long)]
    pub force: bool,
    #[command(flatten)]
    pub storage: StorageLocation,
    /// The containers' names.
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    #[command(flatten)]
    pub storage: StorageLocation,
    /// The containers' names.
    #[arg(required = true)]
    pub names: Vec<String>,
}
