//! `ward flows --since`: the records of the event log (one JSON record a line, as the
//! agent writes it) from a point in time on, and what the live stream repeats of them.
use std::io::{self, BufRead};

use crate::{control::FlowFilter, events::FlowRecord};

/// What the event log holds from a point in time on.
#[derive(Debug, Default, PartialEq)]
pub(super) struct History {
    /// The matching records, in file order.
    pub records: Vec<FlowRecord>,
    /// Lines that are not flow records (a torn last line, another format), skipped.
    pub unreadable: usize,
}

/// The records of `log` whose time (ms since the epoch) is `since_ms` or later and that
/// `filter` matches. Fields a record has beyond [`FlowRecord`]'s are ignored.
pub(super) fn read(log: impl BufRead, filter: &FlowFilter, since_ms: i64) -> io::Result<History> {
    let mut history = History::default();
    for line in log.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<FlowRecord>(&line) {
            Ok(r) if r.time >= since_ms && filter.matches(&r) => history.records.push(r),
            Ok(_) => {}
            Err(_) => history.unreadable += 1,
        }
    }
    Ok(history)
}

/// The history records the live stream may deliver again (those at or after the time
/// the subscription started, less a margin): each live record found here is skipped
/// once.
#[derive(Debug, Default)]
pub(super) struct Seen(Vec<String>);

impl Seen {
    /// The records of `history` at or after `from_ms`.
    pub fn new(history: &History, from_ms: i64) -> Self {
        let recent = history.records.iter().filter(|r| r.time >= from_ms);
        Seen(
            recent
                .filter_map(|r| serde_json::to_string(r).ok())
                .collect(),
        )
    }

    /// Whether `record` was printed from the history already (forgotten once asked).
    pub fn repeats(&mut self, record: &FlowRecord) -> bool {
        if self.0.is_empty() {
            return false;
        }
        let Ok(line) = serde_json::to_string(record) else {
            return false;
        };
        match self.0.iter().position(|s| *s == line) {
            Some(i) => {
                self.0.swap_remove(i);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::{
        tests::{record, T0},
        FlowVerdict,
    };

    /// The log: records at T0 + 0, 1, 2, 3 s, with a torn line and a record of a
    /// newer format (an extra field) among them.
    fn log() -> String {
        let line =
            |ms, verdict, src, dst| serde_json::to_string(&record(ms, verdict, src, dst)).unwrap();
        let mut extended: serde_json::Value =
            serde_json::from_str(&line(2000, "deny", "lab", "world")).unwrap();
        extended["device"] = serde_json::json!({"hostname": "h1"});
        [
            line(0, "deny", "lab", "clinic"),
            line(1000, "allow", "lab", "clinic"),
            "{\"class_uid\": 4001, \"time\"".to_owned(),
            extended.to_string(),
            line(3000, "deny", "guest", "lab"),
            String::new(),
        ]
        .join("\n")
    }

    fn times(h: &History) -> Vec<i64> {
        h.records
            .iter()
            .map(|r| r.time - (T0 * 1000) as i64)
            .collect()
    }

    #[test]
    fn reads_from_the_time_on_with_the_filter() {
        let t0 = (T0 * 1000) as i64;
        let all = read(log().as_bytes(), &FlowFilter::default(), t0).unwrap();
        assert_eq!(
            (times(&all), all.unreadable),
            (vec![0, 1000, 2000, 3000], 1)
        );
        let later = read(log().as_bytes(), &FlowFilter::default(), t0 + 1000).unwrap();
        assert_eq!(times(&later), vec![1000, 2000, 3000]);
        let denied = FlowFilter {
            verdict: Some(FlowVerdict::Deny),
            zone: Some("lab".into()),
            ..FlowFilter::default()
        };
        let h = read(log().as_bytes(), &denied, t0 + 1).unwrap();
        assert_eq!(times(&h), vec![2000, 3000]);
    }

    #[test]
    fn a_live_record_printed_from_the_history_is_skipped_once() {
        let t0 = (T0 * 1000) as i64;
        let history = read(log().as_bytes(), &FlowFilter::default(), t0).unwrap();
        let mut seen = Seen::new(&history, t0 + 3000);
        let last = history.records[3].clone();
        assert!(
            !seen.repeats(&history.records[2]),
            "before the subscription"
        );
        assert!(seen.repeats(&last));
        assert!(!seen.repeats(&last), "a second one is new");
    }
}
