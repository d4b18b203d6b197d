//! The zone lookup's hashes, through `BPF_PROG_TEST_RUN` (needs root): exact hosts
//! (IPv4 /32, IPv6 /128) and IPv6 /64s are found by hash ahead of the zone tries, and
//! the answer is still the longest prefix's zone; a reload or a restart leaves no
//! stale entry in a slot, and one slot's hosts are never seen from the other.
mod support;

use std::cell::Cell;

use support::{
    frames::{FrameSpec, L4},
    TestDataplane, DROP, PASS,
};
use ward::dataplane::Dataplane;

/// `hosts` has a /32 and a /128 inside `lan`'s /24 and /64, and a /80 inside another
/// /64 of `lan`; only `hosts` may reach `server` (itself a /32 and a /128).
const WITH_HOSTS: &str = r#"
[zones.hosts]
cidrs = ["198.18.40.7/32", "2001:db8:40::7/128", "2001:db8:41:0:ffff::/80"]
[zones.lan]
cidrs = ["198.18.40.0/24", "2001:db8:40::/64", "2001:db8:41::/64"]
[zones.server]
cidrs = ["198.18.50.10/32", "2001:db8:50::10/128"]

[[allow]]
from = "hosts"
to = "server"
tcp = 22
"#;

/// The two exact hosts of `hosts`.
const HOSTS: [(&str, &str); 2] = [
    ("198.18.40.7/32", "198.18.40.7"),
    ("2001:db8:40::7/128", "2001:db8:40::7"),
];

/// [`WITH_HOSTS`] without the exact hosts of `hosts` (zone ids unchanged).
fn without_hosts() -> String {
    let text = HOSTS
        .iter()
        .fold(WITH_HOSTS.to_string(), |text, (cidr, _)| {
            text.replace(&format!("\"{cidr}\", "), "")
        });
    assert!(HOSTS.iter().all(|(cidr, _)| !text.contains(cidr)), "{text}");
    text
}

/// SSH from `src` to the server of its family, from a source port never used before
/// (so that no tracked connection answers instead of the policy).
fn ssh(t: &TestDataplane, src: &str) -> u32 {
    thread_local!(static PORT: Cell<u16> = const { Cell::new(40000) });
    let port = PORT.with(|p| {
        p.set(p.get() + 1);
        p.get()
    });
    let server = if src.contains(':') {
        "2001:db8:50::10"
    } else {
        "198.18.50.10"
    };
    t.xdp(&FrameSpec::new(src, server, L4::Tcp(port, 22)).build())
}

#[test]
fn the_longest_prefix_decides_with_hosts_and_slash_64s_in_hashes() {
    let mut t = TestDataplane::new("zone-hosts");
    t.apply_str(WITH_HOSTS);
    for (_, host) in HOSTS {
        assert_eq!(ssh(&t, host), PASS, "{host} is in hosts, not in lan");
    }
    assert_eq!(ssh(&t, "198.18.40.8"), DROP, "the rest of the /24 is lan");
    assert_eq!(
        ssh(&t, "2001:db8:40::8"),
        DROP,
        "the rest of the /64 is lan"
    );
    // A /64 with a longer prefix inside: the /80 decides for its addresses.
    assert_eq!(
        ssh(&t, "2001:db8:41:0:ffff::9"),
        PASS,
        "in the /80 of hosts"
    );
    assert_eq!(ssh(&t, "2001:db8:41::9"), DROP, "in the /64 of lan only");
    assert_eq!(ssh(&t, "198.18.41.7"), DROP, "world");
}

#[test]
fn a_host_one_slot_holds_is_not_seen_from_the_other() {
    let mut t = TestDataplane::new("zone-slots");
    t.apply_str(WITH_HOSTS);
    t.apply_str(&without_hosts());
    for (_, host) in HOSTS {
        assert_eq!(
            ssh(&t, host),
            DROP,
            "{host}: the idle slot's host entry does not count"
        );
    }
    t.apply_str(WITH_HOSTS);
    for (_, host) in HOSTS {
        assert_eq!(ssh(&t, host), PASS, "{host} in hosts again");
    }
}

#[test]
fn a_host_removed_by_a_reload_or_after_a_restart_falls_back_to_its_prefix() {
    let mut t = TestDataplane::new("zone-reload");
    // Both slots hold the hosts; the third policy goes where the first was, as a
    // difference from it.
    t.apply_str(WITH_HOSTS);
    t.apply_str(WITH_HOSTS);
    t.apply_str(&without_hosts());
    for (_, host) in HOSTS {
        assert_eq!(ssh(&t, host), DROP, "{host} removed: lan's again");
    }
    // A restarted agent knows nothing of what the slots hold: the next write removes
    // the slot's entries the policy lacks (here the hosts the second policy wrote).
    t.dp = Dataplane::load(t.dir()).expect("load again");
    t.apply_str(&without_hosts().replace("tcp = 22", "tcp = [22, 23]"));
    for (_, host) in HOSTS {
        assert_eq!(ssh(&t, host), DROP, "{host} removed after a restart");
    }
}
