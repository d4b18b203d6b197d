//! End-to-end: interfaces that are not there, or not guarded, on the simulated clinic
//! (root, namespaces, the kernel). A named interface missing at start does not stop
//! `ward run`: the others are enforced on, `ward status` shows the fault, and the
//! interface is enforced on as soon as it appears; on a gateway an interface that is
//! up without Ward's XDP program is a fault too. The kernel is told which interfaces
//! are guarded (`ATTACHED`) and which addresses are the host's own (`HOST_ADDRS`).
//! Run with `--test-threads=1`.
use std::{
    collections::BTreeSet,
    net::IpAddr,
    time::{Duration, Instant},
};

mod support;

use aya::maps::{HashMap, Map, MapData};
use support::{
    gateway::{clinic_policy, prepare, start_gateway, status, START_TIMEOUT},
    late::Late,
    metrics::scrape,
    run::Run,
};
use ward_common::{addr_to_bytes, family, map_names, AddrKey};
use ward_tests::{reach, ward_bin, Clinic, Netns, Proto, Role, WardAgent};

const METRICS: &str = "127.0.0.1:9469";
/// The watch passes every second: what it finds shows within this.
const WATCH_LIMIT: Duration = Duration::from_secs(5);

/// The message of the fault in `area` (`interfaces`, `unguarded`…), if in force.
fn fault(agent: &WardAgent, area: &str) -> Option<String> {
    let (_, reply) = status(agent);
    reply
        .status
        .faults
        .iter()
        .find(|f| f.area.name() == area)
        .map(|f| f.message.clone())
}

/// Polls `check` until it holds, for at most [`WATCH_LIMIT`].
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < WATCH_LIMIT,
            "not within {WATCH_LIMIT:?}: {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The keys of the pinned hash map `name` of `agent`.
fn keys<K: aya::Pod + Ord>(agent: &WardAgent, name: &str) -> BTreeSet<K> {
    let data = MapData::from_pin(agent.pin_dir().join(name)).expect("the pinned map");
    let map: HashMap<_, K, u32> = HashMap::try_from(Map::HashMap(data)).expect("a hash map");
    map.keys().map(|k| k.expect("a key")).collect()
}

/// The interface indexes in the kernel's `ATTACHED` map.
fn attached(agent: &WardAgent) -> BTreeSet<u32> {
    keys(agent, map_names::ATTACHED)
}

/// The addresses in the kernel's `HOST_ADDRS` map.
fn host_addrs(agent: &WardAgent) -> BTreeSet<IpAddr> {
    let data = MapData::from_pin(agent.pin_dir().join(map_names::HOST_ADDRS)).expect("pinned");
    let map: HashMap<_, AddrKey, u32> = HashMap::try_from(Map::HashMap(data)).expect("hash map");
    map.keys()
        .map(|k| {
            let k = k.expect("a key");
            let b = addr_to_bytes(k.addr);
            match k.family {
                family::V4 => IpAddr::from([b[0], b[1], b[2], b[3]]),
                _ => IpAddr::from(b),
            }
        })
        .collect()
}

/// The index of `interface` in `ns`.
fn ifindex(ns: &Netns, interface: &str) -> u32 {
    let line = ns
        .ip(&["-o", "link", "show", "dev", interface])
        .expect("ip link show");
    let (index, _) = line.split_once(':').expect("`N: name…`");
    index.trim().parse().expect("an interface index")
}

#[test]
fn a_named_interface_missing_at_start_is_enforced_on_when_it_appears() {
    prepare("the interface end-to-end tests");
    let clinic = Clinic::create().expect("clinic");
    let run = Run::new("missing-if");
    let settings = run.settings(&format!("metrics_listen = {METRICS:?}\n"));
    let mut interfaces = clinic.gateway_interfaces();
    interfaces.push("gw-late".into());
    let mut agent = WardAgent::start_configured(
        &ward_bin(),
        &clinic.gw,
        Role::Gateway,
        &interfaces,
        &clinic_policy(),
        &settings,
    )
    .expect("start ward");
    agent
        .wait_for("enforcing generation=1", START_TIMEOUT)
        .expect("ward run goes on without gw-late");
    let (imaging, billing, pacs, admin) = (
        clinic.host("imaging"),
        clinic.host("billing"),
        clinic.host("pacs"),
        clinic.host("admin"),
    );
    // The interfaces there are enforced on.
    assert!(!reach(&imaging.ns, Proto::Tcp, billing.v4.into(), 443));
    assert!(reach(&admin.ns, Proto::Tcp, imaging.v4.into(), 22));
    let missing = "interface gw-late does not exist (in this network namespace): enforced on \
                   as soon as it appears";
    assert_eq!(fault(&agent, "interfaces").as_deref(), Some(missing));
    let (text, _) = status(&agent);
    assert!(text.contains("FAULT       interfaces since"), "{text}");
    assert!(text.contains(missing), "{text}");
    let metrics = scrape(&clinic.gw, METRICS);
    let interfaces_fault = "ward_fault{area=\"interfaces\"}";
    assert_eq!(metrics.get(interfaces_fault), Some(&1.0), "{metrics:#?}");
    let guarded: BTreeSet<u32> = clinic
        .gateway_interfaces()
        .iter()
        .map(|i| ifindex(&clinic.gw, i))
        .collect();
    assert_eq!(
        attached(&agent),
        guarded,
        "ATTACHED lists the guarded interfaces"
    );

    // It appears: attached within the watch interval, the fault clears.
    let late = Late::create(&clinic, "gw-late");
    agent
        .wait_for("gw-late: attached", WATCH_LIMIT)
        .expect("gw-late attached");
    eventually("the interfaces fault clears", || {
        fault(&agent, "interfaces").is_none()
    });
    let late_index = ifindex(&clinic.gw, "gw-late");
    assert!(
        attached(&agent).contains(&late_index),
        "gw-late in ATTACHED"
    );
    // What the policy denies from behind it is dropped there; what it allows arrives.
    assert!(
        reach(&admin.ns, Proto::Tcp, late.v4.into(), 22),
        "admin -> late:22 is allowed"
    );
    assert!(
        !reach(&late.ns, Proto::Tcp, pacs.v4.into(), 104),
        "world -> pacs:104 is denied"
    );
    let dropped_at_late = || {
        run.records().into_iter().any(|r| {
            r.verdict() == "deny"
                && r.src_endpoint.ip == Some(late.v4.into())
                && r.unmapped.ward.interface == "gw-late"
                && r.unmapped.ward.hook == "ingress"
        })
    };
    eventually("gw-late's XDP program reports the denial", dropped_at_late);
    let (text, _) = status(&agent);
    assert!(
        text.contains("gw-late: xdp-ingress attached, tc-egress attached"),
        "{text}"
    );
    let metrics = scrape(&clinic.gw, METRICS);
    assert_eq!(metrics.get(interfaces_fault), Some(&0.0), "{metrics:#?}");

    // It goes away: the fault is back, ATTACHED forgets it.
    clinic
        .gw
        .ip(&["link", "del", "gw-late"])
        .expect("del gw-late");
    eventually("the interfaces fault is raised again", || {
        fault(&agent, "interfaces").as_deref() == Some(missing)
    });
    assert_eq!(attached(&agent), guarded);
    drop(late);

    // Stopped with --detach-on-exit, nothing is left listed as guarded.
    agent.stop().expect("stop");
    agent.set_run_args(&["--detach-on-exit"]);
    agent.respawn().expect("respawn");
    agent
        .wait_for("enforcing generation=", START_TIMEOUT)
        .expect("enforcing again");
    assert_eq!(attached(&agent), guarded);
    agent.stop().expect("stop");
    assert!(attached(&agent).is_empty(), "detached: ATTACHED is empty");
    agent.uninstall().expect("uninstall");
}

#[test]
fn a_gateway_reports_unguarded_interfaces_and_tells_the_kernel_its_addresses() {
    prepare("the interface end-to-end tests");
    let clinic = Clinic::create().expect("clinic");
    let run = Run::new("unguarded");
    let settings = run.settings(&format!("metrics_listen = {METRICS:?}\n"));
    let agent = start_gateway(&clinic, &clinic_policy(), &settings);
    assert_eq!(
        fault(&agent, "unguarded"),
        None,
        "every interface is guarded"
    );

    // This host's unicast addresses, both families, and nothing else.
    let own = host_addrs(&agent);
    for a in [
        "198.18.20.1",
        "198.18.99.1",
        "2001:db8:20::1",
        "2001:db8:99::1",
    ] {
        assert!(own.contains(&a.parse().unwrap()), "{a} not in {own:?}");
    }
    assert!(
        own.iter()
            .all(|a| !a.is_loopback() && !a.to_string().starts_with("fe80")),
        "{own:?}"
    );
    // An address added or removed is in step within the watch interval.
    let extra: IpAddr = "198.18.20.254".parse().unwrap();
    clinic
        .gw
        .ip(&["addr", "add", "198.18.20.254/24", "dev", "gw-imaging"])
        .expect("addr add");
    eventually("a new address is written", || {
        host_addrs(&agent).contains(&extra)
    });
    clinic
        .gw
        .ip(&["addr", "del", "198.18.20.254/24", "dev", "gw-imaging"])
        .expect("addr del");
    eventually("a removed address is removed", || {
        !host_addrs(&agent).contains(&extra)
    });

    // An interface the configuration does not name comes up: a fault naming it.
    let late = Late::create(&clinic, "gw-extra");
    let unguarded = "unguarded interface gw-extra: forwarded packets from it are judged on egress";
    eventually("the unguarded fault is raised", || {
        fault(&agent, "unguarded").as_deref() == Some(unguarded)
    });
    let (text, _) = status(&agent);
    assert!(text.contains(unguarded), "{text}");
    let metrics = scrape(&clinic.gw, METRICS);
    let unguarded_fault = "ward_fault{area=\"unguarded\"}";
    assert_eq!(metrics.get(unguarded_fault), Some(&1.0), "{metrics:#?}");
    assert!(
        !attached(&agent).contains(&ifindex(&clinic.gw, "gw-extra")),
        "gw-extra is not guarded"
    );
    assert!(
        host_addrs(&agent).contains(&"198.18.26.1".parse().unwrap()),
        "its address is the gateway's own"
    );
    // Down, it forwards nothing: the fault clears.
    clinic
        .gw
        .ip(&["link", "set", "gw-extra", "down"])
        .expect("down");
    eventually("the unguarded fault clears", || {
        fault(&agent, "unguarded").is_none()
    });
    let metrics = scrape(&clinic.gw, METRICS);
    assert_eq!(metrics.get(unguarded_fault), Some(&0.0), "{metrics:#?}");
    drop(late);
}
