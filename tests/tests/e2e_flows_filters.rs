//! End-to-end `ward flows` filters on the simulated clinic (root, namespaces, the
//! kernel): `--addr` (address or CIDR, either end), `--port` (either end), `--zone`
//! combined, read back from the event log with `--since … --no-follow`, and then
//! followed live; an unknown zone is refused. Run with `--test-threads=1`.
use std::{
    io::{BufRead, BufReader},
    net::IpAddr,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

mod support;

use ipnet::IpNet;
use support::{
    gateway::{clinic_policy, prepare, start_gateway},
    run::Run,
};
use ward::events::FlowRecord;
use ward_tests::{reach, ward_bin, Clinic, Proto, WardAgent};

/// The denied flows sent: (client host, server host, TCP port).
const DENIED: [(&str, &str, u16); 5] = [
    ("imaging", "billing", 443),
    ("imaging", "billing", 22),
    ("billing", "imaging", 443),
    ("imaging", "ehr", 443),
    ("pacs", "imaging", 22),
];

/// `ward flows ARGS --json`: exit code, the records printed, stderr.
fn flows(agent: &WardAgent, args: &[&str]) -> (i32, Vec<FlowRecord>, String) {
    let mut all = vec!["flows", "--json"];
    all.extend_from_slice(args);
    let out = agent.cli(&all).expect("run ward flows");
    let records = String::from_utf8(out.stdout)
        .expect("UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    let err = String::from_utf8(out.stderr).expect("UTF-8");
    (out.status.code().unwrap_or(-1), records, err)
}

/// The records of the event log that `keep` selects, as the test computes it.
fn expected(run: &Run, keep: impl Fn(&FlowRecord) -> bool) -> Vec<FlowRecord> {
    run.records().into_iter().filter(|r| keep(r)).collect()
}

fn either_ip(r: &FlowRecord, net: IpNet) -> bool {
    [r.src_endpoint.ip, r.dst_endpoint.ip]
        .into_iter()
        .flatten()
        .any(|ip| net.contains(&ip))
}

fn either_port(r: &FlowRecord, port: u16) -> bool {
    r.src_endpoint.port == Some(port) || r.dst_endpoint.port == Some(port)
}

#[test]
fn filters_select_exactly_the_matching_records_from_history_and_live() {
    prepare("the flows filter end-to-end test");
    let clinic = Clinic::create().expect("clinic");
    let run = Run::new("flows-filters");
    let agent = start_gateway(
        &clinic,
        &clinic_policy(),
        &run.settings("log_level = \"denied\"\n"),
    );
    for (client, server, port) in DENIED {
        let to: IpAddr = clinic.host(server).v4.into();
        assert!(
            !reach(&clinic.host(client).ns, Proto::Tcp, to, port),
            "{client} -> {server}:{port}"
        );
    }
    // Every denied flow is in the event log before the history is read.
    let deadline = Instant::now() + Duration::from_secs(10);
    let sent = |r: &FlowRecord, (client, server, port): (&str, &str, u16)| {
        r.src_endpoint.ip == Some(clinic.host(client).v4.into())
            && r.dst_endpoint.ip == Some(clinic.host(server).v4.into())
            && r.dst_endpoint.port == Some(port)
    };
    while !DENIED
        .iter()
        .all(|&f| run.records().iter().any(|r| sent(r, f)))
    {
        assert!(
            Instant::now() < deadline,
            "denials missing from the event log:\n{}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let billing: IpAddr = clinic.host("billing").v4.into();
    let billing_net = IpNet::from(billing);
    let imaging_net: IpNet = "198.18.20.0/24".parse().unwrap();
    let history = ["--since", "10m", "--no-follow"];
    let cases: Vec<(Vec<String>, Vec<FlowRecord>)> = vec![
        // An address at either end, and a port at either end, together.
        (
            vec![
                "--addr".into(),
                billing.to_string(),
                "--port".into(),
                "443".into(),
            ],
            expected(&run, |r| either_ip(r, billing_net) && either_port(r, 443)),
        ),
        // A CIDR prefix and a zone.
        (
            vec![
                "--addr".into(),
                imaging_net.to_string(),
                "--zone".into(),
                "ehr".into(),
            ],
            expected(&run, |r| either_ip(r, imaging_net) && r.touches_zone("ehr")),
        ),
        // A port alone.
        (
            vec!["--port".into(), "22".into()],
            expected(&run, |r| either_port(r, 22)),
        ),
    ];
    let selections = [(2, 2), (1, 1), (2, 2)];
    for ((args, want), (flows_in, _)) in cases.iter().zip(selections) {
        let mut all: Vec<&str> = history.to_vec();
        all.extend(args.iter().map(String::as_str));
        let (code, got, err) = flows(&agent, &all);
        assert_eq!((code, err.as_str()), (0, ""), "{all:?}");
        assert_eq!(&got, want, "{all:?}");
        // Exactly the flows meant: each sent flow is in or out as the filter says.
        let distinct = DENIED
            .iter()
            .filter(|&&f| got.iter().any(|r| sent(r, f)))
            .count();
        assert_eq!(distinct, flows_in, "{all:?}: {got:?}");
    }

    // An unknown zone is bad input, naming the known ones.
    let (code, got, err) = flows(
        &agent,
        &["--zone", "billings", "--since", "10m", "--no-follow"],
    );
    assert_eq!((code, got.len()), (2, 0));
    assert_eq!(
        err,
        "ward: error: unknown zone `billings`: the policy in force has zones world, admin, \
         billing, clinicians, ehr, imaging, pacs\n"
    );

    // Following: the history first, then a new matching denial live, nothing else.
    let mut follow = Command::new(ward_bin())
        .args(["flows", "--json", "--since", "10m", "--addr"])
        .arg(billing.to_string())
        .args(["--port", "443", "--socket"])
        .arg(agent.control_socket())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("ward flows");
    let out = follow.stdout.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let next = || rx.recv_timeout(Duration::from_secs(10)).ok();
    let before = &cases[0].1;
    for want in before {
        let line = next().expect("the history line");
        assert_eq!(&serde_json::from_str::<FlowRecord>(&line).unwrap(), want);
    }
    let imaging = clinic.host("imaging");
    assert!(!reach(
        &imaging.ns,
        Proto::Tcp,
        clinic.host("pacs").v4.into(),
        443
    ));
    assert!(!reach(&imaging.ns, Proto::Tcp, billing, 443));
    let line = next().expect("the live denial");
    let _ = follow.kill();
    let _ = follow.wait();
    let live: FlowRecord = serde_json::from_str(&line).unwrap();
    assert!(sent(&live, ("imaging", "billing", 443)), "{live:?}");
    assert!(!before.contains(&live), "a new record");
}
