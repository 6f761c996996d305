//! `--restart` and the back-off between restarts.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::MonitorError;

/// When the monitor starts the container again after it exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "policy", content = "max_retries")]
pub enum RestartPolicy {
    /// Never.
    No,
    /// After a non-zero exit status, at most `N` times (`None`: without bound).
    OnFailure(Option<u32>),
    /// After every exit, until `stop`.
    Always,
    /// As `always` for the monitor; it differs at boot: the rc.d script starts `always`
    /// services again but not `unless-stopped` ones that were stopped.
    UnlessStopped,
}

impl FromStr for RestartPolicy {
    type Err = MonitorError;
    fn from_str(s: &str) -> Result<Self, MonitorError> {
        let bad = |why| MonitorError::BadPolicy {
            value: s.to_string(),
            why,
        };
        let (name, count) = match s.split_once(':') {
            Some((n, c)) => (n, Some(c)),
            None => (s, None),
        };
        match (name, count) {
            ("no", None) => Ok(RestartPolicy::No),
            ("always", None) => Ok(RestartPolicy::Always),
            ("unless-stopped", None) => Ok(RestartPolicy::UnlessStopped),
            ("on-failure", None) => Ok(RestartPolicy::OnFailure(None)),
            ("on-failure", Some(c)) => c
                .parse::<u32>()
                .map(|n| RestartPolicy::OnFailure(Some(n)))
                .map_err(|_| bad("the retry count is not a number")),
            ("no" | "always" | "unless-stopped", Some(_)) => {
                Err(bad("only on-failure takes a retry count"))
            }
            _ => Err(bad("unknown policy")),
        }
    }
}

impl fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestartPolicy::No => f.write_str("no"),
            RestartPolicy::OnFailure(None) => f.write_str("on-failure"),
            RestartPolicy::OnFailure(Some(n)) => write!(f, "on-failure:{n}"),
            RestartPolicy::Always => f.write_str("always"),
            RestartPolicy::UnlessStopped => f.write_str("unless-stopped"),
        }
    }
}

impl RestartPolicy {
    /// Whether to start again after an exit with `code`, `restarts` restarts having been
    /// made already, unless a stop was asked for (`stopped`), which always wins.
    pub fn restarts(self, code: u8, restarts: u32, stopped: bool) -> bool {
        if stopped {
            return false;
        }
        match self {
            RestartPolicy::No => false,
            RestartPolicy::OnFailure(max) => code != 0 && max.is_none_or(|m| restarts < m),
            RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
        }
    }
}

/// The wait before a restart: doubling from [`Backoff::FIRST`] up to [`Backoff::MAX`],
/// back to the first after a run of at least [`Backoff::RESET_AFTER`] (Docker's scheme:
/// a crash loop costs little, a service that ran a while restarts at once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            next: Backoff::FIRST,
        }
    }
}

impl Backoff {
    pub const FIRST: Duration = Duration::from_millis(100);
    pub const MAX: Duration = Duration::from_secs(60);
    pub const RESET_AFTER: Duration = Duration::from_secs(10);

    /// The wait after a run that lasted `ran`; the following one doubles.
    pub fn after_run(&mut self, ran: Duration) -> Duration {
        if ran >= Backoff::RESET_AFTER {
            self.next = Backoff::FIRST;
        }
        let wait = self.next;
        self.next = (self.next * 2).min(Backoff::MAX);
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_and_print_back() {
        for s in [
            "no",
            "on-failure",
            "on-failure:2",
            "always",
            "unless-stopped",
        ] {
            let p: RestartPolicy = s.parse().unwrap();
            assert_eq!(p.to_string(), s);
        }
        assert_eq!(
            "on-failure:0".parse::<RestartPolicy>().unwrap(),
            RestartPolicy::OnFailure(Some(0))
        );
        for bad in [
            "",
            "sometimes",
            "on-failure:x",
            "on-failure:-1",
            "always:3",
            "no:1",
        ] {
            assert!(bad.parse::<RestartPolicy>().is_err(), "{bad}");
        }
    }

    #[test]
    fn on_failure_restarts_failures_up_to_the_count() {
        let p = RestartPolicy::OnFailure(Some(2));
        assert!(p.restarts(1, 0, false));
        assert!(p.restarts(137, 1, false));
        assert!(!p.restarts(1, 2, false));
        assert!(!p.restarts(0, 0, false));
        assert!(RestartPolicy::OnFailure(None).restarts(1, 1000, false));
    }

    #[test]
    fn a_stop_wins_over_every_policy() {
        for p in [
            RestartPolicy::Always,
            RestartPolicy::UnlessStopped,
            RestartPolicy::OnFailure(None),
        ] {
            assert!(p.restarts(1, 0, false));
            assert!(!p.restarts(1, 0, true));
        }
        assert!(RestartPolicy::Always.restarts(0, 7, false));
        assert!(!RestartPolicy::No.restarts(1, 0, false));
    }

    #[test]
    fn backoff_doubles_to_its_cap_and_resets_after_a_long_run() {
        let mut b = Backoff::default();
        let short = Duration::from_millis(5);
        let waits: Vec<_> = (0..12).map(|_| b.after_run(short)).collect();
        assert_eq!(waits[0], Duration::from_millis(100));
        assert_eq!(waits[1], Duration::from_millis(200));
        assert_eq!(waits[2], Duration::from_millis(400));
        assert_eq!(*waits.last().unwrap(), Backoff::MAX);
        assert!(waits.windows(2).all(|w| w[1] >= w[0]));
        assert_eq!(b.after_run(Backoff::RESET_AFTER), Backoff::FIRST);
        assert_eq!(b.after_run(short), Duration::from_millis(200));
    }

    #[test]
    fn the_policy_serializes_with_stable_names() {
        let j = serde_json::to_value(RestartPolicy::OnFailure(Some(3))).unwrap();
        assert_eq!(
            j,
            serde_json::json!({"policy": "on-failure", "max_retries": 3})
        );
        let j = serde_json::to_value(RestartPolicy::Always).unwrap();
        assert_eq!(j, serde_json::json!({"policy": "always"}));
    }
}
