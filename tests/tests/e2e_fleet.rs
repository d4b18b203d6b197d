//! The fleet, end to end (root, namespaces, the kernel, Debian's `prometheus` and
//! `rsyslog`): three agents on the simulated clinic — the gateway and host agents on
//! PACS and the EHR, each on a host name of its own — fetch the signed bundle from a
//! local HTTPS server, are scraped by a real Prometheus evaluating the shipped alerting
//! rules, and send their events to a real rsyslog. Bundle N+1, with a new rule and a
//! fleet quarantine, reaches all three within two poll intervals as Prometheus sees
//! it; the quarantined host is cut by each agent (traffic, and each agent's own drop
//! counter); the quarantine alert fires; rsyslog holds each host's events; `ward fleet
//! status` sees no drift, then an agent down. Run with `--test-threads=1`.
use std::{
    collections::BTreeMap,
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

mod support;

use support::{
    gateway::{clinic_policy, prepare, START_TIMEOUT},
    https::BundleServer,
    metrics,
    prometheus::Prometheus,
    rsyslog::{self, Rsyslog},
    run::Run,
    signed::{keygen, sign},
};
use ward::events::FlowRecord;
use ward_tests::{reach, ward_bin, Clinic, Netns, Proto, Role, WardAgent};

/// Every agent's metrics port, on the address named in [`Agent::metrics`].
const METRICS_PORT: u16 = 9469;
/// The bundle server's port on the admin host.
const BUNDLE_PORT: u16 = 9443;
/// How often the agents poll the bundle URL.
const POLL: Duration = Duration::from_secs(3);
/// The scrape job of the shipped alerting rules.
const JOB: &str = "ward";

/// The rules the test adds to the clinic policy in both bundles: the fleet's own
/// traffic (bundle fetch, events, scrapes; the gateway's own address is an admin one)
/// and a service the quarantine will cut on the hosts themselves.
const FLEET_RULES: &str = r#"
[[allow]]
from = ["pacs", "ehr", "admin"]
to = "admin"
tcp = [9443, 10514]
description = "test: bundle fetch (HTTPS) and events (syslog) to the admin host"

[[allow]]
from = "admin"
to = ["pacs", "ehr", "admin"]
tcp = [9469]
description = "test: Prometheus scrapes the agents"

[[allow]]
from = ["pacs", "ehr"]
to = "imaging"
tcp = [104]
description = "test: studies sent back to the imaging workstations"
"#;

/// The rule bundle N+1 adds.
const NEW_RULE: &str = r#"
[[allow]]
from = "pacs"
to = "ehr"
tcp = [8443]
description = "test: PACS posts reports to the EHR API (new in N+1)"
"#;

/// One agent of the fleet.
struct Agent<'c> {
    hostname: &'static str,
    /// Its namespace.
    ns: &'c Netns,
    /// `host:port` of its metrics endpoint: Prometheus' `instance`.
    instance: String,
    ward: WardAgent,
}

impl Agent<'_> {
    /// Packets it dropped because an end is quarantined (its own counter).
    fn quarantine_drops(&self) -> f64 {
        let m = metrics::scrape(self.ns, &self.instance);
        *m.get(r#"ward_denied_packets_total{reason="quarantined"}"#)
            .unwrap_or_else(|| panic!("{}: no quarantined drop counter", self.hostname))
    }
}

/// The shipped alerting rules with `WardAgentDown`'s `for:` cut from 5 minutes to 2
/// seconds (the thresholds are meant to be edited; the test cannot wait 5 minutes).
fn rules_for_the_test(dir: &Path) -> PathBuf {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/prometheus/ward-rules.yml");
    let text = std::fs::read_to_string(&shipped).expect("ward-rules.yml");
    let at = text.find("alert: WardAgentDown").expect("WardAgentDown");
    let rest = &text[at..];
    let for_at = at + rest.find("for: 5m").expect("WardAgentDown's for: 5m");
    let edited = format!(
        "{}for: 2s{}",
        &text[..for_at],
        &text[for_at + "for: 5m".len()..]
    );
    let path = dir.join("ward-rules.yml");
    std::fs::write(&path, edited).expect("rules");
    path
}

/// Waits (at most `limit`) until `done` holds; whether it did.
fn eventually(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `ward fleet status --prometheus URL` in `ns`: exit code, stdout, stderr.
fn fleet_status(ns: &Netns, url: &str) -> (i32, String, String) {
    let out = ns
        .nsenter(ward_bin())
        .args(["fleet", "status", "--prometheus", url])
        .output()
        .expect("ward fleet status");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The syslog messages of host `hostname` (RFC 5424 HOSTNAME field) as events.
fn events_of(received: &[String], hostname: &str) -> Vec<FlowRecord> {
    received
        .iter()
        .filter(|m| m.split(' ').nth(2) == Some(hostname))
        .map(|m| {
            let json = &m[m.find("] {").expect("structured data, then JSON") + 2..];
            serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {m}"))
        })
        .collect()
}

/// Whether `events` hold the `policy-applied` alert of bundle `version` and the
/// quarantine alert of `ip`, each naming `hostname` as its device.
fn has_fleet_events(events: &[FlowRecord], hostname: &str, version: u64, ip: IpAddr) -> bool {
    let alerts = || {
        events
            .iter()
            .filter(|r| r.verdict() == "alert" && r.device.hostname == hostname)
    };
    let applied = alerts().any(|r| {
        r.unmapped.ward.reason == "policy-applied"
            && r.unmapped.ward.alert.as_ref().is_some_and(|a| {
                a.policy
                    .as_ref()
                    .and_then(|p| p.bundle.as_ref())
                    .map(|b| b.version)
                    == Some(version)
            })
    });
    let quarantined =
        alerts().any(|r| r.unmapped.ward.reason == "quarantine" && r.src_endpoint.ip == Some(ip));
    applied && quarantined
}

/// The firing alerts named `name`, by instance.
fn firing(prometheus: &Prometheus, name: &str) -> Vec<BTreeMap<String, String>> {
    let mut alerts: Vec<_> = prometheus
        .firing()
        .into_iter()
        .filter(|labels| labels.get("alertname").map(String::as_str) == Some(name))
        .collect();
    alerts.sort_by(|a, b| a.get("instance").cmp(&b.get("instance")));
    alerts
}

#[test]
fn a_fleet_of_three_agents_is_steered_by_signed_bundles_and_seen_in_prometheus_and_rsyslog() {
    prepare("the fleet end-to-end test");
    let started = Instant::now();
    let clinic = Clinic::create().expect("clinic");
    let admin = clinic.host("admin");
    let imaging: IpAddr = clinic.host("imaging").v4.into();
    let run = Run::new("fleet");
    let (key, public) = keygen(run.dir());
    let clinic_toml = std::fs::read_to_string(clinic_policy()).expect("clinic.toml");
    let (bundle_1_rules, bundle_2_rules) =
        (FLEET_RULES.to_owned(), format!("{FLEET_RULES}{NEW_RULE}"));

    // The admin host runs the fleet's services: rsyslog, the bundle server, Prometheus.
    let collector = Run::new("fleet-collector");
    let rsyslog = Rsyslog::start(&admin.ns, collector.dir(), admin.v4.into());
    let server = BundleServer::start_at(
        &admin.ns,
        run.dir(),
        SocketAddr::new(admin.v4.into(), BUNDLE_PORT),
    );
    let files = [
        ("clinic.toml", clinic_toml.as_str()),
        ("fleet.toml", &bundle_1_rules),
    ];
    let bundle = |path: PathBuf| std::fs::read(path).expect("bundle");
    server.publish(&bundle(sign(run.dir(), &key, 1, &files)));

    // The gateway's address on the admin link (`.1` of the admin subnet).
    let [a, b, c, _] = admin.v4.octets();
    let gw_admin = IpAddr::from([a, b, c, 1]);
    let members = [
        ("ward-gw", &clinic.gw, Role::Gateway, gw_admin),
        (
            "ward-pacs",
            &clinic.host("pacs").ns,
            Role::Host,
            clinic.host("pacs").v4.into(),
        ),
        (
            "ward-ehr",
            &clinic.host("ehr").ns,
            Role::Host,
            clinic.host("ehr").v4.into(),
        ),
    ];
    let mut agents: Vec<Agent> =
        members
            .into_iter()
            .map(|(hostname, ns, role, addr)| {
                let instance = SocketAddr::new(addr, METRICS_PORT).to_string();
                let download = run.dir().join(format!("download-{hostname}"));
                std::fs::create_dir(&download).expect("download dir");
                let settings =
                    format!(
                "event_log = {:?}\nrequire_signature = true\ntrusted_keys = [\"{public}\"]\n\
                 policy_url = {:?}\npoll_interval = \"{}s\"\nca_file = {:?}\n\
                 event_sink = \"syslog+tcp://{}:{}\"\nmetrics_listen = \"{instance}\"\n\
                 watch_policy = false\n",
                run.dir().join(format!("{hostname}.events")).display().to_string(),
                server.url(),
                POLL.as_secs(),
                server.ca_file().display().to_string(),
                admin.v4,
                rsyslog::PORT,
            );
                let interfaces = match role {
                    Role::Gateway => clinic.gateway_interfaces(),
                    Role::Host => vec![ward_tests::clinic::HOST_IF.to_owned()],
                };
                let mut ward =
                    WardAgent::start_named(hostname, ns, role, &interfaces, &download, &settings)
                        .expect("start ward");
                ward.wait_for("enforcing generation=1", START_TIMEOUT)
                    .expect("ward enforcing");
                Agent {
                    hostname,
                    ns,
                    instance,
                    ward,
                }
            })
            .collect();
    let targets: Vec<String> = agents.iter().map(|a| a.instance.clone()).collect();
    let prometheus_dir = Run::new("fleet-prometheus");
    let prometheus = Prometheus::start(
        &admin.ns,
        prometheus_dir.dir(),
        JOB,
        &targets,
        &rules_for_the_test(prometheus_dir.dir()),
    );
    let on_version = |version: u64| {
        let q = format!("ward_policy_bundle_version{{job=\"{JOB}\"}} == {version}");
        prometheus.query(&q).len()
    };
    assert!(
        eventually(Duration::from_secs(20), || on_version(1) == 3),
        "Prometheus does not see the three agents on bundle 1: {:?}",
        prometheus.query("ward_policy_bundle_version")
    );

    // Bundle 1: the flows the quarantine will cut pass; the new rule's does not yet.
    let pacs = clinic.host("pacs");
    let ehr = clinic.host("ehr");
    assert!(reach(
        &clinic.host("imaging").ns,
        Proto::Tcp,
        pacs.v4.into(),
        104
    ));
    assert!(reach(&pacs.ns, Proto::Tcp, imaging, 104));
    assert!(reach(&ehr.ns, Proto::Tcp, imaging, 104));
    assert!(
        !reach(&pacs.ns, Proto::Tcp, ehr.v4.into(), 8443),
        "bundle 1 has no rule for PACS → EHR 8443"
    );

    // Bundle N+1: a new rule and a fleet quarantine of the imaging workstation.
    let expires =
        humantime::format_rfc3339_seconds(std::time::SystemTime::now() + Duration::from_secs(3600));
    let quarantine = format!(
        "[[quarantine]]\naddress = \"{imaging}\"\nreason = \"beacon to C2 (INC-42)\"\n\
         author = \"netsec@clinic\"\nexpires = {expires}\n"
    );
    let files = [
        ("clinic.toml", clinic_toml.as_str()),
        ("fleet.toml", &bundle_2_rules),
        ("quarantine.toml", &quarantine),
    ];
    let published = Instant::now();
    server.publish(&bundle(sign(run.dir(), &key, 2, &files)));
    assert!(
        eventually(2 * POLL, || on_version(2) == 3),
        "Prometheus does not see the three agents on bundle 2 within two poll intervals: {:?}",
        prometheus.query("ward_policy_bundle_version")
    );
    let seen_after = published.elapsed();

    // The new rule is enforced by all three (the flow crosses each of them) …
    assert!(
        reach(&pacs.ns, Proto::Tcp, ehr.v4.into(), 8443),
        "PACS → EHR 8443 of bundle 2"
    );
    assert!(reach(
        &clinic.host("clinician").ns,
        Proto::Tcp,
        ehr.v4.into(),
        443
    ));
    // … and the quarantine by each: the gateway cuts what imaging sends, each host
    // what it sends to imaging before it leaves the host (the gateway sees none of it).
    let drops = |a: &Agent| a.quarantine_drops();
    let (gw, on_pacs, on_ehr) = (&agents[0], &agents[1], &agents[2]);
    let before: Vec<f64> = agents.iter().map(drops).collect();
    assert!(
        !reach(&clinic.host("imaging").ns, Proto::Tcp, pacs.v4.into(), 104),
        "the quarantined host reached PACS"
    );
    assert!(drops(gw) > before[0], "the gateway did not cut it");
    let gw_before = drops(gw);
    assert!(
        !reach(&pacs.ns, Proto::Tcp, imaging, 104),
        "PACS reached the quarantined host"
    );
    assert!(drops(on_pacs) > before[1], "PACS' agent did not cut it");
    assert!(
        !reach(&ehr.ns, Proto::Tcp, imaging, 104),
        "EHR reached the quarantined host"
    );
    assert!(drops(on_ehr) > before[2], "EHR's agent did not cut it");
    assert_eq!(
        drops(gw),
        gw_before,
        "the hosts' packets reached the gateway"
    );
    for a in &agents {
        let (ok, list) = a.ward.cli_outcome(&["quarantine", "--list"]);
        assert!(ok, "{list}");
        assert!(
            list.contains(&format!("{imaging} fleet since "))
                && list.contains("by signed bundle version 2 (author netsec@clinic)"),
            "{}: {list}",
            a.hostname
        );
    }

    // Prometheus: the quarantine alert fires for each agent, by the fleet.
    assert!(
        eventually(Duration::from_secs(15), || firing(
            &prometheus,
            "WardQuarantineStarted"
        )
        .len()
            == 3),
        "WardQuarantineStarted: {:?}",
        prometheus.firing()
    );
    for (alert, a) in firing(&prometheus, "WardQuarantineStarted").iter().zip({
        let mut sorted: Vec<&Agent> = agents.iter().collect();
        sorted.sort_by(|x, y| x.instance.cmp(&y.instance));
        sorted
    }) {
        assert_eq!(alert.get("instance"), Some(&a.instance), "{alert:?}");
        assert_eq!(
            alert.get("by").map(String::as_str),
            Some("fleet"),
            "{alert:?}"
        );
    }

    // rsyslog: each host's policy-applied alert of bundle 2 and its quarantine alert,
    // under its own host name.
    for a in &agents {
        let hostname = a.hostname;
        assert!(
            eventually(Duration::from_secs(10), || {
                has_fleet_events(
                    &events_of(&rsyslog.received(), hostname),
                    hostname,
                    2,
                    imaging,
                )
            }),
            "rsyslog lacks {hostname}'s events: {:#?}",
            rsyslog.received()
        );
    }

    for a in &agents {
        let (ok, text) = a.ward.cli_outcome(&["status"]);
        assert!(ok, "{text}");
        let sink = format!(
            "sink        syslog+tcp://{}:{}: connected; sent ",
            admin.v4,
            rsyslog::PORT
        );
        assert!(text.contains(&sink), "{}: {text}", a.hostname);
    }

    // No drift: one row per agent, all enforcing bundle 2 with one quarantined host.
    let (code, out, err) = fleet_status(&admin.ns, &prometheus.url());
    assert_eq!(code, 0, "ward fleet status: {out}{err}");
    assert_eq!(err, "", "{out}");
    for a in &agents {
        let role = if a.hostname == "ward-gw" {
            "gateway"
        } else {
            "host"
        };
        let row: Vec<&str> = out
            .lines()
            .find(|l| l.starts_with(&format!("{} ", a.instance)))
            .unwrap_or_else(|| panic!("no row for {}: {out}", a.instance))
            .split_whitespace()
            .collect();
        assert_eq!(
            row,
            [
                a.instance.as_str(),
                role,
                "enforce",
                "2",
                "yes",
                "1",
                "-",
                "yes"
            ],
            "{out}"
        );
    }

    // One agent stops: the agent-down alert fires for it alone, and the fleet status
    // says so and exits non-zero.
    let down = agents.pop().expect("the EHR agent");
    let mut ward = down.ward;
    ward.stop().expect("stop the EHR agent");
    assert!(
        eventually(Duration::from_secs(20), || {
            let fired = firing(&prometheus, "WardAgentDown");
            fired.len() == 1 && fired[0].get("instance") == Some(&down.instance)
        }),
        "WardAgentDown: {:?}",
        prometheus.firing()
    );
    let (code, out, err) = fleet_status(&admin.ns, &prometheus.url());
    assert_eq!(code, 1, "ward fleet status with an agent down: {out}{err}");
    assert!(
        err.contains(&format!("ward: fleet: {} is down", down.instance)),
        "{err}"
    );
    let elapsed = started.elapsed();
    eprintln!(
        "fleet: bundle 2 seen by Prometheus on all three agents {} ms after it was published (poll {} s); the test took {} s",
        seen_after.as_millis(),
        POLL.as_secs(),
        elapsed.as_secs()
    );
}
