//! Automatic response: scan detection, quarantine decisions and their alerts.
pub mod alert;
pub mod detector;
pub mod exempt;
pub mod limit;

use ipnet::IpNet;

pub use alert::AlertKind;
pub use detector::{feeds_scan_detection, ScanDetector};
pub use exempt::Exemptions;
use limit::AutoLimit;

use std::{sync::Arc, time::Instant};

use tokio::sync::{broadcast, mpsc};
use tracing::warn;

use crate::{
    config::ResponseConfig,
    daemon::{Bus, Request},
    dataplane::QuarantineEntry,
    events::FlowRecord,
    state::{FaultArea, SharedStatus},
};

/// How often, at most, the events the scan detection skipped are logged.
const SKIPPED_LOG_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// `by` of the quarantines the detector sets.
pub const AUTO: &str = "auto";

/// Watches denial events for scans: a tripped source is quarantined for
/// `config.duration` (through `requests`), or alerted on (through `alerts`) when
/// `auto_quarantine` is off, when it may never be quarantined ([`Exemptions`]: with
/// the failsafe's `management` prefixes) or past `max_auto_quarantines` a minute. A
/// quarantine the kernel table cannot take raises the `quarantine` fault.
pub async fn detect(
    mut events: broadcast::Receiver<Arc<FlowRecord>>,
    config: ResponseConfig,
    management: Vec<IpNet>,
    requests: Bus,
    alerts: mpsc::Sender<FlowRecord>,
    status: SharedStatus,
) {
    let mut detector = ScanDetector::new(config.threshold, config.window);
    let exemptions = Exemptions::new(&config, &management);
    let mut limit = AutoLimit::new(config.max_auto_quarantines);
    // Skipped events not logged yet, and when they last were (a flood would
    // otherwise log a line per lag).
    let (mut unlogged, mut logged_at) = (0u64, None::<Instant>);
    loop {
        let record = match events.recv().await {
            Ok(r) => r,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                unlogged += n;
                if logged_at.is_none_or(|t| t.elapsed() >= SKIPPED_LOG_INTERVAL) {
                    warn!("scan detection skipped {unlogged} events (it fell behind)");
                    (unlogged, logged_at) = (0, Some(Instant::now()));
                }
                if let Ok(mut s) = status.write() {
                    s.response.detector_skipped_total += n;
                }
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if !feeds_scan_detection(record.verdict(), &record.unmapped.ward.reason) {
            continue;
        }
        let (Some(src), Some(dst)) = (record.src_endpoint.ip, record.dst_endpoint.ip) else {
            continue;
        };
        let Some((addrs, ports)) =
            detector.observe(src, dst, record.dst_endpoint.port, Instant::now())
        else {
            continue;
        };
        let reason = format!(
            "scan: denied towards {addrs} addresses and {ports} ports within {}",
            humantime::format_duration(config.window)
        );
        let zone = &record.src_endpoint.zone;
        let generation = record.unmapped.ward.policy_generation;
        let alert_only = |kind: AlertKind, why: &str| {
            warn!("{src} ({zone}): {reason}; not quarantined: {why}");
            let entry = QuarantineEntry {
                ip: src,
                reason: format!("{reason}; not quarantined: {why}"),
                by: AUTO.into(),
                since: std::time::SystemTime::now(),
                expires: None,
                fleet: None,
            };
            let _ = alerts.try_send(alert::record(kind, src, zone, &entry, generation));
        };
        let why = match config.auto_quarantine {
            false => Some("auto_quarantine is off"),
            true => exemptions.why_not(src, zone, &exempt::own_addresses()),
        };
        if let Some(why) = why {
            alert_only(AlertKind::Exempt, why);
            if let Ok(mut s) = status.write() {
                s.response.exempt_alerts_total += 1;
            }
            continue;
        }
        if !limit.admit(Instant::now()) {
            alert_only(
                AlertKind::Limited,
                &format!(
                    "more than max_auto_quarantines = {} within a minute",
                    config.max_auto_quarantines
                ),
            );
            if let Ok(mut s) = status.write() {
                s.response.limited_alerts_total += 1;
            }
            continue;
        }
        let (reply, answer) = tokio::sync::oneshot::channel();
        let request = Request::Quarantine {
            ip: src,
            ttl: Some(config.duration),
            reason: reason.clone(),
            by: AUTO.into(),
            reply,
        };
        if requests.send(request).await.is_err() {
            return;
        }
        let Ok(outcome) = answer.await else {
            return;
        };
        let Ok(mut s) = status.write() else {
            continue;
        };
        match outcome {
            Ok(_) => {
                s.clear(FaultArea::Quarantine);
            }
            Err(e) => {
                let message = format!("{src} ({zone}) was not quarantined: {e}");
                s.raise(FaultArea::Quarantine, message.clone(), 1);
                drop(s);
                alert_only(AlertKind::QuarantineFailed, &e.to_string());
            }
        }
    }
}
