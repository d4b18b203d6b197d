//! The zone lookup's hashes, through `BPF_PROG_TEST_RUN` (needs root): exact hosts
//! (IPv4 /32, IPv6 /128) and IPv6 /64s are found by hash ahead of the zone tries, and
//! the answer is still the longest prefix's zone; a reload or a restart leaves no
//! stale entry in a slot, and one slot's hosts are never seen from the other; a place
//! the agent marked empty for the slot in force (`Config::zone_skip`) is not
//! consulted, and no mark outlives a load.
mod support;

use std::cell::Cell;

use aya::maps::HashMap;
use support::{
    containment::set_config,
    frames::{FrameSpec, L4},
    TestDataplane, DROP, PASS,
};
use ward::dataplane::Dataplane;
use ward_common::{map_names, zone_skip, HostKeyV4};

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

/// [`WITH_HOSTS`] with no exact host at all: the server's /32 and /128 become a /24
/// and a /64 (zone ids unchanged).
fn subnets_only() -> String {
    let text = without_hosts()
        .replace("198.18.50.10/32", "198.18.50.0/24")
        .replace("2001:db8:50::10/128", "2001:db8:50::/64");
    assert!(
        !text.contains("/32\"") && !text.contains("/128\""),
        "{text}"
    );
    text
}

/// Puts `addr` (IPv4) into `zone` of the slot in force by a direct write to the host
/// hash, as no policy did.
fn plant_host(t: &mut TestDataplane, addr: &str, zone: u32) {
    let slot = t.dp.slot_in_force().unwrap();
    let octets = addr.parse::<std::net::Ipv4Addr>().unwrap().octets();
    let mut hosts: HashMap<_, HostKeyV4, u32> =
        HashMap::try_from(t.dp.ebpf().map_mut(map_names::HOSTS_V4).unwrap()).unwrap();
    let key = HostKeyV4::new(slot, u32::from_ne_bytes(octets));
    hosts.insert(key, zone, 0).unwrap();
}

#[test]
fn a_place_the_slot_in_force_leaves_empty_is_not_consulted() {
    let mut t = TestDataplane::new("zone-skip");
    let loaded = t.apply_str(&subnets_only());
    let slot = usize::from(t.dp.slot_in_force().unwrap());
    let skip = t.dp.config().unwrap().zone_skip[slot];
    assert_eq!(
        skip & (zone_skip::HOSTS_V4 | zone_skip::HOSTS_V6),
        zone_skip::HOSTS_V4 | zone_skip::HOSTS_V6,
        "no /32 or /128 in the policy: {skip:#x}"
    );
    assert_eq!(skip & zone_skip::TRIE_V4, 0, "the /24s are in the trie");
    // A host entry no policy wrote is not seen while the slot is marked without hosts.
    let hosts = loaded.compiled.zone_id("hosts").unwrap();
    plant_host(&mut t, "198.18.40.7", hosts);
    assert_eq!(ssh(&t, "198.18.40.7"), DROP, "host hash not consulted: lan");
    set_config(&mut t, |c| c.zone_skip = [0; 2]);
    assert_eq!(ssh(&t, "198.18.40.7"), PASS, "consulted once unmarked");
}

#[test]
fn no_mark_outlives_a_load_and_the_next_write_sets_the_slots_own() {
    let mut t = TestDataplane::new("zone-skip-load");
    t.apply_str(WITH_HOSTS);
    let slot = usize::from(t.dp.slot_in_force().unwrap());
    assert_eq!(
        t.dp.config().unwrap().zone_skip[slot],
        0,
        "every place filled"
    );
    // Marks that do not match the slot (as a build that ignored them could leave):
    // its hosts are missed while they stand...
    set_config(&mut t, |c| c.zone_skip = [0x1f; 2]);
    for (_, host) in HOSTS {
        assert_eq!(ssh(&t, host), DROP, "{host} missed under a wrong mark");
    }
    // ...and a load clears them before anything else.
    t.dp = Dataplane::load(t.dir()).expect("load again");
    assert_eq!(t.dp.config().unwrap().zone_skip, [0; 2]);
    for (_, host) in HOSTS {
        assert_eq!(ssh(&t, host), PASS, "{host} found after the load");
    }
    // A write sets the slot's own marks; a load clears them, and an agent vouching
    // for the slot in force (by its digest, the same policy) sets them again.
    let loaded = t.apply_str(&subnets_only());
    let slot = usize::from(t.dp.slot_in_force().unwrap());
    let marks = zone_skip::HOSTS_V4 | zone_skip::HOSTS_V6;
    assert_eq!(t.dp.config().unwrap().zone_skip[slot], marks);
    t.dp = Dataplane::load(t.dir()).expect("load again");
    assert_eq!(t.dp.config().unwrap().zone_skip, [0; 2]);
    t.dp.sync_idle(&loaded.compiled).unwrap();
    let config = t.dp.config().unwrap();
    assert_eq!(
        config.zone_skip, [marks; 2],
        "both slots hold the policy now"
    );
    for (_, host) in HOSTS {
        assert_eq!(ssh(&t, host), DROP, "{host} removed: lan's again");
    }
}
