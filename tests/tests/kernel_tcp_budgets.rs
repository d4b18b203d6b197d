//! TCP state and the budgets against a hostile host, in the kernel through
//! `BPF_PROG_TEST_RUN` (needs root): only a SYN opens a connection, half-open and
//! closed ones expire quickly, a responder never initiates on a tuple; one source
//! cannot churn the others' connections out of the table (failsafe SYNs included),
//! and a flood from random sources spends the per-CPU event budget.
mod support;

use support::{
    conntrack,
    containment::*,
    frames::{FrameSpec, ACK, FIN, L4, RST, SYN},
    TestDataplane, DROP, PASS,
};
use ward::dataplane::{Counters, LoadOptions};
use ward_common::{family, tcp_state, CtKey, CtValue, Reason, Verdict};

/// Whether `k` is the connection of TCP frame `f`.
fn is_connection_of(k: &CtKey, f: &FrameSpec) -> bool {
    let L4::Tcp(s, d) = f.l4 else {
        unreachable!("a TCP frame")
    };
    let fam = if f.src.is_ipv6() {
        family::V6
    } else {
        family::V4
    };
    k.family == fam && ((k.port_a, k.port_b) == (s, d) || (k.port_a, k.port_b) == (d, s))
}

fn entry(t: &mut TestDataplane, f: &FrameSpec) -> Option<CtValue> {
    conntrack::entries(t)
        .into_iter()
        .find(|(k, _)| is_connection_of(k, f))
        .map(|(_, v)| v)
}

/// Moves the entry's last packet `secs` into the past.
fn age(t: &mut TestDataplane, f: &FrameSpec, secs: u64) {
    let (k, mut v) = conntrack::entries(t)
        .into_iter()
        .find(|(k, _)| is_connection_of(k, f))
        .expect("tracked");
    // Wrapping: a freshly booted VM's monotonic clock may be younger than `secs`; the
    // programs compare times with wrapping arithmetic too.
    v.last_seen_ns = v.last_seen_ns.wrapping_sub(secs * 1_000_000_000);
    conntrack::write(t, &k, v);
}

#[test]
fn tcp_opens_only_with_syn_and_keeps_state() {
    let mut t = loaded("tcp-state");
    for (img, pacs) in [(IMAGING4, PACS4), (IMAGING6, PACS6)] {
        // Untracked segments without a lone SYN pass by rule but open nothing.
        for (port, flags) in [
            (41000, ACK),
            (41001, FIN | ACK),
            (41002, RST),
            (41003, SYN | ACK),
        ] {
            let seg = FrameSpec::new(img, pacs, L4::Tcp(port, 104)).flags(flags);
            expect(
                &t,
                &seg,
                PASS,
                Reason::AllowedByRule,
                "imaging -> pacs:104 by rule",
            );
            assert!(
                entry(&mut t, &seg).is_none(),
                "flags {flags:#x} open nothing"
            );
            let back = seg.reply().flags(ACK);
            expect(&t, &back, DROP, Reason::NoRule, "the responder's segment");
            let back_syn = seg.reply().flags(SYN);
            expect(&t, &back_syn, DROP, Reason::NoRule, "the responder's SYN");
        }
        // A handshake: SYN_SENT, SYN_RECV, ESTABLISHED.
        let syn = FrameSpec::new(img, pacs, L4::Tcp(42000, 104));
        expect(&t, &syn, PASS, Reason::AllowedByRule, "SYN");
        assert_eq!(entry(&mut t, &syn).unwrap().tcp_state, tcp_state::SYN_SENT);
        expect(&t, &syn.reply(), PASS, Reason::Established, "SYN-ACK");
        assert_eq!(entry(&mut t, &syn).unwrap().tcp_state, tcp_state::SYN_RECV);
        expect(
            &t,
            &syn.clone().flags(ACK),
            PASS,
            Reason::Established,
            "ACK",
        );
        assert_eq!(
            entry(&mut t, &syn).unwrap().tcp_state,
            tcp_state::ESTABLISHED
        );
        // The responder cannot initiate on the tuple.
        let responder_syn = syn.reply().flags(SYN);
        expect(
            &t,
            &responder_syn,
            DROP,
            Reason::NoRule,
            "responder's SYN on the tuple",
        );
        // An established connection idle for a minute lives on.
        age(&mut t, &syn, 61);
        expect(
            &t,
            &syn.reply().flags(ACK),
            PASS,
            Reason::Established,
            "idle 61 s",
        );
        // RST closes it: ten seconds later nothing passes.
        expect(
            &t,
            &syn.clone().flags(RST),
            PASS,
            Reason::Established,
            "RST",
        );
        assert_eq!(entry(&mut t, &syn).unwrap().tcp_state, tcp_state::CLOSED);
        expect(
            &t,
            &responder_syn,
            DROP,
            Reason::NoRule,
            "responder's SYN after RST",
        );
        age(&mut t, &syn, 11);
        expect(
            &t,
            &syn.reply().flags(ACK),
            DROP,
            Reason::NoRule,
            "after the RST timeout",
        );
        // The initiator opens it again with a SYN.
        expect(&t, &syn, PASS, Reason::AllowedByRule, "SYN again");
        assert_eq!(entry(&mut t, &syn).unwrap().tcp_state, tcp_state::SYN_SENT);
        // A half-open connection lasts a minute, not two hours.
        age(&mut t, &syn, 61);
        expect(
            &t,
            &syn.reply(),
            DROP,
            Reason::NoRule,
            "SYN-ACK after 61 s half-open",
        );
        // FIN: closing, two minutes.
        let fin = FrameSpec::new(img, pacs, L4::Tcp(42001, 104));
        assert_eq!(t.xdp(&fin.build()), PASS);
        assert_eq!(t.xdp(&fin.reply().build()), PASS);
        assert_eq!(t.xdp(&fin.clone().flags(FIN | ACK).build()), PASS);
        assert_eq!(entry(&mut t, &fin).unwrap().tcp_state, tcp_state::CLOSING);
        age(&mut t, &fin, 121);
        expect(
            &t,
            &fin.reply().flags(ACK),
            DROP,
            Reason::NoRule,
            "after the FIN timeout",
        );
    }
}

#[test]
fn one_source_cannot_churn_others_out_of_the_table() {
    const CAPACITY: u32 = 256;
    for limited in [false, true] {
        let mut t = TestDataplane::with_options(
            "flow-budget",
            &LoadOptions {
                conntrack_entries: Some(CAPACITY),
                ..Default::default()
            },
        );
        t.apply_str(POLICY);
        set_config(&mut t, |c| {
            c.flows_per_source = if limited { 10 } else { 0 };
            c.flow_burst = 20;
        });
        // The victim's long-lived connection.
        let victim = FrameSpec::new("198.18.20.99", PACS4, L4::Tcp(40000, 104));
        assert_eq!(t.xdp(&victim.build()), PASS);
        assert_eq!(t.xdp(&victim.reply().build()), PASS);
        // The attacker churns new allowed flows with fresh source ports, each seen twice
        // (a retransmitted SYN), so that the LRU takes them for connections in use.
        let (mut admitted, mut limited_out) = (0, 0);
        let started = std::time::Instant::now();
        for port in 0..16 * CAPACITY as u16 {
            let f = FrameSpec::new(IMAGING4, PACS4, L4::Tcp(10_000 + port, 104)).build();
            match t.xdp(&f) {
                PASS => admitted += 1,
                _ => limited_out += 1,
            }
            let _ = t.xdp(&f);
        }
        let survived = t.xdp(&victim.reply().flags(ACK).build()) == PASS;
        let third = FrameSpec::new("198.18.20.98", PACS4, L4::Tcp(40001, 104));
        assert_eq!(
            t.xdp(&third.build()),
            PASS,
            "another host still opens flows"
        );
        // The budget refills at 10 a second while the loop runs (slowly under QEMU).
        let refilled = 10 * (started.elapsed().as_secs() + 1);
        if limited {
            assert!(
                admitted <= 20 + refilled,
                "{admitted} flows admitted over the budget (20 + {refilled})"
            );
            // Each limited flow's retransmitted SYN is limited too, unless a token
            // came in between.
            let counted = count(&t, Reason::FlowLimit);
            assert!(
                (limited_out..=2 * limited_out).contains(&counted),
                "{counted} flow-limit denials for {limited_out} limited flows"
            );
            assert!(survived, "the victim's connection survives the churn");
        } else {
            // The control: without the budget the churn evicts the victim.
            assert_eq!(limited_out, 0);
            assert!(!survived, "without a budget the churn evicts the victim");
        }
    }
}

#[test]
fn a_flood_from_random_sources_spends_the_cpu_event_budget() {
    let mut t = loaded("event-budget");
    t.configure("log_level = \"denied\"\n");
    set_config(&mut t, |c| {
        c.events_per_source = 100;
        c.events_per_cpu = 5;
    });
    let mut ring = t.dp.take_events().unwrap();
    for i in 0..200u32 {
        let src = format!("198.18.{}.{}", 40 + i / 250, 1 + i % 250);
        let f = FrameSpec::new(&src, BILLING4, L4::Tcp(40000, 443));
        assert_eq!(t.xdp(&f.build()), DROP);
    }
    let mut events = 0;
    while ring.next().is_some() {
        events += 1;
    }
    let counters = Counters::open(t.dir()).unwrap();
    let suppressed = counters
        .events(ward_common::EventCounter::Suppressed)
        .unwrap();
    // 5 a second; the loop may straddle a second boundary or two.
    assert!(
        (5..=15).contains(&events),
        "{events} events from 200 sources"
    );
    assert_eq!(suppressed, 200 - events, "the rest counted as suppressed");
}

#[test]
fn failsafe_syns_are_tracked_within_the_flow_budget() {
    let mut t = loaded("failsafe-budget");
    t.configure("[failsafe]\nmanagement = [\"198.18.24.0/24\"]\ntcp_ports = [22]\n");
    set_config(&mut t, |c| {
        c.flows_per_source = 1;
        c.flow_burst = 5;
    });
    let started = std::time::Instant::now();
    for port in 0..200u16 {
        let syn = FrameSpec::new("198.18.24.99", PACS4, L4::Tcp(30_000 + port, 22));
        expect(
            &t,
            &syn,
            PASS,
            Reason::Failsafe,
            "a failsafe SYN passes, budget or not",
        );
    }
    let tracked = conntrack::entries(&mut t).len() as u64;
    let refilled = started.elapsed().as_secs() + 1;
    assert!(
        (1..=5 + refilled).contains(&tracked),
        "{tracked} failsafe connections tracked from one source (burst 5)"
    );
}

#[test]
fn a_lone_syn_no_rule_allows_is_denied_before_its_connection_is_looked_up() {
    let mut t = loaded("syn-first");
    let revoked = POLICY.replace("tcp = [104]", "tcp = [105]");
    let mut reference = ward_reference::ReferenceDataplane::new(
        &ward::policy::load_str("p.toml", POLICY).unwrap().policy,
    );
    for (i, (img, pacs)) in [(IMAGING4, PACS4), (IMAGING6, PACS6)]
        .into_iter()
        .enumerate()
    {
        t.apply_str(POLICY);
        reference.set_policy(&ward::policy::load_str("p.toml", POLICY).unwrap().policy);
        let syn = FrameSpec::new(img, pacs, L4::Tcp(42000 + i as u16, 104));
        for f in [&syn, &syn.reply(), &syn.clone().flags(ACK)] {
            assert_eq!(t.xdp(&f.build()), PASS, "{f:?}");
            assert_eq!(reference.judge(&f.build()).0, Verdict::Allow, "{f:?}");
        }
        expect(
            &t,
            &syn,
            PASS,
            Reason::Established,
            "a retransmitted SYN of the connection",
        );
        t.apply_str(&revoked);
        reference.set_policy(&ward::policy::load_str("p.toml", &revoked).unwrap().policy);
        // The policy no longer allows the connection: its initiator's SYN is denied by
        // the rules, before connection tracking, which keeps the entry...
        expect(
            &t,
            &syn,
            DROP,
            Reason::NoRule,
            "the SYN, by the rules alone",
        );
        assert_eq!(
            reference.judge(&syn.build()),
            (Verdict::Deny, Reason::NoRule)
        );
        assert!(
            entry(&mut t, &syn).is_some(),
            "the SYN did not touch the entry"
        );
        // ...until the connection's next other packet is judged again and revokes it.
        let ack = syn.clone().flags(ACK);
        expect(&t, &ack, DROP, Reason::PolicyRevoked, "its next ACK");
        assert_eq!(
            reference.judge(&ack.build()),
            (Verdict::Deny, Reason::PolicyRevoked)
        );
        assert!(entry(&mut t, &syn).is_none(), "revoked: the entry is gone");
    }
}

#[test]
fn a_retransmitted_syn_gives_its_flow_back_and_passes_out_of_budget() {
    let mut t = loaded("syn-budget");
    set_config(&mut t, |c| {
        c.flows_per_source = 1;
        c.flow_burst = 3;
    });
    let started = std::time::Instant::now();
    let conn = |port| FrameSpec::new(IMAGING4, PACS4, L4::Tcp(port, 104));
    let first = conn(43000);
    for f in [&first, &first.reply(), &first.clone().flags(ACK)] {
        assert_eq!(t.xdp(&f.build()), PASS, "{f:?}");
    }
    // Ten retransmissions of its SYN open nothing and spend nothing of the burst of 3...
    for _ in 0..10 {
        expect(&t, &first, PASS, Reason::Established, "a retransmitted SYN");
    }
    // ...which still has the two flows the first one left.
    for port in [43001, 43002] {
        expect(
            &t,
            &conn(port),
            PASS,
            Reason::AllowedByRule,
            "a new flow in budget",
        );
    }
    // Out of budget (unless a token came in meanwhile, at 1 a second), a new flow is
    // limited, but a tracked connection's SYN still passes.
    if started.elapsed().as_millis() < 900 {
        expect(
            &t,
            &conn(43003),
            DROP,
            Reason::FlowLimit,
            "a new flow past the budget",
        );
    }
    expect(
        &t,
        &first,
        PASS,
        Reason::Established,
        "a retransmitted SYN past the budget",
    );
    assert_eq!(
        entry(&mut t, &first).map(|v| v.tcp_state),
        Some(tcp_state::ESTABLISHED),
        "the connection is as it was"
    );
}
