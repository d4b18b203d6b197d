//! The reference dataplane, frame by frame, on the clinic policy.
use ward_common::{Reason, Verdict};

use super::*;
use crate::build::*;

const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMP: u8 = 1;
const ICMPV6: u8 = 58;
const IMAGING: &str = "198.18.20.5";
const PACS: &str = "198.18.21.10";
const ADMIN: &str = "198.18.24.1";
const IMAGING6: &str = "2001:db8:20::5";
const PACS6: &str = "2001:db8:21::10";
const ADMIN6: &str = "2001:db8:24::1";

fn dataplane() -> ReferenceDataplane {
    ReferenceDataplane::new(&clinic().policy)
}

fn reason(dp: &mut ReferenceDataplane, frame: &[u8]) -> Reason {
    let (verdict, reason) = dp.judge(frame);
    assert_eq!(verdict, reason.verdict());
    reason
}

#[test]
fn new_flows_replies_and_reverse_initiation() {
    let mut dp = dataplane();
    assert_eq!(
        reason(&mut dp, &v4(IMAGING, PACS, TCP, &tcp(40000, 104))),
        Reason::AllowedByRule
    );
    assert_eq!(
        reason(
            &mut dp,
            &v4(PACS, IMAGING, TCP, &tcp_flags(104, 40000, SYN | ACK))
        ),
        Reason::Established
    );
    assert_eq!(
        reason(
            &mut dp,
            &v4(IMAGING, PACS, TCP, &tcp_flags(40000, 104, ACK))
        ),
        Reason::Established
    );
    assert_eq!(
        reason(&mut dp, &v4(PACS, IMAGING, TCP, &tcp(104, 40000))),
        Reason::NoRule,
        "the responder's SYN on the tuple is a new pacs -> imaging flow"
    );
    assert_eq!(
        reason(
            &mut dp,
            &v4(PACS, IMAGING, TCP, &tcp_flags(104, 40002, ACK))
        ),
        Reason::NoRule,
        "an untracked ACK is judged by the rules alone"
    );
    assert_eq!(
        reason(
            &mut dp,
            &v4(IMAGING, PACS, TCP, &tcp_flags(40003, 104, ACK))
        ),
        Reason::AllowedByRule,
        "an untracked ACK a rule allows passes"
    );
    assert_eq!(
        reason(
            &mut dp,
            &v4(PACS, IMAGING, TCP, &tcp_flags(104, 40003, ACK))
        ),
        Reason::NoRule,
        "and opens nothing"
    );
    assert_eq!(
        reason(&mut dp, &v4(PACS, IMAGING, TCP, &tcp(40001, 104))),
        Reason::NoRule
    );
    assert_eq!(
        reason(&mut dp, &v4(IMAGING, PACS, TCP, &tcp(40000, 80))),
        Reason::NoRule
    );
    assert_eq!(
        reason(&mut dp, &v4(IMAGING, PACS, UDP, &udp(40000, 104))),
        Reason::NoRule
    );
    assert_eq!(
        reason(&mut dp, &v4(PACS, ADMIN, UDP, &udp(5000, 514))),
        Reason::AllowedByRule
    );
    assert_eq!(
        reason(&mut dp, &v4(ADMIN, PACS, UDP, &udp(514, 5000))),
        Reason::Established
    );
    assert_eq!(
        reason(&mut dp, &v6(IMAGING6, PACS6, TCP, &tcp(40000, 11112))),
        Reason::AllowedByRule
    );
    assert_eq!(
        reason(
            &mut dp,
            &v6(PACS6, IMAGING6, TCP, &tcp_flags(11112, 40000, SYN | ACK))
        ),
        Reason::Established
    );
    assert_eq!(
        reason(&mut dp, &v4(ADMIN, "192.0.2.1", TCP, &tcp(50000, 22))),
        Reason::AllowedByRule
    );
    assert_eq!(
        reason(&mut dp, &v4("192.0.2.1", ADMIN, TCP, &tcp(50001, 22))),
        Reason::NoRule
    );
}

#[test]
fn ethernet_and_vlans() {
    let mut dp = dataplane();
    let ip = ipv4(IMAGING, PACS, TCP, 1, 0, &[], &tcp(40000, 104));
    assert_eq!(
        reason(&mut dp, &eth(0x0800, &[0x8100], &ip)),
        Reason::AllowedByRule
    );
    assert_eq!(
        reason(&mut dp, &eth(0x0800, &[0x88a8, 0x8100], &ip)),
        Reason::Established
    );
    assert_eq!(
        reason(&mut dp, &eth(0x0800, &[0x88a8, 0x8100, 0x8100], &ip)),
        Reason::Malformed
    );
    assert_eq!(reason(&mut dp, &eth(0x0806, &[], &[0; 28])), Reason::NotIp);
    assert_eq!(
        reason(&mut dp, &eth(0x0806, &[0x8100], &[0; 28])),
        Reason::NotIp
    );
    assert_eq!(reason(&mut dp, &[0x08; 13]), Reason::Malformed);
    let mut cut_tag = eth(0x0800, &[0x8100], &[]);
    cut_tag.truncate(16);
    assert_eq!(reason(&mut dp, &cut_tag), Reason::Malformed);
}

#[test]
fn ipv4_header_checks() {
    let mut dp = dataplane();
    let l4 = tcp(40000, 104);
    let with_options = eth(
        0x0800,
        &[],
        &ipv4(IMAGING, PACS, TCP, 1, 0, &[1, 1, 1, 0, 0x94, 4, 0, 0], &l4),
    );
    assert_eq!(reason(&mut dp, &with_options), Reason::AllowedByRule);
    let mut padded = v4(IMAGING, PACS, TCP, &tcp(40001, 104));
    padded.extend_from_slice(&[0; 10]);
    assert_eq!(reason(&mut dp, &padded), Reason::AllowedByRule);
    let broken = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut frame = v4(IMAGING, PACS, TCP, &tcp(40002, 104));
        f(&mut frame);
        frame
    };
    assert_eq!(
        reason(&mut dp, &broken(&|f| f[14] = 0x65)),
        Reason::Malformed,
        "version 6 in an IPv4 frame"
    );
    assert_eq!(
        reason(&mut dp, &broken(&|f| f[14] = 0x44)),
        Reason::Malformed,
        "IHL 4"
    );
    assert_eq!(
        reason(&mut dp, &broken(&|f| f[14] = 0x4f)),
        Reason::Malformed,
        "IHL beyond total length"
    );
    assert_eq!(
        reason(&mut dp, &broken(&|f| f[17] = 19)),
        Reason::Malformed,
        "total length < header"
    );
    assert_eq!(
        reason(&mut dp, &broken(&|f| f[17] += 1)),
        Reason::Malformed,
        "total length beyond frame"
    );
    assert_eq!(
        reason(&mut dp, &broken(&|f| f[46] = 0x40)),
        Reason::Malformed,
        "TCP data offset 4"
    );
    assert_eq!(
        reason(&mut dp, &broken(&|f| f[23] = 50)),
        Reason::NoRule,
        "ESP"
    );
    assert_eq!(
        reason(&mut dp, &broken(&|f| f[23] = ICMPV6)),
        Reason::NoRule,
        "ICMPv6 on IPv4 is other"
    );
}

#[test]
fn truncated_frames_are_malformed_or_not_ip() {
    let frames = [
        v4(IMAGING, PACS, TCP, &tcp(40000, 104)),
        v4(IMAGING, PACS, UDP, &udp(40000, 104)),
        v6(IMAGING6, PACS6, TCP, &tcp(40000, 104)),
        v4(ADMIN, IMAGING, ICMP, &icmp(8, 9, &[])),
        eth(
            0x86dd,
            &[0x8100, 0x8100],
            &ipv6(
                IMAGING6,
                PACS6,
                0,
                &ext(44),
                &[&frag6(TCP, 0, true, 5)[..], &tcp(1, 104)].concat(),
            ),
        ),
    ];
    for frame in frames {
        for len in 0..frame.len() {
            assert_eq!(
                dataplane().judge(&frame[..len]),
                (Verdict::Deny, Reason::Malformed),
                "length {len}"
            );
        }
    }
    let arp = eth(0x0806, &[0x8100], &[0; 28]);
    for len in 0..arp.len() {
        let expected = if len < 18 {
            Reason::Malformed
        } else {
            Reason::NotIp
        };
        assert_eq!(dataplane().judge(&arp[..len]).1, expected, "length {len}");
    }
}

#[test]
fn ipv6_extension_headers() {
    let mut dp = dataplane();
    let l4 = tcp(40000, 104);
    let chain = |n: usize| -> Vec<u8> {
        (0..n)
            .flat_map(|i| ext(if i + 1 == n { TCP } else { 60 }))
            .collect()
    };
    for n in 1..=6 {
        let frame = eth(
            0x86dd,
            &[],
            &ipv6(IMAGING6, PACS6, 0, &chain(n), &tcp(40000 + n as u16, 104)),
        );
        assert_eq!(
            reason(&mut dp, &frame),
            Reason::AllowedByRule,
            "{n} extension headers"
        );
    }
    let seven = eth(0x86dd, &[], &ipv6(IMAGING6, PACS6, 0, &chain(7), &l4));
    assert_eq!(reason(&mut dp, &seven), Reason::Malformed);
    let ah = [&[TCP, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0][..], &l4].concat();
    assert_eq!(
        reason(
            &mut dp,
            &eth(0x86dd, &[], &ipv6(IMAGING6, PACS6, 51, &[], &ah))
        ),
        Reason::AllowedByRule
    );
    let too_long = [&[TCP, 3, 0, 0, 0, 0, 0, 0][..], &l4].concat();
    assert_eq!(
        reason(
            &mut dp,
            &eth(0x86dd, &[], &ipv6(IMAGING6, PACS6, 43, &[], &too_long))
        ),
        Reason::Malformed
    );
    assert_eq!(
        reason(&mut dp, &v6(IMAGING6, PACS6, 59, &[])),
        Reason::NoRule,
        "no next header"
    );
    assert_eq!(
        reason(&mut dp, &v6(IMAGING6, PACS6, ICMP, &icmp(8, 1, &[]))),
        Reason::NoRule,
        "ICMP on IPv6 is other"
    );
}

#[test]
fn ipv4_fragments() {
    let mut dp = dataplane();
    let first = eth(
        0x0800,
        &[],
        &ipv4(IMAGING, PACS, TCP, 77, 0x2000, &[], &tcp(40000, 104)),
    );
    let rest = eth(0x0800, &[], &ipv4(IMAGING, PACS, TCP, 77, 3, &[], &[0; 16]));
    let other = eth(0x0800, &[], &ipv4(IMAGING, PACS, TCP, 78, 3, &[], &[0; 16]));
    assert_eq!(reason(&mut dp, &rest), Reason::FragmentWithoutFirst);
    assert_eq!(reason(&mut dp, &first), Reason::AllowedByRule);
    assert_eq!(reason(&mut dp, &rest), Reason::FragmentOfAllowed);
    assert_eq!(reason(&mut dp, &other), Reason::FragmentWithoutFirst);
    let denied_first = eth(
        0x0800,
        &[],
        &ipv4(IMAGING, PACS, TCP, 79, 0x2000, &[], &tcp(40000, 80)),
    );
    let denied_rest = eth(
        0x0800,
        &[],
        &ipv4(IMAGING, PACS, TCP, 79, 0x2003, &[], &[0; 16]),
    );
    assert_eq!(reason(&mut dp, &denied_first), Reason::NoRule);
    assert_eq!(reason(&mut dp, &denied_rest), Reason::FragmentWithoutFirst);
}

#[test]
fn ipv6_fragments() {
    let mut dp = dataplane();
    let frame = |offset, more, body: &[u8]| {
        eth(
            0x86dd,
            &[],
            &ipv6(IMAGING6, PACS6, 44, &frag6(TCP, offset, more, 9), body),
        )
    };
    assert_eq!(
        reason(&mut dp, &frame(0, true, &tcp(40000, 104))),
        Reason::AllowedByRule
    );
    assert_eq!(
        reason(&mut dp, &frame(2, true, &[0; 16])),
        Reason::FragmentOfAllowed
    );
    assert_eq!(
        reason(&mut dp, &frame(4, false, &[0; 8])),
        Reason::FragmentOfAllowed
    );
    let unknown = eth(
        0x86dd,
        &[],
        &ipv6(IMAGING6, PACS6, 44, &frag6(TCP, 4, false, 10), &[0; 8]),
    );
    assert_eq!(reason(&mut dp, &unknown), Reason::FragmentWithoutFirst);
    assert_eq!(
        reason(&mut dp, &frame(0, true, &[0; 4])),
        Reason::Malformed,
        "L4 header cut in the first fragment"
    );
}

#[test]
fn echo_and_neighbour_discovery() {
    let mut dp = dataplane();
    assert_eq!(
        reason(&mut dp, &v4(ADMIN, IMAGING, ICMP, &icmp(0, 5, &[]))),
        Reason::NoRule,
        "untracked echo reply"
    );
    assert_eq!(
        reason(&mut dp, &v4(ADMIN, IMAGING, ICMP, &icmp(8, 5, &[]))),
        Reason::AllowedByRule
    );
    assert_eq!(
        reason(&mut dp, &v4(IMAGING, ADMIN, ICMP, &icmp(0, 5, &[]))),
        Reason::Established
    );
    assert_eq!(
        reason(&mut dp, &v4(IMAGING, ADMIN, ICMP, &icmp(0, 6, &[]))),
        Reason::NoRule,
        "other identifier"
    );
    assert_eq!(
        reason(&mut dp, &v4(IMAGING, ADMIN, ICMP, &icmp(8, 6, &[]))),
        Reason::NoRule,
        "imaging may not ping admin"
    );
    assert_eq!(
        reason(&mut dp, &v4(ADMIN, IMAGING, ICMP, &icmp(13, 5, &[]))),
        Reason::NoRule,
        "timestamp"
    );
    assert_eq!(
        reason(&mut dp, &v6(ADMIN6, IMAGING6, ICMPV6, &icmp(128, 5, &[]))),
        Reason::AllowedByRule
    );
    assert_eq!(
        reason(&mut dp, &v6(IMAGING6, ADMIN6, ICMPV6, &icmp(129, 5, &[]))),
        Reason::Established
    );
    for nd in 133..=137 {
        let on_link = v6_hops("fe80::1", "ff02::1", ICMPV6, &icmp(nd, 0, &[]), 255);
        assert_eq!(reason(&mut dp, &on_link), Reason::NeighbourDiscovery);
        let forwarded = v6_hops("fe80::1", "ff02::1", ICMPV6, &icmp(nd, 0, &[]), 254);
        assert_eq!(reason(&mut dp, &forwarded), Reason::NotOnLink);
        let global = v6_hops("fe80::1", PACS6, ICMPV6, &icmp(nd, 0, &[]), 255);
        assert_eq!(reason(&mut dp, &global), Reason::NotOnLink, "to pacs");
    }
    dp.add_own_address(PACS6.parse().unwrap());
    let nud = v6_hops(IMAGING6, PACS6, ICMPV6, &icmp(135, 0, &[]), 255);
    assert_eq!(reason(&mut dp, &nud), Reason::NeighbourDiscovery, "to own");
    let ra = v6_hops(IMAGING6, "ff02::1", ICMPV6, &icmp(134, 0, &[]), 255);
    assert_eq!(reason(&mut dp, &ra), Reason::NotOnLink, "RA from global");
    let mld = v6_hops("fe80::1", "ff02::16", ICMPV6, &icmp(143, 0, &[]), 1);
    assert_eq!(reason(&mut dp, &mld), Reason::BuiltIn, "MLD report");
    assert_eq!(
        reason(
            &mut dp,
            &v6("fe80::1", "ff02::1", ICMPV6, &icmp(138, 0, &[]))
        ),
        Reason::NoRule
    );
    assert_eq!(
        reason(&mut dp, &v6("fe80::1", "ff02::1", ICMPV6, &[135, 0, 0, 0])),
        Reason::Malformed
    );
}

#[test]
fn icmp_errors_are_related_to_tracked_connections() {
    let mut dp = dataplane();
    let original = ipv4(IMAGING, PACS, TCP, 1, 0, &[], &tcp(40000, 104));
    let unreachable = v4(PACS, IMAGING, ICMP, &icmp(3, 0, &original[..28]));
    assert_eq!(
        reason(&mut dp, &unreachable),
        Reason::NoRule,
        "not tracked yet"
    );
    assert_eq!(
        reason(&mut dp, &v4(IMAGING, PACS, TCP, &tcp(40000, 104))),
        Reason::AllowedByRule
    );
    assert_eq!(reason(&mut dp, &unreachable), Reason::Related);
    assert_eq!(
        reason(
            &mut dp,
            &v4("192.0.2.1", IMAGING, ICMP, &icmp(11, 0, &original[..28]))
        ),
        Reason::Related
    );
    assert_eq!(
        reason(
            &mut dp,
            &v4(PACS, IMAGING, ICMP, &icmp(3, 0, &original[..27]))
        ),
        Reason::Malformed
    );
    let with_options = ipv4(IMAGING, PACS, TCP, 1, 0, &[1, 1, 1, 0], &tcp(40000, 104));
    assert_eq!(
        reason(
            &mut dp,
            &v4(PACS, IMAGING, ICMP, &icmp(12, 0, &with_options[..32]))
        ),
        Reason::Related
    );
    assert_eq!(
        reason(
            &mut dp,
            &v4(PACS, IMAGING, ICMP, &icmp(12, 0, &with_options[..31]))
        ),
        Reason::Malformed
    );

    let original6 = ipv6(IMAGING6, PACS6, TCP, &[], &tcp(40000, 104));
    let too_big = v6(PACS6, IMAGING6, ICMPV6, &icmp(2, 0, &original6[..48]));
    assert_eq!(reason(&mut dp, &too_big), Reason::NoRule);
    assert_eq!(
        reason(&mut dp, &v6(IMAGING6, PACS6, TCP, &tcp(40000, 104))),
        Reason::AllowedByRule
    );
    assert_eq!(reason(&mut dp, &too_big), Reason::Related);
    assert_eq!(
        reason(
            &mut dp,
            &v6(PACS6, IMAGING6, ICMPV6, &icmp(1, 0, &original6[..47]))
        ),
        Reason::Malformed
    );

    let echo = ipv4(ADMIN, PACS, ICMP, 1, 0, &[], &icmp(8, 33, &[]));
    assert_eq!(
        reason(&mut dp, &v4(ADMIN, PACS, ICMP, &icmp(8, 33, &[]))),
        Reason::AllowedByRule
    );
    assert_eq!(
        reason(&mut dp, &v4("192.0.2.1", ADMIN, ICMP, &icmp(3, 1, &echo))),
        Reason::Related
    );
}

#[test]
fn policy_changes_revoke_tracked_connections() {
    let mut dp = dataplane();
    assert_eq!(
        reason(&mut dp, &v4(IMAGING, PACS, TCP, &tcp(40000, 104))),
        Reason::AllowedByRule
    );
    assert_eq!(
        reason(&mut dp, &v4(ADMIN, PACS, TCP, &tcp(50000, 22))),
        Reason::AllowedByRule
    );
    let mut policy = clinic().policy;
    dp.set_policy(&policy);
    assert_eq!(dp.generation(), 2);
    assert_eq!(
        reason(
            &mut dp,
            &v4(PACS, IMAGING, TCP, &tcp_flags(104, 40000, ACK))
        ),
        Reason::Established,
        "still allowed"
    );
    policy.rules.remove(0);
    dp.set_policy(&policy);
    assert_eq!(
        reason(
            &mut dp,
            &v4(PACS, IMAGING, TCP, &tcp_flags(104, 40000, ACK))
        ),
        Reason::PolicyRevoked,
        "re-judged as opened by imaging"
    );
    assert_eq!(
        reason(
            &mut dp,
            &v4(PACS, IMAGING, TCP, &tcp_flags(104, 40000, ACK))
        ),
        Reason::NoRule,
        "entry deleted"
    );
    assert_eq!(
        reason(&mut dp, &v4(ADMIN, PACS, TCP, &tcp(50000, 22))),
        Reason::Established
    );
}

#[test]
fn a_lone_syn_is_judged_by_the_rules_before_its_connection() {
    let mut dp = dataplane();
    let syn = v4(IMAGING, PACS, TCP, &tcp(40000, 104));
    let ack = v4(IMAGING, PACS, TCP, &tcp_flags(40000, 104, ACK));
    assert_eq!(reason(&mut dp, &syn), Reason::AllowedByRule);
    assert_eq!(reason(&mut dp, &syn), Reason::Established, "retransmitted");
    let mut policy = clinic().policy;
    policy.rules.remove(0);
    dp.set_policy(&policy);
    assert_eq!(reason(&mut dp, &syn), Reason::NoRule, "by the rules alone");
    assert_eq!(
        reason(&mut dp, &ack),
        Reason::PolicyRevoked,
        "the entry was left to the next other packet"
    );
    assert_eq!(reason(&mut dp, &ack), Reason::NoRule, "entry deleted");
}

#[test]
fn no_policy_denies_every_ip_packet() {
    let mut dp = ReferenceDataplane::without_policy();
    assert_eq!(
        dp.judge(&v4(IMAGING, PACS, TCP, &tcp(40000, 104))),
        (Verdict::Deny, Reason::NoPolicy)
    );
    assert_eq!(
        dp.judge(&v6("fe80::1", "ff02::1", ICMPV6, &icmp(135, 0, &[])))
            .1,
        Reason::NoPolicy
    );
    assert_eq!(
        dp.judge(&eth(0x0806, &[], &[0; 28])),
        (Verdict::Allow, Reason::NotIp)
    );
    dp.set_policy(&clinic().policy);
    assert_eq!(
        dp.judge(&v4(IMAGING, PACS, TCP, &tcp(40000, 104))).1,
        Reason::AllowedByRule
    );
}

#[test]
fn arbitrary_bytes_never_panic() {
    let mut dp = dataplane();
    let mut rng = Rng(99);
    let seeds = [
        v4(
            IMAGING,
            PACS,
            ICMP,
            &icmp(3, 0, &ipv4(PACS, IMAGING, TCP, 1, 0, &[], &tcp(1, 2))[..28]),
        ),
        eth(
            0x86dd,
            &[0x8100],
            &ipv6(
                IMAGING6,
                PACS6,
                0,
                &[ext(44), frag6(51, 0, true, 1)].concat(),
                &[TCP, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            ),
        ),
        v6(
            PACS6,
            IMAGING6,
            ICMPV6,
            &icmp(1, 0, &ipv6(IMAGING6, PACS6, UDP, &[], &udp(1, 2))),
        ),
    ];
    for i in 0..30_000 {
        let mut frame = seeds[i % seeds.len()].clone();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(frame.len() as u64) as usize;
            frame[at] = rng.next() as u8;
        }
        frame.truncate(rng.below(frame.len() as u64 + 1) as usize);
        dp.judge(&frame);
        let random: Vec<u8> = (0..rng.below(120)).map(|_| rng.next() as u8).collect();
        dp.judge(&random);
    }
}
