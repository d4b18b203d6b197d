//! The event sink: RFC 5424 frames byte for byte, the back-off, drops when the buffer
//! is full, and delivery to a TCP and a TLS collector that breaks and comes back.
use std::{sync::Arc, time::Duration};

use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, BufReader},
    net::TcpListener,
};

use super::{conn::Target, frame::*, task::Backoff, *};
use crate::state::AgentStatus;

fn origin() -> Origin {
    Origin {
        procid: 4242,
        agent: "clinic \"gw\" [1]".into(),
        role: "gateway",
    }
}

#[test]
fn a_denied_flow_is_a_warning_with_the_host_and_agent() {
    let record = super::super::tests::denied();
    let json = serde_json::to_string(&record).unwrap();
    let frame = frame(&origin(), &SinkEvent::new(&record, &json));
    let message = format!(
        "<132>1 2026-11-24T17:18:06.123Z ward-gw ward 4242 deny [ward@32473 host=\"ward-gw\" \
         agent=\"clinic \\\"gw\\\" [1\\]\" role=\"gateway\"] {json}"
    );
    assert_eq!(
        String::from_utf8(frame).unwrap(),
        format!("{} {message}", message.len())
    );
}

#[test]
fn an_alert_takes_its_severity_from_the_finding() {
    let mut record =
        crate::response::alert::tamper("gw-imaging", "ingress", "re-attached".into(), 2);
    record.time = 1_795_540_686_123;
    record.device.hostname = "ward gw\u{e9}".into();
    let event = SinkEvent::new(&record, "{}");
    assert_eq!(event.severity_id, 4, "a tamper alert is High");
    let frame = String::from_utf8(frame(&origin(), &event)).unwrap();
    let message = "<131>1 2026-11-24T17:18:06.123Z wardgw ward 4242 alert [ward@32473 \
                   host=\"ward gw\u{e9}\" agent=\"clinic \\\"gw\\\" [1\\]\" role=\"gateway\"] {}";
    assert_eq!(frame, format!("{} {message}", message.len()));
    assert!(
        frame.starts_with("129 <131>"),
        "the length counts bytes: {frame}"
    );
}

#[test]
fn severities_follow_the_ocsf_severity() {
    let mapped: Vec<u8> = (0..=7).map(severity).collect();
    assert_eq!(mapped, [5, 6, 5, 4, 3, 2, 1, 5]);
}

#[test]
fn the_backoff_doubles_to_ten_seconds_and_starts_again() {
    let mut backoff = Backoff::default();
    let waits: Vec<u64> = (0..9)
        .map(|_| backoff.next_wait().as_millis() as u64)
        .collect();
    assert_eq!(
        waits,
        [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000]
    );
    backoff.reset();
    assert_eq!(backoff.next_wait(), Duration::from_millis(100));
}

fn event(n: u32) -> SinkEvent {
    SinkEvent {
        time: 1_795_540_686_000 + i64::from(n),
        severity_id: 1,
        verdict: "allow".into(),
        hostname: "h".into(),
        json: format!("{{\"n\":{n}}}"),
    }
}

#[test]
fn a_full_buffer_drops_without_waiting() {
    let (handle, mut rx) = SinkHandle::channel(2);
    assert!(handle.offer(event(1)));
    assert!(handle.offer(event(2)));
    assert!(!handle.offer(event(3)), "the third does not fit");
    assert_eq!(rx.try_recv().unwrap(), event(1));
    assert!(handle.offer(event(4)), "room again");
    drop(rx);
    assert!(!handle.offer(event(5)), "no sink task: dropped");
}

fn shared_status() -> SharedStatus {
    let mut s: AgentStatus = serde_json::from_str(
        r#"{"role":"host","mode":"enforce","policy_path":"p","hooks":[],"slots":[null,null],
            "generation":0,"started_at":{"secs_since_epoch":0,"nanos_since_epoch":0},
            "loaded_at":null,"last_reload_ok":null,"last_reload_error":null}"#,
    )
    .unwrap();
    s.event_sink = Some(SinkStats::default());
    Arc::new(std::sync::RwLock::new(s))
}

fn stats(status: &SharedStatus) -> SinkStats {
    status.read().unwrap().event_sink.clone().unwrap()
}

/// Waits (at most 10 s) until the sink's counts satisfy `done`.
async fn until(status: &SharedStatus, done: impl Fn(&SinkStats) -> bool) -> SinkStats {
    for _ in 0..200 {
        if done(&stats(status)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stats(status)
}

/// `f`, or a panic after 10 s.
async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .expect("timed out")
}

/// Reads one octet-counted frame (within 10 s).
async fn read_frame(r: &mut (impl AsyncBufReadExt + Unpin)) -> String {
    within(read_frame_now(r)).await
}

async fn read_frame_now(r: &mut (impl AsyncBufReadExt + Unpin)) -> String {
    let mut len = Vec::new();
    r.read_until(b' ', &mut len).await.unwrap();
    let len: usize = std::str::from_utf8(&len).unwrap().trim().parse().unwrap();
    let mut msg = vec![0; len];
    r.read_exact(&mut msg).await.unwrap();
    String::from_utf8(msg).unwrap()
}

#[tokio::test]
async fn a_tcp_collector_gets_every_event_and_a_lost_one_is_reconnected_to() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let target = Target {
        host: "127.0.0.1".into(),
        port,
        tls: None,
    };
    let status = shared_status();
    let (handle, rx) = SinkHandle::channel(16);
    tokio::spawn(task::run(target, origin(), rx, status.clone()));
    for n in 0..3 {
        assert!(handle.offer(event(n)));
    }
    let (socket, _) = within(listener.accept()).await.unwrap();
    let mut r = BufReader::new(socket);
    for n in 0..3 {
        assert!(read_frame(&mut r)
            .await
            .ends_with(&format!("{{\"n\":{n}}}")));
    }
    let s = until(&status, |s| s.sent_total == 3).await;
    assert_eq!(
        (s.connected, s.sent_total, s.dropped_total, s.lost_total),
        (true, 3, 0, 0)
    );

    // The collector goes away: the sink notices, and what comes meanwhile waits.
    drop(r);
    assert!(!until(&status, |s| !s.connected).await.connected, "noticed");
    for n in 3..5 {
        assert!(handle.offer(event(n)));
    }
    let (socket, _) = within(listener.accept()).await.unwrap();
    let mut r = BufReader::new(socket);
    for n in 3..5 {
        assert!(read_frame(&mut r)
            .await
            .ends_with(&format!("{{\"n\":{n}}}")));
    }
    let s = until(&status, |s| s.sent_total == 5).await;
    assert_eq!((s.connected, s.sent_total, s.lost_total), (true, 5, 0));
}

#[tokio::test]
async fn a_tls_collector_is_verified_against_ca_file() {
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
    let cert = params.self_signed(&key).unwrap();
    let dir = std::env::temp_dir().join(format!("ward-sink-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, cert.pem()).unwrap();

    let server = tokio_rustls::rustls::ServerConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        tokio_rustls::rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();

    // Trusting the collector's CA: delivered and acknowledged.
    let status = shared_status();
    let (handle, rx) = SinkHandle::channel(16);
    let tls = Arc::new(conn::tls_config(Some(&ca)).unwrap());
    let target = Target {
        host: "localhost".into(),
        port,
        tls: Some(tls),
    };
    tokio::spawn(task::run(target, origin(), rx, status.clone()));
    assert!(handle.offer(event(7)));
    let (socket, _) = within(listener.accept()).await.unwrap();
    let mut r = BufReader::new(acceptor.accept(socket).await.unwrap());
    assert!(read_frame(&mut r).await.ends_with("{\"n\":7}"));
    let s = until(&status, |s| s.sent_total == 1).await;
    assert_eq!((s.connected, s.sent_total), (true, 1));

    // Trusting only the web PKI: the handshake fails, nothing is sent.
    let status = shared_status();
    let (handle, rx) = SinkHandle::channel(16);
    let target = Target {
        host: "localhost".into(),
        port,
        tls: Some(Arc::new(conn::tls_config(None).unwrap())),
    };
    tokio::spawn(task::run(target, origin(), rx, status.clone()));
    assert!(handle.offer(event(8)));
    let (socket, _) = within(listener.accept()).await.unwrap();
    assert!(
        acceptor.accept(socket).await.is_err(),
        "the client refuses the certificate"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let s = stats(&status);
    assert_eq!((s.connected, s.sent_total), (false, 0));

    assert_eq!(
        conn::tls_config(Some(&dir.join("missing.pem")))
            .unwrap_err()
            .to_string()
            .split(':')
            .next(),
        Some(format!("ca_file {}/missing.pem", dir.display()).as_str())
    );
    std::fs::write(dir.join("empty.pem"), "").unwrap();
    assert_eq!(
        conn::tls_config(Some(&dir.join("empty.pem")))
            .unwrap_err()
            .to_string(),
        format!(
            "ca_file {}/empty.pem: no CA certificate in it",
            dir.display()
        )
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
