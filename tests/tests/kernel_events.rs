//! Audit mode, flow events and their budgets in the kernel, through `BPF_PROG_TEST_RUN`
//! (needs root).
mod support;

use support::{
    frames::{FrameSpec, L4},
    TestDataplane, DROP, PASS,
};
use ward::{dataplane::Counters, state::PolicyNames};
use ward_common::{addr_from_bytes, FlowEvent, Reason, Verdict, NO_RULE};

const POLICY: &str = r#"
[zones.imaging]
cidrs = ["198.18.20.0/24", "2001:db8:20::/64"]
[zones.pacs]
cidrs = ["198.18.21.0/24"]
[zones.billing]
cidrs = ["198.18.23.0/24"]
mode = "audit"
[zones.ehr]
cidrs = ["198.18.22.0/24"]

[[allow]]
from = "imaging"
to = "pacs"
tcp = [104]
"#;

fn drain(ring: &mut aya::maps::RingBuf<aya::maps::MapData>) -> Vec<FlowEvent> {
    let mut out = Vec::new();
    while let Some(item) = ring.next() {
        assert_eq!(item.len(), std::mem::size_of::<FlowEvent>());
        out.push(unsafe { std::ptr::read_unaligned(item.as_ptr().cast::<FlowEvent>()) });
    }
    out
}

fn v4(s: &str) -> ward_common::Addr {
    let ip: std::net::Ipv4Addr = s.parse().unwrap();
    let mut b = [0u8; 16];
    b[..4].copy_from_slice(&ip.octets());
    addr_from_bytes(b)
}

#[test]
fn audited_zone_passes_and_counts_audit_while_others_stay_enforced() {
    let mut t = TestDataplane::new("audit-zone");
    t.configure("log_level = \"denied\"\n");
    let loaded = t.apply_str(POLICY);
    let mut ring = t.dp.take_events().unwrap();
    let to_billing = FrameSpec::new("198.18.20.10", "198.18.23.10", L4::Tcp(40000, 443));
    assert_eq!(
        t.xdp(&to_billing.build()),
        PASS,
        "flow into an audited zone passes"
    );
    assert_eq!(t.xdp(&to_billing.reply().build()), PASS, "and its replies");
    assert_eq!(t.xdp(&to_billing.build()), PASS, "and its next packets");
    let from_billing = FrameSpec::new("198.18.23.10", "198.18.21.10", L4::Tcp(40001, 22));
    assert_eq!(
        t.xdp(&from_billing.build()),
        PASS,
        "flow out of an audited zone passes"
    );
    let to_ehr = FrameSpec::new("198.18.20.10", "198.18.22.10", L4::Tcp(40002, 443));
    assert_eq!(t.xdp(&to_ehr.build()), DROP, "enforced zones still drop");

    let events = drain(&mut ring);
    let verdicts: Vec<(u8, u32)> = events.iter().map(|e| (e.verdict, e.reason)).collect();
    assert_eq!(
        verdicts,
        [
            (Verdict::Audit as u8, Reason::NoRule as u32),
            (Verdict::Audit as u8, Reason::NoRule as u32),
            (Verdict::Deny as u8, Reason::NoRule as u32),
        ],
        "one event for each flow's first packet: {events:?}"
    );
    let imaging = loaded.policy.zone_id("imaging").unwrap();
    let billing = loaded.policy.zone_id("billing").unwrap();
    assert_eq!(
        (events[0].src, events[0].dst),
        (v4("198.18.20.10"), v4("198.18.23.10"))
    );
    assert_eq!((events[0].src_zone, events[0].dst_zone), (imaging, billing));
    assert_eq!(
        (events[0].sport, events[0].dport, events[0].ip_proto),
        (40000, 443, 6)
    );
    assert_eq!(events[0].rule_id, NO_RULE);

    let counters = Counters::open(t.dir()).unwrap();
    let names = PolicyNames::new(1, &loaded.compiled);
    let snap = counters.snapshot(&[None, Some(names)]).unwrap();
    let audited = snap.zone_pairs[&("imaging".into(), "billing".into(), Verdict::Audit)];
    assert_eq!(
        audited.packets, 3,
        "the audited flow's packets, replies included"
    );
    assert_eq!(
        snap.zone_pairs[&("billing".into(), "pacs".into(), Verdict::Audit)].packets,
        1
    );
    assert_eq!(
        snap.zone_pairs[&("imaging".into(), "ehr".into(), Verdict::Deny)].packets,
        1
    );
    assert_eq!(
        (
            snap.events_emitted,
            snap.events_suppressed,
            snap.events_lost
        ),
        (3, 0, 0)
    );
    let by_reason = |verdict| {
        snap.reasons
            .iter()
            .find(|(r, v, _)| *r == Reason::NoRule && *v == verdict)
            .unwrap()
            .2
            .packets
    };
    assert_eq!(
        by_reason(Verdict::Audit),
        4,
        "audited no-rule packets are not drops"
    );
    assert_eq!(by_reason(Verdict::Deny), 1);
}

#[test]
fn global_audit_drops_nothing_and_reports_would_be_drops() {
    let mut t = TestDataplane::new("audit-all");
    t.configure("mode = \"audit\"\nlog_level = \"denied\"\n");
    t.apply_str(POLICY);
    let mut ring = t.dp.take_events().unwrap();
    let denied = FrameSpec::new("198.18.20.10", "198.18.22.10", L4::Tcp(40000, 443));
    assert_eq!(t.xdp(&denied.build()), PASS);
    let mut malformed = denied.build();
    malformed[14] = 0x55;
    assert_eq!(
        t.xdp(&malformed),
        PASS,
        "even malformed packets pass in audit mode"
    );
    let events = drain(&mut ring);
    let got: Vec<(u8, u32)> = events.iter().map(|e| (e.verdict, e.reason)).collect();
    assert_eq!(
        got,
        [
            (Verdict::Audit as u8, Reason::NoRule as u32),
            (Verdict::Audit as u8, Reason::Malformed as u32)
        ]
    );
}

#[test]
fn log_levels_choose_which_verdicts_are_reported() {
    let mut t = TestDataplane::new("levels");
    t.configure("log_level = \"off\"\n");
    let loaded = t.apply_str(POLICY);
    let mut ring = t.dp.take_events().unwrap();
    let denied = FrameSpec::new("198.18.20.10", "198.18.22.10", L4::Tcp(40000, 443));
    assert_eq!(t.xdp(&denied.build()), DROP);
    assert!(drain(&mut ring).is_empty(), "off: no events");

    t.configure("log_level = \"denied\"\n");
    let allowed = FrameSpec::new("198.18.20.10", "198.18.21.10", L4::Tcp(40001, 104));
    assert_eq!(t.xdp(&allowed.build()), PASS);
    assert_eq!(t.xdp(&denied.build()), DROP);
    let events = drain(&mut ring);
    assert_eq!(events.len(), 1, "denied: only the denial {events:?}");
    assert_eq!(events[0].verdict, Verdict::Deny as u8);

    t.configure("log_level = \"denied+new-allowed\"\n");
    let new_flow = FrameSpec::new("198.18.20.10", "198.18.21.10", L4::Tcp(40002, 104));
    assert_eq!(t.xdp(&new_flow.build()), PASS);
    assert_eq!(t.xdp(&new_flow.reply().build()), PASS);
    let events = drain(&mut ring);
    assert_eq!(events.len(), 1, "the new flow, not its reply: {events:?}");
    assert_eq!(
        (events[0].verdict, events[0].reason),
        (Verdict::Allow as u8, Reason::AllowedByRule as u32)
    );
    let rule = loaded.policy.first_rule(
        loaded.policy.zone_id("imaging").unwrap(),
        loaded.policy.zone_id("pacs").unwrap(),
        6,
        104,
    );
    assert_eq!(Some(events[0].rule_id), rule);
}

#[test]
fn per_source_budget_suppresses_and_a_full_ring_loses_and_both_are_counted() {
    let mut t = TestDataplane::new("budget");
    t.configure("log_level = \"denied\"\nevents_per_source = 5\n");
    t.apply_str(POLICY);
    let mut ring = t.dp.take_events().unwrap();
    let denied = FrameSpec::new("198.18.20.10", "198.18.22.10", L4::Tcp(40000, 443)).build();
    let (verdict, _) = t.dp.test_run_xdp(&denied, 20).unwrap();
    assert_eq!(verdict, DROP);
    let other = FrameSpec::new("198.18.20.11", "198.18.22.10", L4::Tcp(40000, 443)).build();
    t.dp.test_run_xdp(&other, 1).unwrap();
    assert_eq!(
        drain(&mut ring).len(),
        6,
        "5 from the first source, 1 from the second"
    );
    let counters = Counters::open(t.dir()).unwrap();
    let snap = counters.snapshot(&[None, None]).unwrap();
    assert_eq!(
        (
            snap.events_emitted,
            snap.events_suppressed,
            snap.events_lost
        ),
        (6, 15, 0)
    );

    // A flood with no budget fills the 4 MiB ring: nothing blocks, every event is counted.
    // No budget at all (neither per source nor per CPU): the ring itself overflows.
    t.configure("log_level = \"denied\"\n[events]\nper_source = 4294967295\nper_second = 0\n");
    let flood = 60_000;
    t.dp.test_run_xdp(&denied, flood).unwrap();
    let written = drain(&mut ring).len() as u64;
    let snap = counters.snapshot(&[None, None]).unwrap();
    assert!(snap.events_lost > 0, "the ring must overflow in this test");
    assert_eq!(
        snap.events_emitted - 6,
        written,
        "emitted = read from the ring"
    );
    assert_eq!(
        written + snap.events_lost,
        u64::from(flood),
        "every event accounted for"
    );
    assert_eq!(snap.events_suppressed, 15);
}

/// Packets counted under `malformed` with `verdict` so far.
fn malformed_count(t: &TestDataplane, verdict: Verdict) -> u64 {
    Counters::open(t.dir())
        .unwrap()
        .snapshot(&[None, None])
        .unwrap()
        .reasons
        .iter()
        .filter(|(r, v, _)| *r == Reason::Malformed && *v == verdict)
        .map(|(_, _, c)| c.packets)
        .sum()
}

/// Frames the fast path finds malformed before any lookup (and answers alone when no
/// event is to be sent): the full pipeline's verdict, counter and event in every mode.
#[test]
fn malformed_frames_get_the_same_verdict_counter_and_event_in_every_mode() {
    let good4 = FrameSpec::new("198.18.20.10", "198.18.21.10", L4::Tcp(40000, 104)).build();
    let good6 = FrameSpec::new("2001:db8:20::10", "2001:db8:20::11", L4::Udp(40000, 53)).build();
    let mut frames = vec![
        ("IPv4 header cut", good4[..14 + 19].to_vec()),
        ("IPv6 header cut", good6[..14 + 39].to_vec()),
        ("Ethernet header only", good4[..14].to_vec()),
    ];
    for (what, at, byte) in [("IPv4 version 5", 14, 0x55), ("IHL 4", 14, 0x44)] {
        let mut f = good4.clone();
        f[at] = byte;
        frames.push((what, f));
    }
    let mut long6 = good6.clone();
    long6[14 + 4] = 0x7f;
    frames.push(("IPv6 payload beyond the frame", long6));
    for (mode, log_level, verdict, reported) in [
        ("enforce", "off", Verdict::Deny, false),
        ("audit", "off", Verdict::Audit, false),
        ("enforce", "denied", Verdict::Deny, true),
        ("audit", "denied", Verdict::Audit, true),
    ] {
        let mut t = TestDataplane::new(&format!("malformed-{mode}-{log_level}"));
        t.configure(&format!("mode = \"{mode}\"\nlog_level = \"{log_level}\"\n"));
        t.apply_str(POLICY);
        let mut ring = t.dp.take_events().unwrap();
        for (what, frame) in &frames {
            let before = malformed_count(&t, verdict);
            let expected = if verdict == Verdict::Deny { DROP } else { PASS };
            assert_eq!(t.xdp(frame), expected, "{mode}/{log_level}: {what}");
            assert_eq!(
                malformed_count(&t, verdict),
                before + 1,
                "{mode}/{log_level}: {what} counted as malformed, {verdict:?}"
            );
            let got: Vec<(u8, u32)> = drain(&mut ring)
                .iter()
                .map(|e| (e.verdict, e.reason))
                .collect();
            let want = if reported {
                vec![(verdict as u8, Reason::Malformed as u32)]
            } else {
                Vec::new()
            };
            assert_eq!(got, want, "{mode}/{log_level}: {what}: events");
        }
    }
}
