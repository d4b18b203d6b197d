//! `policy_url`: the bundle fetched over HTTPS with `If-None-Match`, verified (trusted
//! signature, not older than the anti-rollback floor) and only then stored where the
//! agent reads its policy; the agent applies it as it applies any file change. A body
//! that fails verification never replaces the last good bundle on disk, so a bad
//! server cannot leave the host without a policy at its next start.
use std::{path::PathBuf, sync::Arc, time::Duration, time::SystemTime};

use tokio::sync::Notify;
use tracing::{debug, info, warn};
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

use super::{
    bundle::{Bundle, MAX_BUNDLE_BYTES},
    floor::FloorFile,
    keys::TrustedKey,
    write_atomic, DistributionError, FetchStatus,
};
use crate::state::{FaultArea, SharedStatus};

/// The longest one request may take (shorter when the poll interval is).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What one request found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fetched {
    /// 304: the ETag sent is still current.
    NotModified,
    /// 200 with the bytes already stored.
    Same,
    /// 200 with new bytes, now stored.
    Stored,
}

/// What a fetched body must pass before it may replace the stored bundle: the checks
/// the agent makes before applying one, short of loading the policy.
#[derive(Clone)]
pub struct Gate {
    /// The keys a bundle must be signed by.
    pub trusted: Vec<TrustedKey>,
    /// The anti-rollback floor, read at each fetch (it rises as bundles are applied).
    pub floor: Option<FloorFile>,
}

impl Gate {
    /// Accepts `body` when it is a bundle signed by a trusted key and not older than
    /// the floor.
    fn admit(&self, url: &str, body: &[u8]) -> Result<(), DistributionError> {
        let bundle = Bundle::parse(std::path::Path::new(url), body)?;
        let info = bundle.verify(&self.trusted)?;
        if let Some(floor) = self
            .floor
            .as_ref()
            .map(FloorFile::load)
            .transpose()?
            .flatten()
        {
            floor.admits(&info)?;
        }
        Ok(())
    }
}

/// Fetches one URL, remembering its ETag, into one file.
#[derive(Clone)]
pub struct Fetcher {
    agent: ureq::Agent,
    url: String,
    dest: PathBuf,
    etag: Option<String>,
    gate: Gate,
}

impl Fetcher {
    /// A fetcher of `url` into `dest`, polled every `interval`, storing only what
    /// passes `gate`; with `ca_file`, only the CA certificates in that PEM file are
    /// trusted (else the web PKI roots).
    pub fn new(
        url: &str,
        ca_file: Option<&std::path::Path>,
        dest: PathBuf,
        interval: Duration,
        gate: Gate,
    ) -> Result<Fetcher, DistributionError> {
        let mut tls = TlsConfig::builder();
        if let Some(ca) = ca_file {
            tls = tls.root_certs(RootCerts::Specific(Arc::new(read_ca(ca)?)));
        }
        let config = ureq::Agent::config_builder()
            .https_only(true)
            .http_status_as_error(false)
            .timeout_global(Some(interval.min(REQUEST_TIMEOUT)))
            // A connection per fetch: polls are far apart, and the first fetch runs
            // before the programs are attached, so its connection is unknown to the
            // connection table that judges the next poll (a host agent drops it).
            .max_idle_connections(0)
            .tls_config(tls.build())
            .build();
        Ok(Fetcher {
            agent: config.into(),
            url: url.to_owned(),
            dest,
            etag: None,
            gate,
        })
    }

    /// One conditional GET (blocking); a new bundle that passes the gate is written to
    /// `dest` atomically, one that does not is an error and `dest` stays as it was.
    pub fn fetch(&mut self) -> Result<Fetched, DistributionError> {
        let error = |message: String| DistributionError::Fetch {
            url: self.url.clone(),
            message,
        };
        let mut request = self.agent.get(&self.url);
        if let Some(etag) = &self.etag {
            request = request.header("If-None-Match", etag);
        }
        let mut response = request.call().map_err(|e| error(e.to_string()))?;
        match response.status().as_u16() {
            304 => return Ok(Fetched::NotModified),
            200 => {}
            status => return Err(error(format!("HTTP status {status}"))),
        }
        let etag = response
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_BUNDLE_BYTES)
            .read_to_vec()
            .map_err(|e| error(format!("reading the body: {e}")))?;
        let fetched = match std::fs::read(&self.dest) {
            Ok(stored) if stored == body => Fetched::Same,
            _ => {
                self.gate.admit(&self.url, &body).map_err(|e| {
                    error(format!(
                        "refused, the bundle stored in {} is kept: {e}",
                        self.dest.display()
                    ))
                })?;
                write_atomic(&self.dest, &body)?;
                Fetched::Stored
            }
        };
        self.etag = etag;
        Ok(fetched)
    }

    /// The ETag of the last bundle fetched.
    pub fn etag(&self) -> Option<&str> {
        self.etag.as_deref()
    }

    /// The URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// The certificates of a PEM file.
fn read_ca(path: &std::path::Path) -> Result<Vec<Certificate<'static>>, DistributionError> {
    let bad = |message: String| DistributionError::Key {
        path: path.to_owned(),
        message,
    };
    let pem = std::fs::read(path).map_err(|source| DistributionError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        if let PemItem::Certificate(c) = item.map_err(|e| bad(e.to_string()))? {
            certs.push(c);
        }
    }
    if certs.is_empty() {
        return Err(bad("no PEM certificate in the file".into()));
    }
    Ok(certs)
}

/// Fetches every `interval` until the task is dropped, off the runtime's thread;
/// reports each outcome in `status` (and a failure as the `policy-fetch` fault), and
/// notifies `stored`, when given, of each new bundle stored.
pub async fn poll(
    mut fetcher: Fetcher,
    interval: Duration,
    status: SharedStatus,
    stored: Option<Arc<Notify>>,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let job = tokio::task::spawn_blocking(move || {
            let outcome = fetcher.fetch();
            (fetcher, outcome)
        });
        let outcome;
        (fetcher, outcome) = match job.await {
            Ok(done) => done,
            Err(e) => {
                warn!("policy_url: the fetch task failed: {e}");
                return;
            }
        };
        report(&fetcher, &outcome, &status);
        if let (Ok(Fetched::Stored), Some(stored)) = (&outcome, &stored) {
            stored.notify_one();
        }
    }
}

/// Logs an outcome and records it in `status`.
pub fn report(
    fetcher: &Fetcher,
    outcome: &Result<Fetched, DistributionError>,
    status: &SharedStatus,
) {
    let Ok(mut status) = status.write() else {
        return;
    };
    let now = SystemTime::now();
    let fetch = status
        .distribution
        .fetch
        .get_or_insert_with(|| FetchStatus::new(fetcher.url()));
    fetch.last_attempt = Some(now);
    match outcome {
        Ok(fetched) => {
            fetch.last_success = Some(now);
            fetch.etag = fetcher.etag().map(str::to_owned);
            fetch.last_result = fetched.describe().into();
            match fetched {
                Fetched::Stored => info!(
                    "policy_url: new bundle (ETag {}) stored in {}",
                    fetcher.etag().unwrap_or("none"),
                    fetcher.dest.display()
                ),
                _ => debug!("policy_url: {}", fetched.describe()),
            }
            if status.clear(FaultArea::PolicyFetch).is_some() {
                info!("policy_url: {} answers again", fetcher.url());
            }
        }
        Err(e) => {
            fetch.last_result = match e {
                DistributionError::Fetch { message, .. } => message.clone(),
                other => other.to_string(),
            };
            let message = format!("{e}; the policy in force stays");
            if status.raise(FaultArea::PolicyFetch, message, 1) {
                warn!("{e}; the policy in force stays, the agent tries again");
            }
        }
    }
}

impl Fetched {
    /// One line for the status.
    fn describe(self) -> &'static str {
        match self {
            Fetched::NotModified => "304 not modified",
            Fetched::Same => "200, the bundle already stored",
            Fetched::Stored => "200, a new bundle stored",
        }
    }
}
