//! A full connection table, through `BPF_PROG_TEST_RUN` (needs root): the LRU table
//! evicts, and a packet whose connection was evicted is judged by the policy as a new
//! flow — its reply passes only if the policy allows that direction to open.
mod support;

use std::collections::HashSet;

use aya::maps::MapInfo;
use support::{
    conntrack,
    frames::{FrameSpec, ACK, L4},
    TestDataplane, DROP, PASS,
};
use ward::dataplane::{Dataplane, DataplaneError, LoadOptions};
use ward_common::{
    addr_to_bytes,
    map_names::{CONNTRACK_V4, CONNTRACK_V6},
};

/// The test table's capacity: far below the flows opened.
const CAPACITY: u32 = 256;
/// Allowed flows opened into it.
const FLOWS: u16 = 4096;

/// imaging and workstation may open connections to pacs; pacs may open connections
/// to workstation (any unprivileged port) but not to imaging.
const POLICY: &str = r#"
[zones.imaging]
cidrs = ["198.18.20.0/24"]
[zones.pacs]
cidrs = ["198.18.21.0/24"]
[zones.workstation]
cidrs = ["198.18.22.0/24"]

[[allow]]
from = "imaging"
to = "pacs"
tcp = [104]

[[allow]]
from = "workstation"
to = "pacs"
tcp = [104]

[[allow]]
from = "pacs"
to = "workstation"
tcp = ["1024-65535"]
"#;

const IMAGING: &str = "198.18.20.10";
const PACS: &str = "198.18.21.10";
const WORKSTATION: &str = "198.18.22.10";

/// The client endpoints (address, port) of the connections the table holds now.
fn tracked(t: &mut TestDataplane) -> HashSet<([u8; 4], u16)> {
    let mut clients = HashSet::new();
    for (key, _) in conntrack::entries(t) {
        for (addr, port) in [(key.addr_a, key.port_a), (key.addr_b, key.port_b)] {
            if port != 104 {
                let b = addr_to_bytes(addr);
                clients.insert(([b[0], b[1], b[2], b[3]], port));
            }
        }
    }
    clients
}

fn client(addr: &str, port: u16) -> ([u8; 4], u16) {
    let ip: std::net::Ipv4Addr = addr.parse().unwrap();
    (ip.octets(), port)
}

/// Opens `ports.len()` allowed connections from `from` to pacs:104.
fn open(t: &TestDataplane, from: &str, ports: impl Iterator<Item = u16>) {
    for port in ports {
        let f = FrameSpec::new(from, PACS, L4::Tcp(port, 104));
        assert_eq!(t.xdp(&f.build()), PASS, "{from}:{port} -> pacs:104 opens");
    }
}

#[test]
fn a_full_table_evicts_and_evicted_replies_are_judged_by_policy() {
    let mut t = TestDataplane::with_options(
        "ct-full",
        &LoadOptions {
            conntrack_entries: Some(CAPACITY),
            ..Default::default()
        },
    );
    t.apply_str(POLICY);
    for table in [CONNTRACK_V4, CONNTRACK_V6] {
        let info = MapInfo::from_pin(t.dir().join(table)).expect("pinned conntrack map");
        assert_eq!(info.max_entries(), CAPACITY, "{table}: capacity asked for");
    }

    // Oldest first: 64 workstation connections, then FLOWS imaging ones.
    let ws_ports = 10_000..10_064;
    let img_ports = 20_000..20_000 + FLOWS;
    open(&t, WORKSTATION, ws_ports.clone());
    open(&t, IMAGING, img_ports.clone());

    // (a) The table never holds more than its capacity: most connections were evicted.
    let held = tracked(&mut t);
    eprintln!(
        "{} connections held after opening {} ({CAPACITY} capacity)",
        held.len(),
        64 + FLOWS as usize
    );
    assert!(held.len() <= CAPACITY as usize, "{} entries", held.len());
    let newest = client(IMAGING, img_ports.end - 1);
    assert!(held.contains(&newest), "the newest connection is tracked");

    // (b) and (c), for every imaging connection: a tracked one's reply passes; an evicted
    // one's reply is a new pacs -> imaging flow, which no rule allows. Neither outcome
    // inserts into the table, so `held` stays true throughout.
    let (mut passed, mut dropped) = (0, 0);
    for port in img_ports.clone() {
        let reply = FrameSpec::new(PACS, IMAGING, L4::Tcp(104, port))
            .flags(ACK)
            .build();
        if held.contains(&client(IMAGING, port)) {
            assert_eq!(t.xdp(&reply), PASS, "reply of tracked imaging:{port}");
            passed += 1;
        } else {
            assert_eq!(t.xdp(&reply), DROP, "reply of evicted imaging:{port}");
            dropped += 1;
        }
    }
    assert!(passed >= 1, "some imaging connections are tracked");
    assert!(
        dropped >= FLOWS as usize - CAPACITY as usize,
        "{dropped} imaging connections evicted"
    );
    assert_eq!(tracked(&mut t), held, "judging replies changed the table");

    // (d) A workstation connection's reply after eviction is judged as a pacs ->
    // workstation segment, which the policy allows: it passes (an ACK opens nothing).
    let evicted: Vec<u16> = ws_ports
        .filter(|p| !held.contains(&client(WORKSTATION, *p)))
        .collect();
    assert!(!evicted.is_empty(), "no workstation connection was evicted");
    for port in evicted {
        let reply = FrameSpec::new(PACS, WORKSTATION, L4::Tcp(104, port))
            .flags(ACK)
            .build();
        assert_eq!(t.xdp(&reply), PASS, "reply of evicted workstation:{port}");
    }

    // (e) At capacity, new allowed connections are still admitted (each insert evicts),
    // and tracked: their replies pass at once. Denied ones are still denied.
    for port in 30_000..30_000 + CAPACITY as u16 {
        let f = FrameSpec::new(IMAGING, PACS, L4::Tcp(port, 104));
        assert_eq!(t.xdp(&f.build()), PASS, "new imaging:{port} at capacity");
        assert_eq!(
            t.xdp(&f.reply().build()),
            PASS,
            "reply of new imaging:{port} at capacity"
        );
        let denied = FrameSpec::new(IMAGING, PACS, L4::Tcp(port, 443));
        assert_eq!(t.xdp(&denied.build()), DROP, "imaging:{port} -> pacs:443");
    }
    let held = tracked(&mut t);
    assert!(held.len() <= CAPACITY as usize, "{} entries", held.len());
}

#[test]
fn a_pinned_table_of_another_capacity_is_refused() {
    let t = TestDataplane::with_options(
        "ct-resize",
        &LoadOptions {
            conntrack_entries: Some(CAPACITY),
            ..Default::default()
        },
    );
    let other = LoadOptions {
        conntrack_entries: Some(2 * CAPACITY),
        ..Default::default()
    };
    for (what, result) in [
        ("another size", Dataplane::load_with(t.dir(), &other)),
        ("the default size", Dataplane::load(t.dir())),
    ] {
        match result {
            Err(DataplaneError::Incompatible { mismatches, .. }) => {
                let mut names: Vec<&str> = mismatches.iter().map(|m| m.name.as_str()).collect();
                names.sort_unstable();
                assert_eq!(
                    names,
                    [CONNTRACK_V4, CONNTRACK_V6],
                    "{what}: only the tables differ"
                );
                for m in &mismatches {
                    assert_eq!(m.pinned.max_entries, CAPACITY, "{what}");
                    assert_ne!(m.expected.max_entries, CAPACITY, "{what}");
                }
            }
            Err(e) => panic!("{what}: unexpected error {e}"),
            Ok(_) => panic!("{what}: a {CAPACITY}-entry pinned table was adopted"),
        }
    }
    let same = LoadOptions {
        conntrack_entries: Some(CAPACITY),
        ..Default::default()
    };
    Dataplane::load_with(t.dir(), &same).expect("the same size is adopted");
}
