//! End-to-end visibility on the simulated clinic (root, namespaces, the kernel): JSON
//! flow events, the Prometheus endpoint, `ward status`, `ward flows`, audit mode, and
//! an event flood. Run with `--test-threads=1` (see `cargo xtask test`).
use std::{
    collections::HashMap,
    io::{BufRead, BufReader},
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

mod support;

use support::{
    gateway::{self, prepare, start_gateway},
    metrics,
    run::Run,
};
use ward::{
    control::StatusReply,
    events::{record::Device, FlowRecord},
};
use ward_tests::{reach, ward_bin, Clinic, Proto, WardAgent};

const METRICS: &str = "127.0.0.1:9469";

fn clinic_text() -> String {
    let p = gateway::clinic_policy();
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn start(clinic: &Clinic, run: &Run, policy: &Path, extra: &str) -> WardAgent {
    let settings = run.settings(&format!("metrics_listen = {METRICS:?}\n{extra}"));
    start_gateway(clinic, policy, &settings)
}

/// Records of packets from `src` to `dst` on `port`, once at least one has arrived.
fn wait_records(run: &Run, src: IpAddr, dst: IpAddr, port: Option<u16>) -> Vec<FlowRecord> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found: Vec<FlowRecord> = run
            .records()
            .into_iter()
            .filter(|r| {
                r.src_endpoint.ip == Some(src)
                    && r.dst_endpoint.ip == Some(dst)
                    && r.dst_endpoint.port == port
            })
            .collect();
        if !found.is_empty() || Instant::now() > deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Scrapes the metrics endpoint inside the gateway namespace: series → value.
fn scrape(clinic: &Clinic) -> HashMap<String, f64> {
    metrics::scrape(&clinic.gw, METRICS)
}

fn series(name: &str, src: &str, dst: &str, verdict: &str) -> String {
    format!("{name}{{src_zone=\"{src}\",dst_zone=\"{dst}\",verdict=\"{verdict}\"}}")
}

fn ward(agent: &WardAgent, args: &[&str]) -> String {
    let out = agent.cli(args).expect("run ward");
    assert!(
        out.status.success(),
        "ward {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// The gateway's identity in its records: this machine's name (the namespaces share
/// its UTS namespace) and the `.1` / `::1` address of every `gw-<host>` interface,
/// link-local addresses left out.
fn gateway_device(clinic: &Clinic) -> Device {
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
    let mut want: Vec<(String, IpAddr)> = Vec::new();
    for h in &clinic.hosts {
        let [a, b, c, _] = h.v4.octets();
        want.push((h.gw_if.clone(), Ipv4Addr::new(a, b, c, 1).into()));
        let mut v6 = h.v6.segments();
        v6[7] = 1;
        want.push((h.gw_if.clone(), Ipv6Addr::from(v6).into()));
    }
    // getifaddrs lists the IPv4 addresses, then the IPv6 ones.
    want.sort_by_key(|(name, ip)| {
        (
            ip.is_ipv6(),
            clinic.hosts.iter().position(|h| h.gw_if == *name),
        )
    });
    Device::new(hostname.trim().to_owned(), want)
}

#[test]
fn denials_show_in_events_metrics_status_and_flows() {
    prepare("the visibility end-to-end tests");
    let clinic = Clinic::create().expect("clinic");
    let run = Run::new("visibility");
    let policy = run.policy(&clinic_text());
    let settings = "log_level = \"denied\"\nwatch_policy = false\n";
    let mut agent = start(&clinic, &run, &policy, settings);
    let imaging = clinic.host("imaging");

    // A live `ward flows` subscriber, filtered to denials, started before the probes.
    let mut flows = Command::new(ward_bin())
        .args([
            "flows",
            "--json",
            "--verdict",
            "deny",
            "--zone",
            "billing",
            "--socket",
        ])
        .arg(agent.control_socket())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ward flows");
    std::thread::sleep(Duration::from_millis(500));

    for target in ["billing", "ehr"] {
        let host = clinic.host(target);
        assert!(
            !reach(&imaging.ns, Proto::Tcp, host.v4.into(), 443),
            "imaging reached {target}"
        );
        let records = wait_records(&run, imaging.v4.into(), host.v4.into(), Some(443));
        assert!(
            !records.is_empty(),
            "no event for imaging -> {target}; agent log:\n{}",
            agent.log()
        );
        for r in &records {
            assert_eq!(
                (r.src_endpoint.zone.as_str(), r.dst_endpoint.zone.as_str()),
                ("imaging", target)
            );
            assert_eq!(
                (r.verdict(), r.unmapped.ward.reason.as_str()),
                ("deny", "no-rule")
            );
            assert_eq!(
                (r.class_uid, r.activity_id, r.disposition.as_str()),
                (4001, 5, "Blocked")
            );
            assert_eq!(r.connection_info.protocol_name, "tcp");
            assert_eq!(r.unmapped.ward.interface, imaging.gw_if);
            assert_eq!(r.firewall_rule, None, "no rule decided a denial");
            assert_eq!(r.device, gateway_device(&clinic), "the host's identity");
        }
    }

    // The flows subscriber saw the billing denial, and nothing outside its filter.
    let out = flows.stdout.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(out).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(10));
    let _ = flows.kill();
    let _ = flows.wait();
    let line = line.unwrap_or_else(|_| {
        panic!(
            "ward flows printed nothing in 10 s; agent log:\n{}",
            agent.log()
        )
    });
    let seen: FlowRecord =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("ward flows line {line}: {e}"));
    assert_eq!(
        (seen.verdict(), seen.dst_endpoint.zone.as_str()),
        ("deny", "billing")
    );

    // Metrics: the denial is in the imaging -> billing deny series, as many packets as events.
    let billing_events = wait_records(
        &run,
        imaging.v4.into(),
        clinic.host("billing").v4.into(),
        Some(443),
    )
    .len();
    let metrics = scrape(&clinic);
    let denied = metrics
        .get(&series("ward_packets_total", "imaging", "billing", "deny"))
        .copied();
    assert_eq!(
        denied,
        Some(billing_events as f64),
        "deny series vs events; metrics: {metrics:#?}"
    );
    assert_eq!(
        metrics.get(&series("ward_packets_total", "imaging", "billing", "allow")),
        None
    );
    assert!(
        metrics.get("ward_policy_generation") == Some(&1.0),
        "generation metric"
    );

    // An allowed flow counts as allowed, and produces no event at this log level.
    let pacs = clinic.host("pacs");
    assert!(reach(&imaging.ns, Proto::Tcp, pacs.v4.into(), 104));
    let metrics = scrape(&clinic);
    assert!(
        metrics[&series("ward_packets_total", "imaging", "pacs", "allow")] >= 2.0,
        "SYN and more"
    );
    assert!(wait_records(&run, imaging.v4.into(), pacs.v4.into(), Some(104)).is_empty());

    // ward status (JSON and text).
    let status: StatusReply = support::status::reply(&ward(&agent, &["status", "--json"]));
    assert_eq!(status.status.generation, 1);
    // A gateway without [failsafe] management is not warned about (a host would be).
    assert_eq!(status.warnings, Vec::<String>::new());
    assert_eq!(
        status.status.hooks.len(),
        2 * clinic.gateway_interfaces().len()
    );
    assert!(status.status.hooks.iter().all(|h| h.attached));
    let counters = status.counters.expect("counters in status");
    assert!(counters.denied_packets >= billing_events as u64);
    let text = ward(&agent, &["status"]);
    assert!(
        text.contains("gateway") && text.contains("generation 1"),
        "status text:\n{text}"
    );

    // A policy staged on disk (watch_policy = false): clinicians may reach the PACS.
    let staged = format!(
        "{}\n[[allow]]\nfrom = \"clinicians\"\nto = \"pacs\"\ntcp = [104]\n",
        clinic_text()
    );
    std::fs::write(&policy, staged).expect("stage a policy");
    // logrotate: the log is moved away, SIGUSR1 reopens it, new events go to the new
    // file, and the staged policy is not applied.
    let rotated = run.events().with_extension("jsonl.1");
    std::fs::rename(run.events(), &rotated).expect("rotate");
    let before = std::fs::read_to_string(&rotated)
        .expect("rotated log")
        .lines()
        .count();
    agent.sigusr1().expect("SIGUSR1");
    agent
        .wait_for(
            &format!("event log {} reopened (SIGUSR1)", run.events().display()),
            Duration::from_secs(10),
        )
        .expect("SIGUSR1 handled");
    let clinician = clinic.host("clinician");
    assert!(
        !reach(&clinician.ns, Proto::Tcp, pacs.v4.into(), 104),
        "SIGUSR1 applied the staged policy"
    );
    let fresh = wait_records(&run, clinician.v4.into(), pacs.v4.into(), Some(104));
    assert!(!fresh.is_empty(), "no event in the reopened log");
    assert_eq!(fresh[0].verdict(), "deny");
    let after = std::fs::read_to_string(&rotated)
        .expect("rotated log")
        .lines()
        .count();
    assert_eq!(before, after, "the rotated file got no new events");
    let status: StatusReply = support::status::reply(&ward(&agent, &["status", "--json"]));
    assert_eq!(status.status.generation, 1, "SIGUSR1 reloaded the policy");
    assert!(!agent.log().contains("reloaded on SIGUSR1"));

    // SIGHUP reloads: the staged policy is in force, and the log is not reopened.
    agent.sighup().expect("SIGHUP");
    agent
        .wait_for("(reloaded on SIGHUP)", Duration::from_secs(10))
        .expect("SIGHUP reload");
    assert!(
        reach(&clinician.ns, Proto::Tcp, pacs.v4.into(), 104),
        "SIGHUP did not apply the staged policy"
    );
    let status: StatusReply = support::status::reply(&ward(&agent, &["status", "--json"]));
    assert_eq!(status.status.generation, 2);
    assert_eq!(agent.log().matches("reopened (SIGUSR1)").count(), 1);
    agent.stop().expect("stop");
}

#[test]
fn audit_mode_per_zone_and_global_passes_traffic_and_says_audit() {
    prepare("the visibility end-to-end tests");
    let clinic = Clinic::create().expect("clinic");
    let imaging = clinic.host("imaging");
    let (billing, ehr) = (clinic.host("billing"), clinic.host("ehr"));

    // Per zone: billing in audit; ehr stays enforced.
    let run = Run::new("audit-zone");
    let text = clinic_text().replace("[zones.billing]\n", "[zones.billing]\nmode = \"audit\"\n");
    assert!(
        text.contains("mode = \"audit\""),
        "clinic.toml changed shape"
    );
    let policy = run.policy(&text);
    let mut agent = start(&clinic, &run, &policy, "log_level = \"denied\"\n");
    assert!(
        reach(&imaging.ns, Proto::Tcp, billing.v4.into(), 443),
        "audited zone must pass"
    );
    assert!(
        !reach(&imaging.ns, Proto::Tcp, ehr.v4.into(), 443),
        "enforced zone must drop"
    );
    let audited = wait_records(&run, imaging.v4.into(), billing.v4.into(), Some(443));
    assert_eq!(
        audited.len(),
        1,
        "one event for the audited flow's first packet: {audited:?}"
    );
    assert_eq!(
        (audited[0].verdict(), audited[0].disposition.as_str()),
        ("audit", "Logged")
    );
    let denied = wait_records(&run, imaging.v4.into(), ehr.v4.into(), Some(443));
    assert!(denied.iter().all(|r| r.verdict() == "deny") && !denied.is_empty());
    let metrics = scrape(&clinic);
    let audit_packets = metrics[&series("ward_packets_total", "imaging", "billing", "audit")];
    assert!(
        audit_packets >= 3.0,
        "SYN, ACK, data at least: {audit_packets}"
    );
    assert_eq!(
        metrics.get(&series("ward_packets_total", "imaging", "billing", "deny")),
        None
    );
    agent.stop().expect("stop");
    agent.uninstall().expect("uninstall before the next agent");
    drop(run);

    // Global: nothing is dropped.
    let run = Run::new("audit-all");
    let policy = run.policy(&clinic_text());
    let mut agent = start(
        &clinic,
        &run,
        &policy,
        "mode = \"audit\"\nlog_level = \"denied\"\n",
    );
    assert!(
        reach(&imaging.ns, Proto::Tcp, ehr.v4.into(), 443),
        "audit mode drops nothing"
    );
    let records = wait_records(&run, imaging.v4.into(), ehr.v4.into(), Some(443));
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].verdict(), "audit");
    let status: StatusReply = support::status::reply(&ward(&agent, &["status", "--json"]));
    assert_eq!(status.status.mode, ward::state::Mode::Audit);
    let counters = status.counters.expect("counters");
    assert_eq!(counters.denied_packets, 0, "nothing denied in audit mode");
    assert!(counters.audited_packets >= 3);
    agent.stop().expect("stop");
}

#[test]
fn an_event_flood_is_accounted_for_and_does_not_stall_the_agent() {
    prepare("the visibility end-to-end tests");
    let clinic = Clinic::create().expect("clinic");
    let run = Run::new("flood");
    let policy = run.policy(&clinic_text());
    let mut agent = start(
        &clinic,
        &run,
        &policy,
        "log_level = \"denied\"\nevents_per_source = 50\n",
    );
    let (imaging, billing) = (clinic.host("imaging"), clinic.host("billing"));
    ward_tests::flood(&imaging.ns, billing.v4.into(), 9999, 20_000, 5_000).expect("flood");

    // The agent still answers at once.
    let asked = Instant::now();
    let status: StatusReply = support::status::reply(&ward(&agent, &["status", "--json"]));
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "status took {:?}",
        asked.elapsed()
    );
    let counters = status.counters.expect("counters");

    // Every denied packet is an event written, suppressed or lost.
    std::thread::sleep(Duration::from_millis(500));
    let metrics = scrape(&clinic);
    let flood = metrics[&series("ward_packets_total", "imaging", "billing", "deny")] as u64;
    let denied: u64 = metrics
        .iter()
        .filter(|(k, _)| k.starts_with("ward_denied_packets_total{"))
        .map(|(_, v)| *v as u64)
        .sum();
    let emitted = metrics["ward_events_emitted_total"] as u64;
    let suppressed = metrics["ward_events_suppressed_total"] as u64;
    let lost = metrics["ward_events_lost_total"] as u64;
    // Policy alerts (the policy applied at start) are in the log too, not from the kernel.
    let written = run
        .records()
        .iter()
        .filter(|r| r.verdict() != "alert")
        .count() as u64;
    assert!(
        flood > 1000,
        "the flood reached the gateway: {flood} denied"
    );
    assert!(
        suppressed > 0,
        "a 50/s budget must suppress most of a flood"
    );
    assert_eq!(written, emitted, "every emitted event is in the log");
    assert_eq!(
        emitted + suppressed + lost,
        denied,
        "emitted + suppressed + lost = denied packets"
    );
    assert!(counters.events_suppressed <= suppressed);
    agent.stop().expect("stop");
}
