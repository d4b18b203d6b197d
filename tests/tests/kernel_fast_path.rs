//! The fast path for established connections, in the kernel through
//! `BPF_PROG_TEST_RUN` (needs root): a connection's endpoint found established by the
//! full pipeline gets a permission on its entry for the hook it was seen at, its next
//! packets pass by that entry and are counted as the full pipeline counts them, and
//! nothing the full pipeline would drop slips through it: a revoked rule, a
//! quarantine, a forged packet from the other hook (an ICMP error quoting the
//! connection moves no permission to its hook), a SYN, a malformed frame, and,
//! once the permission is older than its window, anti-spoofing's own addresses.
mod support;

use std::{net::IpAddr, time::Duration};

use aya::maps::{PerCpuArray, PerCpuHashMap};
use support::{
    conntrack,
    containment::*,
    frames::{FrameSpec, ACK, L4, SYN},
    TestDataplane, DROP, PASS,
};
use ward_common::{
    direction, fast_hook, map_names, tcp_state, Counter, CtValue, PairSlot, Reason, ZonePairKey,
    FAST_RECHECK_JIFFIES,
};

/// The connection entry of `f` and whether `f`'s sender is its endpoint `a`.
fn entry(t: &mut TestDataplane, f: &FrameSpec) -> (CtValue, bool) {
    let L4::Tcp(sport, dport) = f.l4 else {
        unreachable!("a TCP frame")
    };
    conntrack::entries(t)
        .into_iter()
        .find_map(|(k, v)| {
            if (k.port_a, k.port_b) == (sport, dport) {
                Some((v, true))
            } else if (k.port_a, k.port_b) == (dport, sport) {
                Some((v, false))
            } else {
                None
            }
        })
        .expect("tracked")
}

/// The fast-path permission of `f`'s sender on its entry.
fn permission(t: &mut TestDataplane, f: &FrameSpec) -> u32 {
    let (v, from_a) = entry(t, f);
    v.fast_hook[usize::from(!from_a)]
}

/// An established connection imaging → PACS:104 on `port`: the SYN and the client's
/// ACK arrive (XDP), the SYN-ACK leaves (TC). Returns the client's data segment.
fn established(t: &mut TestDataplane, client: &str, server: &str, port: u16) -> FrameSpec {
    let syn = FrameSpec::new(client, server, L4::Tcp(port, 104));
    expect(t, &syn, PASS, Reason::AllowedByRule, "SYN");
    assert_eq!(
        t.dp.test_run_tc(&syn.reply().build()).unwrap(),
        TC_OK,
        "SYN-ACK out"
    );
    let ack = syn.clone().flags(ACK);
    expect(t, &ack, PASS, Reason::Established, "the client's ACK");
    assert_eq!(entry(t, &ack).0.tcp_state, tcp_state::ESTABLISHED);
    ack
}

const HOSTS: [(&str, &str); 2] = [(IMAGING4, PACS4), (IMAGING6, PACS6)];

#[test]
fn established_packets_ride_their_entry_and_are_counted_alike() {
    let mut t = loaded("fast-ride");
    for (client, server) in HOSTS {
        let data = established(&mut t, client, server, 43000);
        // XDP test runs see the loopback device as the arrival interface.
        let ingress = fast_hook(1, direction::INGRESS);
        assert_eq!(
            permission(&mut t, &data),
            ingress,
            "{client}: the full pipeline left the client's permission for XDP"
        );
        let reply = data.reply().flags(ACK);
        assert_eq!(
            t.dp.test_run_tc(&reply.build()).unwrap(),
            TC_OK,
            "reply out"
        );
        assert_eq!(
            permission(&mut t, &reply),
            fast_hook(1, direction::EGRESS),
            "{client}: the server's permission is for TC"
        );
        let pairs_before = pair_packets(&mut t);
        for i in 0..5 {
            expect(&t, &data, PASS, Reason::Established, &format!("data {i}"));
        }
        assert_eq!(
            pair_packets(&mut t),
            pairs_before + 5,
            "{client}: counted under the connection's zone pair"
        );
    }
}

/// Packets counted under any zone pair so far, all CPUs, cache and hash map.
fn pair_packets(t: &mut TestDataplane) -> u64 {
    let map: PerCpuHashMap<_, ZonePairKey, Counter> =
        PerCpuHashMap::try_from(t.dp.ebpf().map(map_names::ZONE_PAIR_COUNTERS).unwrap()).unwrap();
    let hashed: u64 = map
        .iter()
        .filter_map(Result::ok)
        .map(|(_, per_cpu)| per_cpu.iter().map(|c| c.packets).sum::<u64>())
        .sum();
    let cache: PerCpuArray<_, PairSlot> =
        PerCpuArray::try_from(t.dp.ebpf().map(map_names::PAIR_CACHE).unwrap()).unwrap();
    let cached: u64 = (0..cache.len())
        .map(|i| {
            cache
                .get(&i, 0)
                .unwrap()
                .iter()
                .map(|e| e.counter.packets)
                .sum::<u64>()
        })
        .sum();
    hashed + cached
}

#[test]
fn what_the_full_pipeline_drops_never_rides_an_entry() {
    // One load per case, both families in it (under TCG each load costs seconds).
    // A revoked rule: the next packet is judged again.
    let mut t = loaded("fast-revoke");
    let data: Vec<FrameSpec> = HOSTS
        .iter()
        .map(|(client, server)| established(&mut t, client, server, 43100))
        .collect();
    t.apply_str(&POLICY.replace("tcp = [104]", "tcp = [105]"));
    for d in &data {
        expect(&t, d, DROP, Reason::PolicyRevoked, "rule revoked");
    }

    // A quarantined client is cut off at once.
    let mut t = loaded("fast-quarantine");
    let data: Vec<FrameSpec> = HOSTS
        .iter()
        .map(|(client, server)| established(&mut t, client, server, 43200))
        .collect();
    for ((client, _), d) in HOSTS.iter().zip(&data) {
        let ip: IpAddr = client.parse().unwrap();
        t.dp.quarantine(ip, None, "test", "test").unwrap();
        expect(&t, d, DROP, Reason::Quarantined, "client quarantined");
    }

    let mut t = loaded("fast-shape");
    for (client, server) in HOSTS {
        let data = established(&mut t, client, server, 43300);
        // The responder's SYN on the tuple is a new flow, which no rule allows.
        let responder_syn = data.reply().flags(SYN);
        expect(&t, &responder_syn, DROP, Reason::NoRule, "responder's SYN");
        // A malformed segment of the connection: data offset 4.
        let mut bad = data.build();
        let doff = if data.src.is_ipv6() {
            14 + 40 + 12
        } else {
            14 + 20 + 12
        };
        bad[doff] = 0x40;
        let before = count(&t, Reason::Malformed);
        assert_eq!(t.xdp(&bad), DROP, "{client}: data offset 4");
        assert_eq!(count(&t, Reason::Malformed), before + 1);
        // A length beyond the frame.
        let mut long = data.build();
        let len_at = if data.src.is_ipv6() { 14 + 4 } else { 14 + 2 };
        long[len_at] = 0x7f;
        assert_eq!(t.xdp(&long), DROP, "{client}: IP length beyond the frame");
        // Still established for well-formed packets.
        expect(
            &t,
            &data,
            PASS,
            Reason::Established,
            "after the malformed ones",
        );
    }
}

/// This host is the server of an established connection on `port` (its own address):
/// the client's data arrives (XDP) and the server's reply leaves (TC), which gives the
/// server's side its permission for TC. Returns the reply.
fn served(t: &mut TestDataplane, client: &str, server: &str, port: u16) -> FrameSpec {
    own(t, server);
    let data = established(t, client, server, port);
    let reply = data.reply().flags(ACK);
    assert_eq!(
        t.dp.test_run_tc(&reply.build()).unwrap(),
        TC_OK,
        "reply out"
    );
    assert_eq!(permission(t, &reply), fast_hook(1, direction::EGRESS));
    reply
}

#[test]
fn a_forged_packet_from_the_other_hook_is_judged_in_full() {
    let mut t = loaded("fast-forged");
    for (client, server) in HOSTS {
        // A packet that claims the server's address and arrives from outside is
        // spoofed, its side's permission or not.
        let reply = served(&mut t, client, server, 43400);
        expect(
            &t,
            &reply,
            DROP,
            Reason::Spoofed,
            "own address from outside",
        );
    }
}

#[test]
fn an_icmp_error_gives_no_permission_to_the_connection_it_quotes() {
    let mut t = loaded("fast-icmp-error");
    for (client, server, unreach) in [(IMAGING4, PACS4, 3u8), (IMAGING6, PACS6, 1u8)] {
        let reply = served(&mut t, client, server, 43500);
        assert!(
            !entry(&mut t, &reply).1,
            "{server}: the server is the entry's endpoint b, which an error's lookup names"
        );
        // An error arrives (XDP) about a reply the server sent: related to the
        // connection, but not a packet of it, so no side's permission moves to XDP.
        let mut error = FrameSpec::new(client, server, L4::Icmp(unreach, 1, 0));
        error.payload = quote(&reply);
        expect(
            &t,
            &error,
            PASS,
            Reason::Related,
            "error back to the server",
        );
        assert_eq!(
            permission(&mut t, &reply),
            fast_hook(1, direction::EGRESS),
            "{server}: the server's permission is still for TC"
        );
        // So a forged reply claiming the server's address from outside is judged in
        // full: spoofed.
        expect(
            &t,
            &reply,
            DROP,
            Reason::Spoofed,
            "own address from outside, after an error",
        );
    }
}

#[test]
fn a_permission_lasts_its_window_only() {
    let mut t = loaded("fast-window");
    let mut data = Vec::new();
    for (client, server) in HOSTS {
        data.push(established(&mut t, client, server, 43500));
    }
    for (client, _) in HOSTS {
        own(&mut t, client);
    }
    // At HZ=100 the window is a second; at higher rates it is shorter.
    const { assert!(FAST_RECHECK_JIFFIES <= 100) };
    std::thread::sleep(Duration::from_millis(1100));
    for d in &data {
        expect(
            &t,
            d,
            DROP,
            Reason::Spoofed,
            "an own address, once re-checked",
        );
    }
}
