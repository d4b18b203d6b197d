//! Reloads at the size limit, through `BPF_PROG_TEST_RUN` (needs root): the zone trie
//! holds two slots, the policy in force and the next; policies of the largest size
//! the checker admits (`ward::policy::capacity`) are applied one after the other and
//! each reload succeeds whole, the last policy in force.
mod support;

use std::net::Ipv6Addr;

use ipnet::Ipv6Net;
use support::{
    frames::{FrameSpec, L4},
    TestDataplane, DROP, PASS,
};
use ward::policy::{self, capacity::SLOT_ZONE_ENTRIES};

/// The small policy whose `big` zone each test policy fills up.
const POLICY: &str = r#"
[zones.big]
cidrs = ["2001:db8:ffff::/48"]
[zones.server]
cidrs = ["2001:db8:1::/64"]

[[allow]]
from = "big"
to = "server"
tcp = 22
"#;

/// The `i`-th address of the `set`-th block of /128s.
fn host(set: u128, i: u128) -> Ipv6Addr {
    Ipv6Addr::from((0x2001_0db8_u128 << 96) | ((0x10 + set) << 64) | i)
}

/// [`POLICY`] with `big` made of /128s of block `set`, so that the policy has exactly
/// the `SLOT_ZONE_ENTRIES` IPv6 prefixes the checker admits (built directly: compiling
/// 262,144 prefixes in a debug build would take most of the test).
fn full(set: u128) -> policy::CompiledPolicy {
    let mut c = policy::load_str("capacity.toml", POLICY)
        .expect("policy")
        .compiled;
    let big = c.zone_id("big").expect("zone big");
    let server =
        c.v6.iter()
            .find(|(_, z)| *z != big)
            .copied()
            .expect("server");
    let mut v6: Vec<_> = (0..SLOT_ZONE_ENTRIES as u128 - 1)
        .map(|i| (Ipv6Net::new(host(set, i), 128).expect("/128"), big))
        .chain(std::iter::once(server))
        .collect();
    v6.sort();
    c.v6 = v6.into();
    assert_eq!(c.v6.len(), SLOT_ZONE_ENTRIES);
    let groups = c.rule_groups();
    assert!(policy::capacity::overflows(c.v4.len(), c.v6.len(), c.rules.len(), groups).is_empty());
    c.hash = format!("capacity-test-{set}");
    c
}

#[test]
fn reloads_at_the_size_limit_never_run_out_of_room() {
    let mut t = TestDataplane::new("capacity");
    // Three full policies with disjoint prefixes: the third goes into the slot the
    // first still fills. Inserting before removing would need three tables' worth.
    for set in 0..3 {
        t.dp.apply(&full(set))
            .unwrap_or_else(|e| panic!("reload {set} of a full policy: {e:#}"));
    }
    let ssh = |set, i| {
        FrameSpec::new(
            &host(set, i).to_string(),
            "2001:db8:1::10",
            L4::Tcp(40000 + (i % 1000) as u16, 22),
        )
    };
    let last = SLOT_ZONE_ENTRIES as u128 - 2;
    assert_eq!(
        t.xdp(&ssh(2, 0).build()),
        PASS,
        "first host of the policy in force"
    );
    assert_eq!(
        t.xdp(&ssh(2, last).build()),
        PASS,
        "last host of the policy in force"
    );
    assert_eq!(
        t.xdp(&ssh(0, 1).build()),
        DROP,
        "a host of the first policy, replaced"
    );
    assert_eq!(
        t.xdp(&ssh(1, 2).build()),
        DROP,
        "a host of the second policy, replaced"
    );
}
