//! The socket, the protocol and the server's answers, through the client.
use std::{
    fs,
    io::{BufRead, BufReader, Write},
    os::unix::net::UnixStream,
    path::Path,
};

use super::*;
use crate::control::{
    authorized, Client, ControlError, CountersSummary, FlowEvent, FlowFilter, FlowVerdict, Request,
};

/// One raw request line and the `error` of its answer.
fn error_for(socket: &Path, line: &str) -> String {
    let mut stream = UnixStream::connect(socket).unwrap();
    stream.write_all(line.as_bytes()).unwrap();
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer).unwrap();
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    answer["error"].as_str().unwrap_or_default().to_owned()
}

/// The first `n` events of a subscription.
fn first(socket: &Path, filter: FlowFilter, n: usize) -> Vec<FlowEvent> {
    let stream = Client::new(socket).flows(filter).unwrap();
    stream.take(n).collect::<Result<_, _>>().unwrap()
}

fn events(records: &[FlowRecord], indices: &[usize]) -> Vec<FlowEvent> {
    let event = |i: &usize| FlowEvent::Record(Box::new(records[*i].clone()));
    indices.iter().map(event).collect()
}

#[test]
fn control_socket_is_for_root_and_the_agent_user() {
    assert!(authorized(0, 0));
    assert!(authorized(0, 1000));
    assert!(authorized(1000, 1000));
    assert!(!authorized(1000, 0));
    assert!(!authorized(1001, 1000));
}

#[tokio::test]
async fn bind_makes_a_private_socket_replaces_a_stale_one_and_refuses_a_live_one() {
    let dir = temp_dir();
    let socket = dir.join("run/ward.sock");
    let live = bind(&socket).unwrap();
    assert_eq!((mode(&dir.join("run")), mode(&socket)), (0o700, 0o600));
    let err = bind(&socket).unwrap_err().to_string();
    let in_use = format!("another ward daemon is listening on {}", socket.display());
    assert_eq!(err, in_use);
    drop(live);
    assert!(socket.exists(), "a stale socket stays behind");
    let _replaced = bind(&socket).unwrap();
    fs::write(dir.join("file"), "").unwrap();
    let err = bind(&dir.join("file")).unwrap_err();
    assert!(matches!(err, ControlError::NotASocket(_)), "{err}");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn requests_are_one_json_object_each() {
    let flows = Request::Flows(FlowFilter {
        verdict: Some(FlowVerdict::Audit),
        zone: Some("lab".into()),
        ..FlowFilter::default()
    });
    let line = serde_json::to_string(&flows).unwrap();
    assert_eq!(line, r#"{"cmd":"flows","verdict":"audit","zone":"lab"}"#);
    let line = serde_json::to_string(&Request::Status).unwrap();
    assert_eq!(line, r#"{"cmd":"status"}"#);
}

#[tokio::test]
async fn status_answers_the_agent_state_and_a_counter_summary() {
    let h = Harness::start(16, vec![]);
    let socket = h.socket.clone();
    let reply = blocking(move || Client::new(&socket).status())
        .await
        .unwrap();
    assert_eq!(reply.status.hooks.len(), 2);
    assert_eq!(reply.status.current().unwrap().hash, HASH);
    let expected = CountersSummary {
        allowed_packets: 100,
        denied_packets: 32,
        audited_packets: 5,
        events_emitted: 37,
        events_suppressed: 1,
        events_lost: 0,
        conntrack_entries: 12,
        conntrack_capacity: 65536,
    };
    assert_eq!(reply.counters, Some(expected));
}

#[tokio::test]
async fn counters_lists_zone_pair_totals() {
    let h = Harness::start(16, vec![]);
    let socket = h.socket.clone();
    let list = blocking(move || Client::new(&socket).counters())
        .await
        .unwrap();
    let pairs: Vec<_> = list
        .iter()
        .map(|c| {
            (
                c.src_zone.as_str(),
                c.dst_zone.as_str(),
                c.verdict,
                c.packets,
                c.bytes,
            )
        })
        .collect();
    let expected = [
        ("clinic", "records", FlowVerdict::Allow, 100, 6000),
        ("clinic", "records", FlowVerdict::Deny, 2, 120),
        ("guest", "records", FlowVerdict::Deny, 30, 1800),
        ("lab", "world", FlowVerdict::Audit, 5, 300),
    ];
    assert_eq!(pairs, expected);
}

#[tokio::test(flavor = "current_thread")]
async fn flows_streams_only_the_matching_events_in_order() {
    let h = Harness::start(16, vec![]);
    let records = [
        record(0, "allow", "clinic", "records"),
        record(1, "deny", "guest", "records"),
        record(2, "audit", "lab", "world"),
        record(3, "deny", "clinic", "lab"),
        record(4, "allow", "lab", "clinic"),
        record(5, "deny", "guest", "lab"), // matches every filter: nothing is missing before it
    ];
    let filter = |verdict, zone: Option<&str>| FlowFilter {
        verdict,
        zone: zone.map(Into::into),
        ..FlowFilter::default()
    };
    let cases = [
        (filter(Some(FlowVerdict::Deny), None), vec![1, 3, 5]),
        (filter(None, Some("lab")), vec![2, 3, 4, 5]),
        (filter(Some(FlowVerdict::Deny), Some("guest")), vec![1, 5]),
    ];
    let mut clients = Vec::new();
    for (filter, expected) in &cases {
        let (socket, filter, n) = (h.socket.clone(), filter.clone(), expected.len());
        clients.push(tokio::task::spawn_blocking(move || {
            first(&socket, filter, n)
        }));
    }
    h.subscribed(clients.len()).await;
    h.send(&records);
    for (client, (_, expected)) in clients.into_iter().zip(&cases) {
        assert_eq!(client.await.unwrap(), events(&records, expected));
    }
}

#[tokio::test(flavor = "current_thread")]
async fn flows_tells_how_many_events_a_slow_client_missed() {
    let h = Harness::start(4, vec![]);
    let socket = h.socket.clone();
    let client = tokio::task::spawn_blocking(move || first(&socket, FlowFilter::default(), 5));
    h.subscribed(1).await;
    // The server cannot run between these sends: it finds 6 skipped, then the last 4.
    let records: Vec<_> = (0..10)
        .map(|i| record(i, "deny", "guest", "records"))
        .collect();
    h.send(&records);
    let mut expected = vec![FlowEvent::Lagged(6)];
    expected.extend(events(&records, &[6, 7, 8, 9]));
    assert_eq!(client.await.unwrap(), expected);
}

#[tokio::test]
async fn bad_requests_get_an_error_line() {
    let h = Harness::start(16, vec![]);
    let socket = h.socket.clone();
    let lines = [
        ("hello\n", "expected value"),
        ("{\"cmd\":\"frobnicate\"}\n", "unknown variant `frobnicate`"),
        (
            "{\"cmd\":\"flows\",\"verdict\":\"maybe\"}\n",
            "unknown variant `maybe`",
        ),
        (
            "{\"cmd\":\"flows\",\"zones\":\"lab\"}\n",
            "unknown field `zones`",
        ),
    ];
    let errors = blocking(move || lines.map(|(line, _)| error_for(&socket, line))).await;
    for (error, (_, expected)) in errors.iter().zip(lines) {
        assert!(
            error.starts_with(&format!("bad request: {expected}")),
            "{error}"
        );
    }
}

#[tokio::test]
async fn a_flows_stream_says_once_it_is_subscribed() {
    let h = Harness::start(16, vec![]);
    let socket = h.socket.clone();
    let first_line = blocking(move || {
        let mut stream = UnixStream::connect(&socket).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream.write_all(b"{\"cmd\":\"flows\"}\n").unwrap();
        let mut line = String::new();
        let _ = BufReader::new(stream).read_line(&mut line);
        line
    })
    .await;
    assert_eq!(first_line, "{\"subscribed\":true}\n");
    // The client returns only then: an event sent at once is not missed.
    let socket = h.socket.clone();
    let stream = blocking(move || Client::new(&socket).flows(FlowFilter::default())).await;
    let mut stream = stream.unwrap();
    let r = record(0, "deny", "lab", "world");
    h.send(std::slice::from_ref(&r));
    let got = blocking(move || stream.next()).await;
    assert_eq!(got.unwrap().unwrap(), FlowEvent::Record(Box::new(r)));
}
