//! A minimal HTTP/1.1 responder for the one scrape path: read the request head (bounded
//! in size and time), answer, close the connection.
use std::{future::Future, io, net::SocketAddr, sync::PoisonError, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    task::JoinSet,
};
use tracing::{debug, warn};

use super::{encode, CONTENT_TYPE};
use crate::{dataplane::SharedCounters, state::SharedStatus};

/// The path that serves the metrics.
const METRICS_PATH: &str = "/metrics";
/// Largest request head read; a longer one is answered 400.
const MAX_HEAD: usize = 8 * 1024;
/// Time a client has to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// Time a client has to take the response.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time given to a client to close its side after the response, so that closing ours
/// does not reset the connection under unread request bytes.
const LINGER: Duration = Duration::from_secs(1);
/// Connections answered at once; further ones wait in the listen backlog.
const MAX_CONNECTIONS: usize = 4;

/// Serves `GET /metrics` on `listen` until the returned future is dropped.
///
/// Returns only a binding error, as it is (the caller names `listen`, e.g.
/// `metrics_listen 127.0.0.1:9469: Address already in use (os error 98)`); once bound,
/// a connection's errors end that connection and accept errors are logged and retried.
/// Each scrape reads the kernel counters and the status at that moment, in that lock
/// order (the status under the counters lock): the daemon must never wait for the
/// counters while it holds the status.
pub async fn serve(
    listen: SocketAddr,
    status: SharedStatus,
    counters: SharedCounters,
) -> io::Result<()> {
    let listener = TcpListener::bind(listen).await?;
    run(listener, move || scrape(status.clone(), counters.clone())).await
}

/// Reads the counters and the status together and encodes them; `Err` is the reason for a 500.
async fn scrape(status: SharedStatus, counters: SharedCounters) -> Result<String, String> {
    let read = tokio::task::spawn_blocking(move || {
        // The status is read under the counters lock, so that the slot names match the
        // counts even while the daemon harvests and rewrites a slot.
        let counters = counters.lock().unwrap_or_else(PoisonError::into_inner);
        let status = status
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let snapshot = counters.snapshot(&status.slots);
        (status, snapshot)
    });
    let (status, snapshot) = read
        .await
        .map_err(|e| format!("reading the counters: {e}"))?;
    let snapshot = snapshot.map_err(|e| one_line(&e))?;
    Ok(encode(&status, &snapshot))
}

/// Answers the connections of `listener`, asking `scrape` for each `GET /metrics` body.
pub(super) async fn run<F, Fut>(listener: TcpListener, scrape: F) -> io::Result<()>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<String, String>> + Send + 'static,
{
    // Owned here, so that dropping the server ends the connections it is answering.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept(), if connections.len() < MAX_CONNECTIONS => match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(answer(stream, peer, scrape()));
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    warn!("metrics endpoint: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = connections.join_next() => {}
        }
    }
}

/// Answers one request on `stream`, then closes it. `body` is only awaited for `GET /metrics`.
async fn answer(
    mut stream: TcpStream,
    peer: SocketAddr,
    body: impl Future<Output = Result<String, String>>,
) {
    let response = match tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut stream)).await {
        Err(_) => {
            debug!("metrics endpoint: {peer}: no request within {HEAD_TIMEOUT:?}");
            return;
        }
        Ok(Err(e)) => {
            debug!("metrics endpoint: {peer}: {e}");
            return;
        }
        Ok(Ok(None)) => response(
            400,
            "Bad Request",
            &[],
            "request head too long or malformed\n",
        ),
        Ok(Ok(Some(head))) => match route(&head) {
            Route::Metrics => match body.await {
                Ok(text) => response(200, "OK", &[("Content-Type", CONTENT_TYPE)], &text),
                Err(e) => {
                    warn!("metrics endpoint: {e}");
                    response(500, "Internal Server Error", &[], &format!("{e}\n"))
                }
            },
            Route::NotFound => response(
                404,
                "Not Found",
                &[],
                "not found; metrics are at /metrics\n",
            ),
            Route::MethodNotAllowed => {
                response(405, "Method Not Allowed", &[("Allow", "GET")], "only GET\n")
            }
            Route::BadRequest => response(400, "Bad Request", &[], "malformed request line\n"),
        },
    };
    let sent = tokio::time::timeout(WRITE_TIMEOUT, async {
        stream.write_all(&response).await?;
        stream.shutdown().await
    });
    match sent.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            debug!("metrics endpoint: {peer}: {e}");
            return;
        }
        Err(_) => {
            debug!("metrics endpoint: {peer}: response not taken within {WRITE_TIMEOUT:?}");
            return;
        }
    }
    // Wait (briefly, boundedly) for the client to close, discarding what it still sends.
    let mut scratch = [0u8; 1024];
    let _ = tokio::time::timeout(LINGER, async {
        for _ in 0..64 {
            if matches!(stream.read(&mut scratch).await, Ok(0) | Err(_)) {
                break;
            }
        }
    })
    .await;
}

/// Reads up to the end of the request head; `None` when it is longer than [`MAX_HEAD`]
/// or the client closed before ending it.
async fn read_head(stream: &mut TcpStream) -> io::Result<Option<Vec<u8>>> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        let searched_from = head.len().saturating_sub(3);
        head.extend_from_slice(&chunk[..n]);
        if let Some(end) = head[searched_from..]
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
        {
            head.truncate(searched_from + end);
            return Ok(Some(head));
        }
        if head.len() > MAX_HEAD {
            return Ok(None);
        }
    }
}

/// What a request asks for.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    /// `GET /metrics` (a query string is ignored).
    Metrics,
    /// Another path.
    NotFound,
    /// `/metrics` with another method than GET.
    MethodNotAllowed,
    /// No `METHOD TARGET HTTP/x.y` request line.
    BadRequest,
}

/// Routes a request by its request line.
fn route(head: &[u8]) -> Route {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Route::BadRequest;
    };
    if method.is_empty() || !version.starts_with("HTTP/1.") {
        return Route::BadRequest;
    }
    let path = target.split_once('?').map_or(target, |(path, _)| path);
    match (method, path) {
        ("GET", METRICS_PATH) => Route::Metrics,
        (_, METRICS_PATH) => Route::MethodNotAllowed,
        _ => Route::NotFound,
    }
}

/// A complete response that closes the connection.
fn response(code: u16, reason: &str, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut head = format!("HTTP/1.1 {code} {reason}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !headers.iter().any(|(name, _)| *name == "Content-Type") {
        head.push_str("Content-Type: text/plain; charset=utf-8\r\n");
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body.as_bytes());
    bytes
}

/// An error and its causes on one line, each cause once.
fn one_line(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
