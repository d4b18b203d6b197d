//! The event sink against a real collector (root, namespaces, the kernel): rsyslog
//! (the Debian package) listens in the clinic's admin namespace; Ward runs as a host
//! agent on imaging, pacs and ehr, each with `event_sink = "syslog+tcp://…"`. Every
//! event each agent writes to its event log reaches rsyslog, attributable to its
//! agent; with the collector away and back, every event is received or counted as
//! dropped or lost; events in flight when the connection breaks are counted as lost.
//! Run with `--test-threads=1` (see `cargo xtask test`).
use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

mod support;

use support::{
    gateway::{clinic_policy, prepare, START_TIMEOUT},
    metrics,
    rsyslog::{Rsyslog, TlsFiles, PORT},
    run::Run,
};
use ward_tests::{flood, ward_bin, Clinic, Host, Role, WardAgent};

/// Each agent's metrics endpoint, inside its own namespace.
const METRICS: &str = "127.0.0.1:9469";
/// Events each agent holds for the collector (small, to make the drops happen).
const SINK_BUFFER: usize = 8;
/// The agents: (clinic host, `agent_name`).
const AGENTS: [(&str, &str); 3] = [
    ("imaging", "ward-imaging"),
    ("pacs", "ward-pacs"),
    ("ehr", "ward-ehr"),
];

/// One agent: its host, name, run directory and process.
struct Agent<'a> {
    host: &'a Host,
    name: &'static str,
    run: Run,
    ward: WardAgent,
}

impl<'c> Agent<'c> {
    /// Starts a host agent on `host` of `clinic` named `name`, enforcing the clinic
    /// policy plus a rule for the collector's port, with the `sink` settings (the
    /// `event_sink` line and what goes with it; a table, if any, last).
    fn start(clinic: &'c Clinic, host: &str, name: &'static str, sink: &str) -> Agent<'c> {
        let host = clinic.host(host);
        let run = Run::new(&format!("syslog-{name}"));
        let text = std::fs::read_to_string(clinic_policy()).expect("clinic.toml");
        let policy = run.policy(&format!(
            "{text}\n[[allow]]\nfrom = \"any\"\nto = \"admin\"\ntcp = [{PORT}]\n\
             description = \"test: events to the collector\"\n"
        ));
        let settings = run.settings(&format!(
            "agent_name = \"{name}\"\nmetrics_listen = \"{METRICS}\"\nwatch_policy = false\n{sink}"
        ));
        let mut ward = WardAgent::start_configured(
            &ward_bin(),
            &host.ns,
            Role::Host,
            &[host.host_if.to_string()],
            &policy,
            &settings,
        )
        .expect("start ward");
        ward.wait_for("enforcing generation=1", START_TIMEOUT)
            .expect("ward enforcing");
        Agent {
            host,
            name,
            run,
            ward,
        }
    }
}

impl Agent<'_> {
    /// The lines of its event log.
    fn logged(&self) -> Vec<String> {
        let text = std::fs::read_to_string(self.run.events()).unwrap_or_default();
        text.lines().map(str::to_owned).collect()
    }

    /// Its `ward_event_sink_*` metrics: (connected, sent, dropped, lost).
    fn sink(&self) -> (f64, f64, f64, f64) {
        let m = metrics::scrape(&self.host.ns, METRICS);
        let get = |name: &str| *m.get(name).unwrap_or_else(|| panic!("no {name}"));
        (
            get("ward_event_sink_connected"),
            get("ward_event_sink_sent_total"),
            get("ward_event_sink_dropped_total"),
            get("ward_event_sink_lost_total"),
        )
    }
}

/// The messages that carry `agent`'s name, as (header up to the JSON, JSON).
fn from_agent<'m>(received: &'m [String], agent: &str) -> Vec<(&'m str, &'m str)> {
    let sd = format!("agent=\"{agent}\"");
    received
        .iter()
        .filter(|m| m.contains(&sd))
        .map(|m| m.split_at(m.find("] {").expect("structured data, then JSON") + 2))
        .collect()
}

/// Whether every received message of each agent is one of its logged events (one to
/// one) with the right header; returns how many each received.
fn check_received(agents: &[Agent], received: &[String]) -> Vec<usize> {
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
    let mut counts = Vec::new();
    for a in agents {
        let mut logged: HashMap<String, usize> = HashMap::new();
        for line in a.logged() {
            *logged.entry(line).or_default() += 1;
        }
        let messages = from_agent(received, a.name);
        for (header, json) in &messages {
            let left = logged.get_mut(*json).unwrap_or_else(|| {
                panic!(
                    "{}: received an event it did not log (or twice): {json}",
                    a.name
                )
            });
            assert!(*left > 0, "{}: received twice: {json}", a.name);
            *left -= 1;
            let event: serde_json::Value = serde_json::from_str(json).expect("OCSF JSON");
            assert_eq!(event["device"]["ip"], a.host.v4.to_string(), "{json}");
            let (pri, rest) = header.split_once(">1 ").expect("RFC 5424 header");
            assert!(
                pri.starts_with("<13") || pri.starts_with("<12"),
                "local0: {header}"
            );
            let fields: Vec<&str> = rest.splitn(6, ' ').collect();
            assert_eq!(fields[1], hostname.trim(), "HOSTNAME: {header}");
            assert_eq!(fields[2], "ward", "APP-NAME: {header}");
            assert_eq!(fields[3], a.ward.pid().to_string(), "PROCID: {header}");
            assert_eq!(
                fields[4], event["unmapped"]["ward"]["verdict"],
                "MSGID: {header}"
            );
            let sd = format!(
                "[ward@32473 host=\"{}\" agent=\"{}\" role=\"host\"] ",
                hostname.trim(),
                a.name
            );
            assert_eq!(fields[5], sd, "structured data: {header}");
        }
        counts.push(messages.len());
    }
    counts
}

/// Waits (at most `limit`) until `done` holds for what rsyslog received.
fn wait_received(rsyslog: &Rsyslog, limit: Duration, done: impl Fn(&[String]) -> bool) {
    let deadline = Instant::now() + limit;
    while !done(&rsyslog.received()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Denied UDP datagrams from world to each agent's host: one event each (and
/// waits until each event log has them).
fn denials(agents: &[Agent], world: &Host, count: u64) {
    let before: Vec<usize> = agents.iter().map(|a| a.logged().len()).collect();
    for a in agents {
        flood(&world.ns, a.host.v4.into(), 514, count, 2000).expect("flood");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    for (a, before) in agents.iter().zip(before) {
        while a.logged().len() < before + count as usize {
            assert!(Instant::now() < deadline, "{}: denials not logged", a.name);
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Three agents send every event to rsyslog, each attributable to its agent; rsyslog
/// stops, more events come than the sink buffer holds, rsyslog comes back: what was
/// buffered arrives, the rest is counted as dropped, nothing else is missing.
#[test]
fn three_agents_send_every_event_to_rsyslog_and_count_what_it_missed() {
    prepare("the syslog end-to-end test");
    let clinic = Clinic::create().expect("clinic");
    let admin = clinic.host("admin");
    let collector_dir = Run::new("syslog-collector");
    let mut rsyslog = Rsyslog::start(&admin.ns, collector_dir.dir(), admin.v4.into());
    let agents: Vec<Agent> = AGENTS
        .iter()
        .map(|&(host, name)| {
            let sink = format!(
                "event_sink = \"syslog+tcp://{}:{PORT}\"\n[events]\nsink_buffer = {SINK_BUFFER}\n",
                admin.v4
            );
            Agent::start(&clinic, host, name, &sink)
        })
        .collect();
    let world = clinic.host("world");

    // Connected: every logged event arrives.
    denials(&agents, world, 5);
    let all_arrived = |received: &[String]| {
        agents
            .iter()
            .all(|a| from_agent(received, a.name).len() == a.logged().len())
    };
    wait_received(&rsyslog, Duration::from_secs(10), all_arrived);
    let received = rsyslog.received();
    let counts = check_received(&agents, &received);
    for (a, count) in agents.iter().zip(&counts) {
        let logged = a.logged().len();
        assert!(
            logged >= 6,
            "{}: the policy-applied alert and 5 denials",
            a.name
        );
        assert_eq!(*count, logged, "{}: every logged event received", a.name);
        // Acknowledgements are looked for every 200 ms.
        let deadline = Instant::now() + Duration::from_secs(5);
        while a.sink().1 < logged as f64 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(a.sink(), (1.0, logged as f64, 0.0, 0.0), "{}", a.name);
    }
    assert_eq!(received.len(), counts.iter().sum::<usize>(), "nothing else");

    // The collector goes away: the agents notice; what comes meanwhile beyond the
    // buffer is dropped (counted); the buffer arrives once the collector is back.
    rsyslog.stop();
    let deadline = Instant::now() + Duration::from_secs(10);
    while agents.iter().any(|a| a.sink().0 != 0.0) {
        assert!(Instant::now() < deadline, "the agents did not notice");
        std::thread::sleep(Duration::from_millis(100));
    }
    let before: Vec<usize> = agents.iter().map(|a| a.logged().len()).collect();
    denials(&agents, world, 20);
    let mut rsyslog = Rsyslog::start(&admin.ns, collector_dir.dir(), admin.v4.into());
    let settled = |received: &[String]| {
        agents.iter().all(|a| {
            let (_, _, dropped, lost) = a.sink();
            from_agent(received, a.name).len() as f64 + dropped + lost >= a.logged().len() as f64
        })
    };
    wait_received(&rsyslog, Duration::from_secs(20), settled);
    let received = rsyslog.received();
    let counts = check_received(&agents, &received);
    for ((a, count), before) in agents.iter().zip(&counts).zip(before) {
        let emitted = a.logged().len();
        let (connected, sent, dropped, lost) = a.sink();
        assert_eq!(emitted - before, 20, "{}: 20 events while away", a.name);
        assert_eq!(connected, 1.0, "{}: reconnected", a.name);
        assert_eq!(
            dropped as usize,
            20 - SINK_BUFFER,
            "{}: all but the buffer dropped",
            a.name
        );
        // Lost events may have arrived: received + lost covers the rest, received
        // alone at least what the collector acknowledged.
        assert!(
            *count as f64 + dropped + lost >= emitted as f64,
            "{}: received {count} + dropped {dropped} + lost {lost} < emitted {emitted}",
            a.name
        );
        assert!(
            *count as f64 >= sent,
            "{}: acknowledged {sent}, received {count}",
            a.name
        );
        assert!(
            *count as f64 + dropped <= emitted as f64,
            "{}: received more than was not dropped",
            a.name
        );
    }

    // With events in flight, the collector's link goes down and the collector dies:
    // the agents learn it from the reset once the link is back; what was in flight
    // (written, never acknowledged) is counted as lost, and never arrived.
    let settled: Vec<(usize, f64, f64)> = agents
        .iter()
        .zip(&counts)
        .map(|(a, count)| (*count, a.sink().1, a.sink().3))
        .collect();
    clinic
        .gw
        .ip(&["link", "set", &admin.gw_if, "down"])
        .expect("link down");
    denials(&agents, world, 3);
    std::thread::sleep(Duration::from_millis(500));
    rsyslog.kill();
    clinic
        .gw
        .ip(&["link", "set", &admin.gw_if, "up"])
        .expect("link up");
    let deadline = Instant::now() + Duration::from_secs(20);
    for (a, (count, sent, lost)) in agents.iter().zip(settled) {
        while a.sink().3 < lost + 3.0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let (connected, now_sent, _, now_lost) = a.sink();
        assert_eq!(now_sent, sent, "{}: none acknowledged", a.name);
        assert_eq!(
            (connected, now_lost),
            (0.0, lost + 3.0),
            "{}: 3 in flight lost",
            a.name
        );
        let received = rsyslog.received();
        assert_eq!(
            from_agent(&received, a.name).len(),
            count,
            "{}: none arrived",
            a.name
        );
    }
}

/// Over TLS (RFC 5425) to rsyslog's `gtls` driver: the agent whose `ca_file` holds the
/// collector's CA delivers every event; one whose `ca_file` holds another CA refuses
/// the collector's certificate and sends nothing.
#[test]
fn a_tls_collector_gets_every_event_and_a_collector_of_another_ca_gets_none() {
    prepare("the syslog end-to-end test");
    let clinic = Clinic::create().expect("clinic");
    let admin = clinic.host("admin");
    let collector_dir = Run::new("syslog-tls-collector");
    let tls = TlsFiles::create(collector_dir.dir(), admin.v4.into());
    let rsyslog = Rsyslog::start_with(&admin.ns, collector_dir.dir(), admin.v4.into(), Some(&tls));
    let other_dir = Run::new("syslog-tls-other-ca");
    let other = TlsFiles::create(other_dir.dir(), admin.v4.into());
    let agents: Vec<Agent> = [
        ("imaging", "ward-imaging", &tls.ca),
        ("pacs", "ward-pacs", &other.ca),
    ]
    .into_iter()
    .map(|(host, name, ca)| {
        let sink = format!(
            "event_sink = \"syslog+tls://{}:{PORT}\"\nca_file = {:?}\n",
            admin.v4,
            ca.display().to_string()
        );
        Agent::start(&clinic, host, name, &sink)
    })
    .collect();
    let world = clinic.host("world");
    denials(&agents, world, 5);
    let (trusting, refusing) = (&agents[0], &agents[1]);
    wait_received(&rsyslog, Duration::from_secs(10), |received| {
        from_agent(received, trusting.name).len() == trusting.logged().len()
    });
    let received = rsyslog.received();
    let counts = check_received(&agents, &received);
    assert_eq!(counts[0], trusting.logged().len(), "every event over TLS");
    assert!(counts[0] >= 6, "the policy-applied alert and 5 denials");
    let deadline = Instant::now() + Duration::from_secs(5);
    while trusting.sink().1 < counts[0] as f64 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(trusting.sink(), (1.0, counts[0] as f64, 0.0, 0.0));
    assert_eq!(
        counts[1], 0,
        "an agent that does not trust the collector sent events"
    );
    let (connected, sent, _, _) = refusing.sink();
    assert_eq!((connected, sent), (0.0, 0.0), "{}", refusing.ward.log());
    let log = refusing.ward.log();
    assert!(
        log.contains("certificate"),
        "the refusal names the certificate: {log}"
    );
}
