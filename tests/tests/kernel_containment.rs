//! Containment against a hostile host, in the kernel through `BPF_PROG_TEST_RUN`
//! (needs root): ICMP errors as carriers, martian and own-address sources, link-scoped
//! traffic, TCP state, the per-source flow budget and the per-CPU event budget. Each
//! denial has its positive control next to it; the reason counters say which rule
//! decided. The gateway-only parts (reverse path, egress of unguarded interfaces) are
//! end-to-end tests (`e2e_adversary`).
mod support;

use std::net::IpAddr;

use aya::maps::{Array, HashMap};
use support::{
    frames::{FrameSpec, ACK, FIN, L4, RST, SYN},
    TestDataplane, DROP, PASS,
};
use ward::dataplane::{Counters, LoadOptions};
use ward_common::{
    addr_from_bytes, family, map_names, tcp_state, AddrKey, Config, CtKey, CtValue, Reason,
};

const POLICY: &str = r#"
[zones.imaging]
cidrs = ["198.18.20.0/24", "2001:db8:20::/64"]
[zones.pacs]
cidrs = ["198.18.21.0/24", "2001:db8:21::/64"]
[zones.billing]
cidrs = ["198.18.23.0/24", "2001:db8:23::/64"]
[zones.everything]
cidrs = ["0.0.0.0/0", "::/0"]

[[allow]]
from = "imaging"
to = "pacs"
tcp = [104]
icmp = true

[[allow]]
from = "everything"
to = "pacs"
tcp = [80]

[[allow]]
from = "imaging"
to = "everything"
tcp = [8080]
"#;

const IMAGING4: &str = "198.18.20.10";
const IMAGING6: &str = "2001:db8:20::10";
const PACS4: &str = "198.18.21.10";
const PACS6: &str = "2001:db8:21::10";
const BILLING4: &str = "198.18.23.10";
const BILLING6: &str = "2001:db8:23::10";

/// `TC_ACT_OK` and `TC_ACT_SHOT`.
const TC_OK: u32 = 0;
const TC_SHOT: u32 = 2;

fn loaded(tag: &str) -> TestDataplane {
    let mut t = TestDataplane::new(tag);
    t.apply_str(POLICY);
    set_config(&mut t, |c| {
        c.flows_per_source = 0;
        c.events_per_cpu = 0;
    });
    t
}

fn set_config(t: &mut TestDataplane, f: impl FnOnce(&mut Config)) {
    let mut config = t.dp.config().unwrap();
    f(&mut config);
    let mut array: Array<_, Config> =
        Array::try_from(t.dp.ebpf().map_mut(map_names::CONFIG).unwrap()).unwrap();
    array.set(0, config, 0).unwrap();
}

fn addr_key(addr: &str) -> AddrKey {
    let ip: IpAddr = addr.parse().unwrap();
    let (bytes, fam) = match ip {
        IpAddr::V4(v4) => {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&v4.octets());
            (b, family::V4)
        }
        IpAddr::V6(v6) => (v6.octets(), family::V6),
    };
    AddrKey {
        addr: addr_from_bytes(bytes),
        family: fam,
        _pad: [0; 3],
    }
}

/// Makes `addr` one of "this host's" addresses, as the agent writes them.
fn own(t: &mut TestDataplane, addr: &str) {
    let mut map: HashMap<_, AddrKey, u32> =
        HashMap::try_from(t.dp.ebpf().map_mut(map_names::HOST_ADDRS).unwrap()).unwrap();
    map.insert(addr_key(addr), 1, 0).unwrap();
}

/// Packets counted under `reason` (any verdict) so far.
fn count(t: &TestDataplane, reason: Reason) -> u64 {
    let snap = Counters::open(t.dir())
        .unwrap()
        .snapshot(&[None, None])
        .unwrap();
    snap.reasons
        .iter()
        .filter(|(r, _, _)| *r == reason)
        .map(|(_, _, c)| c.packets)
        .sum()
}

/// Asserts the frame's XDP verdict and that it was counted under `reason`.
fn expect(t: &TestDataplane, f: &FrameSpec, verdict: u32, reason: Reason, what: &str) {
    let before = count(t, reason);
    assert_eq!(t.xdp(&f.build()), verdict, "{what}");
    assert_eq!(
        count(t, reason),
        before + 1,
        "{what}: counted as {}",
        reason.name()
    );
}

fn quote(f: &FrameSpec) -> Vec<u8> {
    let p = f.ip_packet();
    let hlen = if f.src.is_ipv6() { 40 } else { 20 };
    p[..hlen + 8].to_vec()
}

#[test]
fn icmp_errors_are_related_only_going_back_to_the_quoted_sender_and_small() {
    let t = loaded("icmp-carrier");
    for (img, pacs, billing, unreach, big) in [
        (IMAGING4, PACS4, BILLING4, 3u8, 600usize),
        (IMAGING6, PACS6, BILLING6, 1u8, 1300usize),
    ] {
        let syn = FrameSpec::new(img, pacs, L4::Tcp(40000, 104));
        assert_eq!(t.xdp(&syn.build()), PASS, "imaging -> pacs:104 opens");
        let reply = syn.reply();

        // The carrier: imaging -> billing, quoting the pacs connection, 1,000 bytes.
        for quoted in [&reply, &syn] {
            let mut carrier = FrameSpec::new(img, billing, L4::Icmp(unreach, 1, 0));
            carrier.payload = quote(quoted);
            carrier.payload.extend_from_slice(&[0x55; 1000]);
            expect(
                &t,
                &carrier,
                DROP,
                Reason::NoRule,
                "error to billing quoting the pacs flow",
            );
        }
        // A genuine error, back to the quoted packet's sender: related.
        let mut genuine = FrameSpec::new(pacs, img, L4::Icmp(unreach, 1, 0));
        genuine.payload = quote(&syn);
        expect(&t, &genuine, PASS, Reason::Related, "error back to imaging");
        // The same error, oversized: judged as plain pacs -> imaging ICMP, no rule.
        let mut oversized = genuine.clone();
        oversized.payload.extend_from_slice(&vec![0x55; big]);
        expect(&t, &oversized, DROP, Reason::NoRule, "oversized error");
        // An unrelated error where a rule allows ICMP (imaging -> pacs): the rule decides.
        let mut ruled = FrameSpec::new(img, pacs, L4::Icmp(unreach, 1, 0));
        ruled.payload = quote(&FrameSpec::new(billing, img, L4::Udp(53, 40001)));
        expect(
            &t,
            &ruled,
            PASS,
            Reason::AllowedByRule,
            "imaging -> pacs icmp by rule",
        );
    }
}

#[test]
fn martian_and_own_sources_are_spoofed() {
    let mut t = loaded("martians");
    // Positive controls: `everything` may reach pacs:80; imaging may reach anything:8080.
    for (src, dst) in [("198.18.30.1", PACS4), ("2001:db8:30::1", PACS6)] {
        let ok = FrameSpec::new(src, dst, L4::Tcp(40000, 80));
        expect(
            &t,
            &ok,
            PASS,
            Reason::AllowedByRule,
            "a world source to pacs:80",
        );
    }
    for src in [
        "127.0.0.1",
        "0.0.0.0",
        "0.1.2.3",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
    ] {
        let f = FrameSpec::new(src, PACS4, L4::Tcp(40001, 80));
        expect(&t, &f, DROP, Reason::Spoofed, &format!("source {src}"));
    }
    for src in ["::1", "::", "ff02::1", "::ffff:198.18.20.10"] {
        let f = FrameSpec::new(src, PACS6, L4::Tcp(40002, 80));
        expect(&t, &f, DROP, Reason::Spoofed, &format!("source {src}"));
    }
    for dst in ["127.0.0.1", "::1"] {
        let src = if dst.contains(':') {
            IMAGING6
        } else {
            IMAGING4
        };
        let f = FrameSpec::new(src, dst, L4::Tcp(40003, 8080));
        expect(&t, &f, DROP, Reason::Spoofed, &format!("destination {dst}"));
    }
    // Duplicate address detection uses the unspecified source.
    let dad = FrameSpec::new("::", "ff02::1:ff00:10", L4::Icmp(135, 0, 0)).hops(255);
    expect(&t, &dad, PASS, Reason::NeighbourDiscovery, "DAD from ::");
    // This host is pacs: its own addresses never arrive as a source.
    for (pacs, img) in [(PACS4, IMAGING4), (PACS6, IMAGING6)] {
        own(&mut t, pacs);
        let forged = FrameSpec::new(pacs, img, L4::Tcp(40004, 8080));
        expect(&t, &forged, DROP, Reason::Spoofed, "own address as source");
        let to_us = FrameSpec::new(img, pacs, L4::Tcp(40005, 104));
        expect(
            &t,
            &to_us,
            PASS,
            Reason::AllowedByRule,
            "imaging -> own address",
        );
    }
}

#[test]
fn neighbour_discovery_and_mld_stay_on_the_link() {
    let mut t = loaded("on-link");
    let nd = |src: &str, dst: &str, ty: u8, hops: u8| {
        FrameSpec::new(src, dst, L4::Icmp(ty, 0, 0)).hops(hops)
    };
    let on_link = Reason::NeighbourDiscovery;
    expect(
        &t,
        &nd("fe80::1", "ff02::1:ff00:10", 135, 255),
        PASS,
        on_link,
        "NS",
    );
    expect(&t, &nd("fe80::1", "fe80::2", 136, 255), PASS, on_link, "NA");
    expect(&t, &nd("fe80::1", "ff02::1", 134, 255), PASS, on_link, "RA");
    let off = Reason::NotOnLink;
    expect(
        &t,
        &nd("fe80::1", "ff02::1:ff00:10", 135, 64),
        DROP,
        off,
        "NS, hop limit 64",
    );
    expect(
        &t,
        &nd(IMAGING6, BILLING6, 135, 255),
        DROP,
        off,
        "NS to billing's global address",
    );
    expect(
        &t,
        &nd(IMAGING6, "ff02::1", 134, 255),
        DROP,
        off,
        "RA from a global source",
    );
    expect(
        &t,
        &nd("fe80::1", BILLING6, 137, 255),
        DROP,
        off,
        "redirect to billing",
    );
    // Unicast neighbour unreachability detection to this host's own address passes.
    own(&mut t, BILLING6);
    expect(
        &t,
        &nd(IMAGING6, BILLING6, 135, 255),
        PASS,
        on_link,
        "NS to own address",
    );
    // The host's own ND leaves with hop limit 255, to any neighbour.
    let out = nd(BILLING6, PACS6, 135, 255).build();
    assert_eq!(t.dp.test_run_tc(&out).unwrap(), TC_OK, "own NS out");
    let out = nd(BILLING6, PACS6, 135, 254).build();
    assert_eq!(
        t.dp.test_run_tc(&out).unwrap(),
        TC_SHOT,
        "NS with hop limit 254 out"
    );

    let built_in = Reason::BuiltIn;
    expect(
        &t,
        &nd("fe80::1", "ff02::16", 143, 1),
        PASS,
        built_in,
        "MLDv2 report",
    );
    expect(
        &t,
        &nd("::", "ff02::16", 143, 1),
        PASS,
        built_in,
        "MLDv2 report from ::",
    );
    expect(
        &t,
        &nd("fe80::1", "ff02::1", 130, 1),
        PASS,
        built_in,
        "MLD query",
    );
    expect(
        &t,
        &nd("fe80::1", "ff02::16", 143, 64),
        DROP,
        off,
        "MLD, hop limit 64",
    );
    expect(
        &t,
        &nd(IMAGING6, "ff02::16", 143, 1),
        DROP,
        off,
        "MLD from a global source",
    );
    expect(
        &t,
        &nd("fe80::1", BILLING6, 131, 1),
        DROP,
        off,
        "MLD to a unicast address",
    );
}

#[test]
fn dhcp_clients_are_built_in_and_nothing_more() {
    let mut t = loaded("dhcp");
    let built_in = Reason::BuiltIn;
    let offer = FrameSpec::new("198.18.30.1", "255.255.255.255", L4::Udp(67, 68));
    expect(&t, &offer, PASS, built_in, "DHCPv4 offer, broadcast");
    let to_billing = FrameSpec::new("198.18.30.1", BILLING4, L4::Udp(67, 68));
    expect(
        &t,
        &to_billing,
        DROP,
        Reason::NoRule,
        "67 -> 68 to another host",
    );
    own(&mut t, BILLING4);
    expect(&t, &to_billing, PASS, built_in, "DHCPv4 ack to own address");
    let wrong_port = FrameSpec::new("198.18.30.1", "255.255.255.255", L4::Udp(68, 67));
    expect(
        &t,
        &wrong_port,
        DROP,
        Reason::NoRule,
        "a client's request arriving",
    );
    let advertise = FrameSpec::new("fe80::1", "fe80::2", L4::Udp(547, 546));
    expect(&t, &advertise, PASS, built_in, "DHCPv6 advertise");
    let to_global = FrameSpec::new("fe80::1", BILLING6, L4::Udp(547, 546));
    expect(
        &t,
        &to_global,
        DROP,
        Reason::NoRule,
        "547 -> 546 to another host",
    );

    let discover = FrameSpec::new("0.0.0.0", "255.255.255.255", L4::Udp(68, 67)).build();
    assert_eq!(
        t.dp.test_run_tc(&discover).unwrap(),
        TC_OK,
        "DHCPv4 discover out"
    );
    let solicit = FrameSpec::new("fe80::2", "ff02::1:2", L4::Udp(546, 547)).build();
    assert_eq!(
        t.dp.test_run_tc(&solicit).unwrap(),
        TC_OK,
        "DHCPv6 solicit out"
    );
    let other = FrameSpec::new("fe80::2", "ff02::1:2", L4::Udp(546, 548)).build();
    assert_eq!(t.dp.test_run_tc(&other).unwrap(), TC_SHOT, "546 -> 548 out");
}

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
    let map: HashMap<_, CtKey, CtValue> =
        HashMap::try_from(t.dp.ebpf().map_mut(map_names::CONNTRACK).unwrap()).unwrap();
    map.iter()
        .filter_map(Result::ok)
        .find(|(k, _)| is_connection_of(k, f))
        .map(|(_, v)| v)
}

/// Moves the entry's last packet `secs` into the past.
fn age(t: &mut TestDataplane, f: &FrameSpec, secs: u64) {
    let mut map: HashMap<_, CtKey, CtValue> =
        HashMap::try_from(t.dp.ebpf().map_mut(map_names::CONNTRACK).unwrap()).unwrap();
    let (k, mut v) = map
        .iter()
        .filter_map(Result::ok)
        .find(|(k, _)| is_connection_of(k, f))
        .expect("tracked");
    // Wrapping: a freshly booted VM's monotonic clock may be younger than `secs`; the
    // programs compare times with wrapping arithmetic too.
    v.last_seen_ns = v.last_seen_ns.wrapping_sub(secs * 1_000_000_000);
    map.insert(k, v, 0).unwrap();
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
        expect(&t, &syn, PASS, Reason::Failsafe, "a failsafe SYN passes, budget or not");
    }
    let map: HashMap<_, CtKey, CtValue> =
        HashMap::try_from(t.dp.ebpf().map_mut(map_names::CONNTRACK).unwrap()).unwrap();
    let tracked = map.iter().filter_map(Result::ok).count() as u64;
    let refilled = started.elapsed().as_secs() + 1;
    assert!(
        (1..=5 + refilled).contains(&tracked),
        "{tracked} failsafe connections tracked from one source (burst 5)"
    );
}
