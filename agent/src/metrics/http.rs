//! The scrape endpoint: `GET /metrics` over HTTP/1.1, served by hyper, one request per
//! connection, a few connections at once, every step bounded in time.
use std::{
    convert::Infallible, future::Future, io, net::SocketAddr, sync::PoisonError, time::Duration,
};

use http_body_util::Full;
use hyper::{
    body::{Bytes, Incoming},
    header,
    server::conn::http1,
    service::service_fn,
    Method, Request, Response, StatusCode,
};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{net::TcpListener, task::JoinSet};
use tracing::{debug, warn};

use super::{encode, CONTENT_TYPE};
use crate::{dataplane::SharedCounters, state::SharedStatus};

/// The path that serves the metrics.
const METRICS_PATH: &str = "/metrics";
/// Largest request head read (hyper's smallest buffer limit); a longer one is answered
/// 431.
const MAX_HEAD: usize = 8 * 1024;
/// Time a client has to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// Time a connection may last in all, its response taken included.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(15);
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

/// Answers every connection `listener` accepts, at most [`MAX_CONNECTIONS`] at once, with
/// the text `scrape` makes.
pub(super) async fn run<F, Fut>(listener: TcpListener, scrape: F) -> io::Result<()>
where
    F: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<String, String>> + Send + 'static,
{
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept(), if connections.len() < MAX_CONNECTIONS => match accepted {
                Ok((stream, peer)) => {
                    let scrape = scrape.clone();
                    connections.spawn(async move {
                        let service = service_fn(move |request| respond(request, scrape.clone()));
                        let connection = http1::Builder::new()
                            .timer(TokioTimer::new())
                            .header_read_timeout(HEAD_TIMEOUT)
                            .max_buf_size(MAX_HEAD)
                            .keep_alive(false)
                            .serve_connection(TokioIo::new(stream), service);
                        match tokio::time::timeout(CONNECTION_TIMEOUT, connection).await {
                            Ok(Ok(())) => {}
                            Ok(Err(e)) => debug!("metrics endpoint: {peer}: {e}"),
                            Err(_) => debug!("metrics endpoint: {peer}: not done within {CONNECTION_TIMEOUT:?}"),
                        }
                    });
                }
                Err(e) => {
                    warn!("metrics endpoint: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = connections.join_next() => {}
        }
    }
}

/// The answer to one request: the metrics for `GET` (or `HEAD`) of [`METRICS_PATH`]
/// (any query), 404 for another path, 405 for another method, 500 when reading fails.
async fn respond<F, Fut>(
    request: Request<Incoming>,
    scrape: F,
) -> Result<Response<Full<Bytes>>, Infallible>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<String, String>>,
{
    let plain = |status: StatusCode, text: String| {
        let mut r = Response::new(Full::new(Bytes::from(text)));
        *r.status_mut() = status;
        r
    };
    if request.uri().path() != METRICS_PATH {
        return Ok(plain(
            StatusCode::NOT_FOUND,
            "not found; metrics are at /metrics\n".into(),
        ));
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "only GET\n".into());
        r.headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET"));
        return Ok(r);
    }
    Ok(match scrape().await {
        Ok(text) => {
            let mut r = plain(StatusCode::OK, text);
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static(CONTENT_TYPE),
            );
            r
        }
        Err(e) => {
            warn!("metrics endpoint: {e}");
            plain(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n"))
        }
    })
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
