//! `logs --since` and `--tail`: parsed once, applied to the entries read.

use chrono::{DateTime, Utc};

use crate::log::Entry;
use crate::MonitorError;

/// Parses `--since`: a duration before `now` (`10s`, `5m`, `2h`, `1d`, combined as
/// `1h30m`) or an RFC 3339 time (`2026-01-02T15:04:05Z`).
pub fn parse_since(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, MonitorError> {
    let bad = || MonitorError::BadSince {
        value: s.to_string(),
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if s.is_empty() {
        return Err(bad());
    }
    let mut total: i64 = 0;
    let mut digits = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit: i64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            _ => return Err(bad()),
        };
        let n: i64 = digits.parse().map_err(|_| bad())?;
        digits.clear();
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
    }
    if !digits.is_empty() {
        return Err(bad());
    }
    let d = chrono::Duration::try_seconds(total).ok_or_else(bad)?;
    now.checked_sub_signed(d).ok_or_else(bad)
}

/// Parses `--tail`: a number of lines, or `all` (`None`).
pub fn parse_tail(s: &str) -> Result<Option<usize>, MonitorError> {
    if s == "all" || s == "-1" {
        return Ok(None);
    }
    s.parse().map(Some).map_err(|_| MonitorError::BadTail {
        value: s.to_string(),
    })
}

/// The entries at or after `since`, then the last `tail` lines of them (a line being its
/// partial pieces and the entry that ends it, per stream).
pub fn select(
    entries: Vec<Entry>,
    since: Option<DateTime<Utc>>,
    tail: Option<usize>,
) -> Vec<Entry> {
    let mut kept: Vec<Entry> = entries
        .into_iter()
        .filter(|e| since.is_none_or(|t| e.time >= t))
        .collect();
    let Some(n) = tail else {
        return kept;
    };
    // Walk back over whole lines: an entry that ends a line (not partial), or a trailing
    // piece the stream has not ended yet, starts a line going backwards.
    let mut lines = 0;
    let mut start = kept.len();
    while start > 0 {
        let e = &kept[start - 1];
        let ends_line = !e.partial || start == kept.len();
        if ends_line {
            if lines == n {
                break;
            }
            lines += 1;
        }
        start -= 1;
    }
    kept.split_off(start)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::Stream;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    fn entry(secs: i64, text: &str, partial: bool) -> Entry {
        Entry {
            time: at(secs),
            stream: Stream::Stdout,
            partial,
            text: text.as_bytes().to_vec(),
        }
    }

    #[test]
    fn since_takes_durations_and_times() {
        let now = at(10_000);
        assert_eq!(parse_since("10s", now).unwrap(), at(9_990));
        assert_eq!(parse_since("5m", now).unwrap(), at(9_700));
        assert_eq!(parse_since("1h30m", now).unwrap(), at(10_000 - 5_400));
        assert_eq!(parse_since("1d", now).unwrap(), at(10_000 - 86_400));
        assert_eq!(
            parse_since("2027-01-15T08:00:00Z", now).unwrap(),
            DateTime::parse_from_rfc3339("2027-01-15T08:00:00Z").unwrap()
        );
        assert_eq!(
            parse_since("2027-01-15T10:00:00+02:00", now).unwrap(),
            DateTime::parse_from_rfc3339("2027-01-15T08:00:00Z").unwrap()
        );
        for bad in [
            "",
            "10",
            "5x",
            "m",
            "1h30",
            "-5s",
            "99999999999999999999s",
            "yesterday",
        ] {
            assert!(parse_since(bad, now).is_err(), "{bad}");
        }
    }

    #[test]
    fn tail_is_a_count_or_all() {
        assert_eq!(parse_tail("3").unwrap(), Some(3));
        assert_eq!(parse_tail("0").unwrap(), Some(0));
        assert_eq!(parse_tail("all").unwrap(), None);
        assert!(parse_tail("x").is_err());
        assert!(parse_tail("-2").is_err());
    }

    #[test]
    fn select_filters_by_time_then_keeps_the_last_lines() {
        let es: Vec<_> = (0..5).map(|i| entry(i, &format!("l{i}"), false)).collect();
        let texts = |v: Vec<Entry>| -> Vec<String> {
            v.iter()
                .map(|e| String::from_utf8(e.text.clone()).unwrap())
                .collect()
        };
        assert_eq!(texts(select(es.clone(), None, Some(2))), ["l3", "l4"]);
        assert_eq!(texts(select(es.clone(), Some(at(3)), None)), ["l3", "l4"]);
        assert_eq!(texts(select(es.clone(), Some(at(1)), Some(10))).len(), 4);
        assert!(select(es.clone(), None, Some(0)).is_empty());
        assert_eq!(select(es, None, None).len(), 5);
    }

    #[test]
    fn tail_keeps_the_pieces_of_a_long_line_together() {
        let es = vec![
            entry(0, "a", false),
            entry(1, "b1", true),
            entry(2, "b2", true),
            entry(3, "b3", false),
            entry(4, "c", true),
        ];
        let got = select(es.clone(), None, Some(2));
        assert_eq!(got.len(), 4, "{got:?}");
        assert_eq!(got[0].text, b"b1");
        let got = select(es, None, Some(1));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].text, b"c");
    }
}
