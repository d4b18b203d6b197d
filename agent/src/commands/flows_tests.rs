//! `ward flows` against the control server's fakes: an unknown zone is refused, and
//! `--since` prints the event log's history (from that time on, filtered) before the
//! live events, without printing one twice.
use std::{
    path::Path,
    process::ExitCode,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use crate::{
    commands::{self, FlowsOptions},
    control::{tests::*, FlowFilter},
    events::FlowRecord,
    state::PolicyNames,
};

/// Runs `ward flows` off the runtime's thread: result, stdout, stderr.
async fn flows(socket: &Path, options: FlowsOptions) -> (Result<ExitCode, String>, String, String) {
    let socket = socket.to_owned();
    blocking(move || {
        let mut err = Vec::new();
        let (result, out) = run(|out| commands::flows(&socket, &options, out, &mut err));
        (result, out, String::from_utf8(err).unwrap())
    })
    .await
}

/// A record `ago` before now from `src` to `dst` port `port`, denied.
fn at(ago: Duration, src: &str, port: u16) -> FlowRecord {
    let mut r = record(0, "deny", "lab", "clinic");
    let ms = (SystemTime::now() - ago)
        .duration_since(UNIX_EPOCH)
        .unwrap();
    r.time = i64::try_from(ms.as_millis()).unwrap();
    r.src_endpoint.ip = Some(src.parse().unwrap());
    r.dst_endpoint.port = Some(port);
    r
}

fn json(records: &[&FlowRecord]) -> String {
    records
        .iter()
        .map(|r| serde_json::to_string(r).unwrap() + "\n")
        .collect()
}

#[tokio::test]
async fn an_unknown_zone_is_refused_with_the_known_ones() {
    let h = Harness::start(16, vec![]);
    h.status.write().unwrap().slots[1] = Some(PolicyNames {
        generation: 1,
        hash: HASH.into(),
        zones: vec!["world".into(), "clinic".into(), "lab".into()],
        rules: vec![],
    });
    let options = |zone: &str| FlowsOptions {
        filter: FlowFilter {
            zone: Some(zone.into()),
            ..FlowFilter::default()
        },
        json: true,
        since: Some(Duration::from_secs(60)),
        follow: false,
    };
    assert_eq!(
        flows(&h.socket, options("labs")).await,
        (
            Ok(ExitCode::from(2)),
            String::new(),
            "ward: error: unknown zone `labs`: the policy in force has zones world, clinic, lab\n"
                .to_owned()
        )
    );
    // A known zone goes on (here: to the missing event log).
    assert_eq!(
        flows(&h.socket, options("lab")).await,
        (
            Err("the agent writes no event log (`event_log` is not set): --since has no history to read".into()),
            String::new(),
            String::new()
        )
    );
    // A log not written yet is an empty history.
    h.status.write().unwrap().event_log = Some(h.socket.with_file_name("none.jsonl"));
    assert_eq!(
        flows(&h.socket, options("lab")).await,
        (Ok(ExitCode::SUCCESS), String::new(), String::new())
    );
}

#[tokio::test]
async fn since_prints_the_matching_history_then_exits_without_follow() {
    let h = Harness::start(16, vec![]);
    let log = h.socket.with_file_name("events.jsonl");
    let old = at(Duration::from_secs(20 * 60), "198.18.0.1", 443);
    let recent = at(Duration::from_secs(5 * 60), "198.18.0.1", 443);
    let other_port = at(Duration::from_secs(4 * 60), "198.18.0.1", 22);
    let other_addr = at(Duration::from_secs(3 * 60), "198.18.9.1", 443);
    let last = at(Duration::from_secs(60), "198.18.0.7", 443);
    let lines = json(&[&old, &recent, &other_port, &other_addr, &last]);
    std::fs::write(&log, lines).unwrap();
    h.status.write().unwrap().event_log = Some(log);
    let options = FlowsOptions {
        filter: FlowFilter {
            addr: Some("198.18.0.0/24".parse().unwrap()),
            port: Some(443),
            ..FlowFilter::default()
        },
        json: true,
        since: Some(Duration::from_secs(10 * 60)),
        follow: false,
    };
    assert_eq!(
        flows(&h.socket, options).await,
        (
            Ok(ExitCode::SUCCESS),
            json(&[&recent, &last]),
            String::new()
        )
    );
}

#[tokio::test(flavor = "current_thread")]
async fn since_then_follows_live_without_repeating_a_record() {
    let h = Harness::start(16, vec![]);
    let log = h.socket.with_file_name("events.jsonl");
    let logged = at(Duration::ZERO, "198.18.0.1", 443);
    std::fs::write(&log, json(&[&logged])).unwrap();
    h.status.write().unwrap().event_log = Some(log);
    let options = FlowsOptions {
        json: true,
        since: Some(Duration::from_secs(60)),
        follow: true,
        ..FlowsOptions::default()
    };
    let socket = h.socket.clone();
    let client = tokio::task::spawn_blocking(move || {
        run(|out| commands::flows(&socket, &options, out, &mut std::io::sink()))
    });
    h.subscribed(1).await;
    // The logged record arrives live too (it was broadcast after the subscription).
    let new = at(Duration::ZERO, "198.18.0.2", 443);
    h.send(&[logged.clone(), new.clone()]);
    while !h.events.is_empty() {
        tokio::task::yield_now().await;
    }
    h.server.abort();
    let (result, text) = client.await.unwrap();
    assert!(result.is_err(), "ends when the daemon goes away");
    assert_eq!(text, json(&[&logged, &new]));
}
