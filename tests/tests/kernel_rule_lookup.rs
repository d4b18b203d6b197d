//! The rule lookup, through `BPF_PROG_TEST_RUN` (needs root): one hash lookup of the
//! (zone pair, protocol), then a binary search of its port ranges
//! (`docs/dataplane.md`, "Rule compilation"). Every port of a group of 32,767 ranges
//! with gaps between them, the edges of ranges, groups of one pair side by side, and
//! verdicts kept through reloads that move the groups' runs in the range array.
mod support;

use support::{
    frames::{FrameSpec, ACK, L4},
    TestDataplane, DROP, PASS,
};

const ZONES: &str = r#"
[zones.a]
cidrs = ["198.18.60.0/24", "2001:db8:60::/64"]
[zones.b]
cidrs = ["198.18.61.0/24", "2001:db8:61::/64"]
[zones.c]
cidrs = ["198.18.62.0/24"]
"#;

/// What a non-SYN TCP segment (judged by the rule lookup alone, nothing tracked) from
/// `src` to `dst`:`port` gets.
fn ack(t: &TestDataplane, src: &str, dst: &str, port: u16) -> u32 {
    t.xdp(
        &FrameSpec::new(src, dst, L4::Tcp(40000, port))
            .flags(ACK)
            .build(),
    )
}

/// A UDP datagram's verdict (a new flow: tracked when allowed).
fn udp(t: &TestDataplane, src: &str, dst: &str, sport: u16, port: u16) -> u32 {
    t.xdp(&FrameSpec::new(src, dst, L4::Udp(sport, port)).build())
}

/// `a` → `b`: TCP on every odd port, one rule per port list: 32,768 ranges of one
/// port each (the most ranges with gaps a group can hold), so the search runs its
/// full depth and must reject the even port just past each range.
fn odd_ports() -> String {
    let odd: Vec<String> = (1..=u16::MAX).step_by(2).map(|p| p.to_string()).collect();
    format!(
        "{ZONES}[[allow]]\nfrom = \"a\"\nto = \"b\"\ntcp = [{}]\n",
        odd.join(", ")
    )
}

#[test]
fn every_port_of_a_group_of_32768_ranges_gets_its_verdict() {
    let mut t = TestDataplane::new("rules-deep");
    t.apply_str(&odd_ports());
    let mut wrong = Vec::new();
    for port in 0..=u16::MAX {
        let expected = if port % 2 == 1 { PASS } else { DROP };
        if ack(&t, "198.18.60.5", "198.18.61.5", port) != expected {
            wrong.push(port);
        }
    }
    assert!(
        wrong.is_empty(),
        "wrong verdicts on ports {:?}",
        &wrong[..wrong.len().min(20)]
    );
    for port in [1, 2, 443, 444, 65534, 65535] {
        let expected = if port % 2 == 1 { PASS } else { DROP };
        let got = ack(&t, "2001:db8:60::5", "2001:db8:61::5", port);
        assert_eq!(got, expected, "IPv6 port {port}");
        // The same ports the other way, and UDP of the same pair: other groups, none.
        assert_eq!(
            ack(&t, "198.18.61.5", "198.18.60.5", port),
            DROP,
            "b -> a {port}"
        );
        assert_eq!(udp(&t, "198.18.60.5", "198.18.61.5", 40000, port), DROP);
    }
}

/// Groups of one pair side by side, with ranges whose edges touch other rules'.
const SIDE_BY_SIDE: &str = r#"
[[allow]]
from = "a"
to = "b"
tcp = [22, "100-199"]
udp = ["5000-5099"]
[[allow]]
from = "a"
to = "b"
tcp = ["150-300", 8443]
[[allow]]
from = "b"
to = "a"
icmp = true
udp = [53]
"#;

/// (source, destination, TCP port, verdict) of [`SIDE_BY_SIDE`] at the ranges' edges.
const EDGES: &[(&str, &str, u16, u32)] = &[
    ("198.18.60.5", "198.18.61.5", 21, DROP),
    ("198.18.60.5", "198.18.61.5", 22, PASS),
    ("198.18.60.5", "198.18.61.5", 23, DROP),
    ("198.18.60.5", "198.18.61.5", 99, DROP),
    ("198.18.60.5", "198.18.61.5", 100, PASS),
    ("198.18.60.5", "198.18.61.5", 199, PASS),
    ("198.18.60.5", "198.18.61.5", 200, PASS),
    ("198.18.60.5", "198.18.61.5", 300, PASS),
    ("198.18.60.5", "198.18.61.5", 301, DROP),
    ("198.18.60.5", "198.18.61.5", 8443, PASS),
    ("198.18.60.5", "198.18.61.5", 8444, DROP),
    ("198.18.60.5", "198.18.61.5", 65535, DROP),
    ("198.18.61.5", "198.18.60.5", 22, DROP),
    ("198.18.61.5", "198.18.60.5", 53, DROP),
    ("198.18.60.5", "198.18.62.5", 22, DROP),
];

fn assert_edges(t: &TestDataplane, what: &str) {
    for &(src, dst, port, expected) in EDGES {
        assert_eq!(
            ack(t, src, dst, port),
            expected,
            "{what}: {src} -> {dst}:{port}"
        );
    }
    let (a, b) = ("198.18.60.5", "198.18.61.5");
    assert_eq!(udp(t, a, b, 41000, 5000), PASS, "{what}: udp 5000");
    assert_eq!(udp(t, a, b, 41001, 5099), PASS, "{what}: udp 5099");
    assert_eq!(udp(t, a, b, 41002, 5100), DROP, "{what}: udp 5100");
    assert_eq!(udp(t, b, a, 41003, 53), PASS, "{what}: b -> a udp 53");
    assert_eq!(udp(t, b, a, 41004, 54), DROP, "{what}: b -> a udp 54");
}

#[test]
fn ranges_of_side_by_side_groups_answer_at_their_edges() {
    let mut t = TestDataplane::new("rules-edges");
    t.apply_str(&format!("{ZONES}{SIDE_BY_SIDE}"));
    assert_edges(&t, "applied");
}

#[test]
fn reloads_that_move_the_runs_keep_every_verdict() {
    let mut t = TestDataplane::new("rules-moved");
    let base = format!("{ZONES}{SIDE_BY_SIDE}");
    // Each apply writes the idle slot: both slots hold `base`, so the reloads below
    // write differences in which every run moves.
    t.apply_str(&base);
    t.apply_str(&base);
    // a -> a sorts before every group of the policy: each run moves in the array.
    let moved = format!("{base}[[allow]]\nfrom = \"a\"\nto = \"a\"\ntcp = [\"1-9\", 11, 13]\n");
    for round in ["moved", "moved, the other slot"] {
        t.apply_str(&moved);
        assert_edges(&t, round);
        assert_eq!(
            ack(&t, "198.18.60.5", "198.18.60.6", 11),
            PASS,
            "{round}: a -> a 11"
        );
        assert_eq!(
            ack(&t, "198.18.60.5", "198.18.60.6", 10),
            DROP,
            "{round}: a -> a 10"
        );
    }
    // Back (stale ranges past the runs stay in the array, unread), in both slots.
    for round in ["back", "back, the other slot"] {
        t.apply_str(&base);
        assert_edges(&t, round);
        assert_eq!(
            ack(&t, "198.18.60.5", "198.18.60.6", 11),
            DROP,
            "{round}: a -> a"
        );
    }
    // A policy without rules: every group is gone.
    t.apply_str(&format!("allow_empty = true\n{ZONES}"));
    assert_eq!(ack(&t, "198.18.60.5", "198.18.61.5", 22), DROP, "no rules");
    assert_eq!(ack(&t, "198.18.60.5", "198.18.60.6", 11), DROP, "no rules");
}
