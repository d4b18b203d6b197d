//! The encoding, checked series by series through a small parser of the text format.
use std::collections::BTreeMap;

use ward_common::{Counter, Verdict};

use super::{
    encode,
    fixtures::{snapshot, status},
};
use crate::{
    dataplane::CounterSnapshot,
    state::{AgentStatus, Mode},
};

/// One sample: metric name, labels, value.
pub(super) type Sample = (String, BTreeMap<String, String>, f64);

/// Reads the sample lines of a text exposition (comments skipped).
pub(super) fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(parse_line)
        .collect()
}

/// `name{k="v",…} value` or `name value`; values may hold `\"`, `\\` and `\n`.
fn parse_line(line: &str) -> Sample {
    let (series, value) = line
        .rsplit_once(' ')
        .unwrap_or_else(|| panic!("no value: {line}"));
    let value = value
        .parse()
        .unwrap_or_else(|_| panic!("bad value: {line}"));
    let Some((name, rest)) = series.split_once('{') else {
        return (series.to_owned(), BTreeMap::new(), value);
    };
    let mut labels = BTreeMap::new();
    let mut chars = rest
        .strip_suffix('}')
        .unwrap_or_else(|| panic!("unclosed: {line}"))
        .chars();
    loop {
        let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
        if key.is_empty() {
            break;
        }
        assert_eq!(chars.next(), Some('"'), "{line}");
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '"' => break,
                '\\' => value.push(match chars.next() {
                    Some('n') => '\n',
                    Some(c) => c,
                    None => panic!("dangling escape: {line}"),
                }),
                c => value.push(c),
            }
        }
        labels.insert(key.trim_start_matches(',').to_owned(), value);
    }
    (name.to_owned(), labels, value)
}

/// The value of the series `name{labels}`, which must appear exactly once.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let want: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let found: Vec<f64> = samples
        .iter()
        .filter(|(n, l, _)| n == name && *l == want)
        .map(|s| s.2)
        .collect();
    assert_eq!(found.len(), 1, "{name}{labels:?} in {samples:#?}");
    found[0]
}

/// How many series of `name` there are.
fn series(samples: &[Sample], name: &str) -> usize {
    samples.iter().filter(|(n, _, _)| n == name).count()
}

#[test]
fn counters_by_zone_pair_and_reason() {
    let text = encode(&status(), &snapshot());
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(text.contains("# TYPE ward_packets counter\n"), "{text}");
    let s = parse(&text);
    let pair = |verdict| {
        [
            ("src_zone", "imaging"),
            ("dst_zone", "billing"),
            ("verdict", verdict),
        ]
    };
    assert_eq!(value(&s, "ward_packets_total", &pair("deny")), 3.0);
    assert_eq!(value(&s, "ward_packets_total", &pair("allow")), 10.0);
    assert_eq!(value(&s, "ward_bytes_total", &pair("deny")), 180.0);
    let audit = [
        ("src_zone", "world"),
        ("dst_zone", "imaging"),
        ("verdict", "audit"),
    ];
    assert_eq!(value(&s, "ward_bytes_total", &audit), 120.0);
    assert_eq!(series(&s, "ward_packets_total"), 3);

    assert_eq!(
        value(
            &s,
            "ward_verdicts_total",
            &[("reason", "no-rule"), ("verdict", "deny")]
        ),
        161.0
    );
    assert_eq!(
        value(
            &s,
            "ward_verdicts_total",
            &[("reason", "no-rule"), ("verdict", "audit")]
        ),
        162.0
    );
    assert_eq!(
        value(
            &s,
            "ward_verdicts_total",
            &[("reason", "established"), ("verdict", "allow")]
        ),
        110.0
    );
    let (allowing, denying) = (8, 9);
    assert_eq!(series(&s, "ward_verdicts_total"), allowing + 2 * denying);
    assert_eq!(
        value(
            &s,
            "ward_denied_packets_total",
            &[("reason", "policy-revoked")]
        ),
        191.0
    );
    let denying = [
        "no-rule",
        "malformed",
        "fragment-without-first",
        "policy-revoked",
        "no-policy",
        "quarantined",
        "spoofed",
        "flow-limit",
        "not-on-link",
    ];
    assert_eq!(series(&s, "ward_denied_packets_total"), denying.len());
    for reason in denying {
        value(&s, "ward_denied_packets_total", &[("reason", reason)]);
    }

    assert_eq!(value(&s, "ward_events_emitted_total", &[]), 5.0);
    assert_eq!(value(&s, "ward_events_suppressed_total", &[]), 6.0);
    assert_eq!(value(&s, "ward_events_lost_total", &[]), 7.0);
    let v4 = [("family", "ipv4")];
    let v6 = [("family", "ipv6")];
    assert_eq!(value(&s, "ward_conntrack_entries", &v4), 40.0);
    assert_eq!(value(&s, "ward_conntrack_entries", &v6), 2.0);
    assert_eq!(value(&s, "ward_conntrack_capacity", &v4), 1_048_576.0);
    assert_eq!(value(&s, "ward_conntrack_capacity", &v6), 1_048_576.0);
}

#[test]
fn status_of_the_agent() {
    let s = parse(&encode(&status(), &snapshot()));
    assert_eq!(value(&s, "ward_policy_generation", &[]), 3.0);
    let info = [
        ("hash", "abc123"),
        ("bundle_version", "7"),
        ("key_id", "0123456789abcdef"),
        ("bundle_digest", "d1e2"),
    ];
    assert_eq!(value(&s, "ward_policy_info", &info), 1.0);
    assert_eq!(series(&s, "ward_policy_info"), 1);
    assert_eq!(value(&s, "ward_policy_bundle_version", &[]), 7.0);
    assert_eq!(value(&s, "ward_fault", &[("area", "policy-fetch")]), 0.0);
    assert_eq!(
        value(&s, "ward_policy_loaded_timestamp_seconds", &[]),
        1_700_000_100.0
    );
    assert_eq!(
        value(&s, "ward_policy_last_reload_success_timestamp_seconds", &[]),
        1_700_000_100.0
    );
    assert_eq!(
        value(&s, "ward_policy_last_reload_failure_timestamp_seconds", &[]),
        1_700_000_200.0
    );
    let hook = |hook| [("interface", "eth0"), ("hook", hook)];
    assert_eq!(value(&s, "ward_attached", &hook("xdp-ingress")), 1.0);
    assert_eq!(value(&s, "ward_attached", &hook("tc-egress")), 0.0);
    assert_eq!(value(&s, "ward_mode", &[("mode", "audit")]), 1.0);
    assert_eq!(value(&s, "ward_quarantined_hosts", &[]), 2.0);
    let source = |source| [("source", source)];
    assert_eq!(
        value(&s, "ward_quarantined_hosts_by_source", &source("local")),
        1.0
    );
    assert_eq!(
        value(&s, "ward_quarantined_hosts_by_source", &source("fleet")),
        1.0
    );
    assert_eq!(value(&s, "ward_quarantines_total", &[("by", "fleet")]), 5.0);
    assert_eq!(value(&s, "ward_quarantines_total", &[("by", "auto")]), 3.0);
    assert_eq!(
        value(&s, "ward_quarantines_total", &[("by", "manual")]),
        1.0
    );
    assert_eq!(value(&s, "ward_quarantine_releases_total", &[]), 2.0);
    assert_eq!(value(&s, "ward_scan_alerts_exempt_total", &[]), 4.0);
    assert_eq!(value(&s, "ward_scan_events_skipped_total", &[]), 6.0);
    assert_eq!(value(&s, "ward_fault", &[("area", "interfaces")]), 0.0);
    assert_eq!(value(&s, "ward_fault", &[("area", "unguarded")]), 0.0);
    assert_eq!(value(&s, "ward_policy_awaiting_confirmation", &[]), 1.0);
    assert_eq!(value(&s, "ward_policy_rollbacks_total", &[]), 2.0);
    assert_eq!(value(&s, "ward_fault", &[("area", "event-log")]), 1.0);
    assert_eq!(value(&s, "ward_fault", &[("area", "policy")]), 0.0);
    assert_eq!(value(&s, "ward_tamper_total", &[]), 5.0);
    assert_eq!(value(&s, "ward_interfaces_refused", &[]), 1.0);
    assert_eq!(value(&s, "ward_breakglass_grants", &[]), 2.0);
    let source = |source| [("source", source)];
    assert_eq!(
        value(&s, "ward_breakglass_grants_by_source", &source("local")),
        1.0
    );
    assert_eq!(
        value(&s, "ward_breakglass_grants_by_source", &source("fleet")),
        1.0
    );
    assert_eq!(value(&s, "ward_breakglass_fleet_refused_grants", &[]), 1.0);
    assert_eq!(
        value(&s, "ward_breakglass_oldest_grant_timestamp_seconds", &[]),
        1_700_000_300.0
    );
    assert_eq!(value(&s, "ward_mode", &[("mode", "enforce")]), 0.0);
    let info = [("version", env!("CARGO_PKG_VERSION")), ("role", "gateway")];
    assert_eq!(value(&s, "ward_info", &info), 1.0);
}

#[test]
fn before_the_first_policy() {
    let status = AgentStatus {
        mode: Mode::Enforce,
        slots: [None, None],
        generation: 0,
        loaded_at: None,
        last_reload_ok: None,
        last_reload_error: None,
        response: Default::default(),
        failsafe: Default::default(),
        pending_confirmation: None,
        rollbacks_total: 0,
        last_rollback: None,
        faults: Vec::new(),
        distribution: Default::default(),
        breakglass: Vec::new(),
        breakglass_refused: Vec::new(),
        ..status()
    };
    let s = parse(&encode(&status, &CounterSnapshot::default()));
    assert_eq!(value(&s, "ward_policy_generation", &[]), 0.0);
    assert_eq!(series(&s, "ward_policy_info"), 0);
    assert_eq!(value(&s, "ward_policy_bundle_version", &[]), 0.0);
    assert_eq!(value(&s, "ward_policy_loaded_timestamp_seconds", &[]), 0.0);
    assert_eq!(
        value(&s, "ward_policy_last_reload_success_timestamp_seconds", &[]),
        0.0
    );
    assert_eq!(
        value(&s, "ward_policy_last_reload_failure_timestamp_seconds", &[]),
        0.0
    );
    assert_eq!(value(&s, "ward_mode", &[("mode", "enforce")]), 1.0);
    assert_eq!(series(&s, "ward_packets_total"), 0);
    assert_eq!(value(&s, "ward_breakglass_grants", &[]), 0.0);
    let fleet = [("source", "fleet")];
    assert_eq!(value(&s, "ward_breakglass_grants_by_source", &fleet), 0.0);
    assert_eq!(value(&s, "ward_breakglass_fleet_refused_grants", &[]), 0.0);
    assert_eq!(
        value(&s, "ward_breakglass_oldest_grant_timestamp_seconds", &[]),
        0.0
    );
}

#[test]
fn label_values_are_escaped() {
    let mut snapshot = CounterSnapshot::default();
    snapshot.zone_pairs.insert(
        ("a\"b\\c".into(), "d\ne".into(), Verdict::Deny),
        Counter {
            packets: 1,
            bytes: 2,
        },
    );
    let s = parse(&encode(&status(), &snapshot));
    let labels = [
        ("src_zone", "a\"b\\c"),
        ("dst_zone", "d\ne"),
        ("verdict", "deny"),
    ];
    assert_eq!(value(&s, "ward_packets_total", &labels), 1.0);
}
