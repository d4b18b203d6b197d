//! What the agent tells the programs (root, the kernel): the `[limits]` and `[events]`
//! budgets in the pinned `Config`, and this host's addresses in `HOST_ADDRS`, where a
//! later agent removes what an earlier one left. Run with `--test-threads=1`.
use std::net::IpAddr;

mod support;

use support::TestDataplane;
use ward::dataplane::Dataplane;

/// The budgets in the kernel's `Config`: (flows per source, flow burst, events per
/// source, events per CPU).
fn budgets(t: &TestDataplane) -> (u32, u32, u32, u32) {
    let c = t.dp.config().expect("the Config map");
    (
        c.flows_per_source,
        c.flow_burst,
        c.events_per_source,
        c.events_per_cpu,
    )
}

#[test]
fn limits_and_event_budgets_reach_the_kernel() {
    let mut t = TestDataplane::new("limits");
    let cpus = aya::util::nr_cpus().expect("possible CPUs") as u32;

    t.configure("");
    assert_eq!(budgets(&t), (200, 1000, 100, 5000u32.div_ceil(cpus)));

    t.configure(
        "[limits]\nnew_flows_per_source = 7\nnew_flow_burst = 70\n\
         [events]\nper_source = 3\nper_second = 1001\n",
    );
    assert_eq!(budgets(&t), (7, 70, 3, 1001u32.div_ceil(cpus)));

    // The earlier key of the per-source budget; 0 lifts the limits.
    t.configure(
        "events_per_source = 5\n[limits]\nnew_flows_per_source = 0\n[events]\nper_second = 0\n",
    );
    assert_eq!(budgets(&t), (0, 1000, 5, 0));
}

#[test]
fn host_addresses_are_written_and_stale_ones_removed() {
    let mut t = TestDataplane::new("host-addrs");
    let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
    let (a, b, c) = (ip("198.18.20.1"), ip("2001:db8:20::1"), ip("198.18.21.1"));

    let synced = t.dp.set_host_addrs(&[a, b, a]).expect("write");
    let mut added = synced.added.clone();
    added.sort();
    assert_eq!((added, synced.removed), (vec![a, b], vec![]));
    let synced = t.dp.set_host_addrs(&[b, c]).expect("write");
    assert_eq!((synced.added, synced.removed), (vec![c], vec![a]));
    assert!(t.dp.set_host_addrs(&[b, c]).expect("write").is_empty());

    // A later agent (the same pinned map) removes what it does not find any more.
    let mut later = Dataplane::load(t.dir()).expect("load again");
    let synced = later.set_host_addrs(&[c]).expect("write");
    assert_eq!((synced.added, synced.removed), (vec![], vec![b]));
}
