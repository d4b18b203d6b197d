//! Automatic response: scan detection, quarantine decisions and their alerts.
pub mod alert;
pub mod detector;

use std::net::IpAddr;

use ipnet::IpNet;

pub use alert::AlertKind;
pub use detector::ScanDetector;

use std::{sync::Arc, time::Instant};

use tokio::sync::{broadcast, mpsc};
use tracing::warn;

use crate::{
    config::ResponseConfig,
    daemon::{Bus, Request},
    dataplane::QuarantineEntry,
    events::FlowRecord,
    state::SharedStatus,
};

/// `by` of the quarantines the detector sets.
pub const AUTO: &str = "auto";

/// Watches denial events for scans: a tripped source is quarantined for
/// `config.duration` (through `requests`), or alerted on when exempt or when
/// `auto_quarantine` is off (through `alerts`).
pub async fn detect(
    mut events: broadcast::Receiver<Arc<FlowRecord>>,
    config: ResponseConfig,
    requests: Bus,
    alerts: mpsc::Sender<FlowRecord>,
    status: SharedStatus,
) {
    let mut detector = ScanDetector::new(config.threshold, config.window);
    let exemptions = Exemptions::new(&config);
    loop {
        let record = match events.recv().await {
            Ok(r) => r,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                warn!("scan detection skipped {n} events (it fell behind)");
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if record.verdict() != "deny" || record.unmapped.ward.reason != "no-rule" {
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
        if !config.auto_quarantine || exemptions.covers(src, zone) {
            warn!("{src} ({zone}): {reason}; not quarantined (exempt or auto_quarantine off)");
            let now = std::time::SystemTime::now();
            let entry = QuarantineEntry {
                ip: src,
                reason,
                by: AUTO.into(),
                since: now,
                expires: None,
            };
            let generation = record.unmapped.ward.policy_generation;
            let _ = alerts.try_send(alert::record(
                AlertKind::Exempt,
                src,
                zone,
                &entry,
                generation,
            ));
            if let Ok(mut s) = status.write() {
                s.response.exempt_alerts_total += 1;
            }
            continue;
        }
        let (reply, _) = tokio::sync::oneshot::channel();
        let request = Request::Quarantine {
            ip: src,
            ttl: Some(config.duration),
            reason,
            by: AUTO.into(),
            reply,
        };
        if requests.send(request).await.is_err() {
            return;
        }
    }
}

/// Who may be quarantined: hosts and zones listed in `never_quarantine` are not.
#[derive(Clone, Debug, Default)]
pub struct Exemptions {
    nets: Vec<IpNet>,
    zones: Vec<String>,
}

impl Exemptions {
    /// From `[response] never_quarantine`: CIDRs (or bare addresses) and zone names.
    pub fn new(config: &ResponseConfig) -> Self {
        let mut out = Exemptions::default();
        for item in &config.never_quarantine {
            match item
                .parse::<IpNet>()
                .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
            {
                Ok(net) => out.nets.push(net),
                Err(_) => out.zones.push(item.clone()),
            }
        }
        out
    }

    /// Whether `ip` (in `zone`) is exempt.
    pub fn covers(&self, ip: IpAddr, zone: &str) -> bool {
        self.nets.iter().any(|n| n.contains(&ip)) || self.zones.iter().any(|z| z == zone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exemptions_take_cidrs_addresses_and_zone_names() {
        let config = ResponseConfig {
            never_quarantine: vec![
                "198.18.24.0/24".into(),
                "2001:db8:20::7".into(),
                "pacs".into(),
            ],
            ..ResponseConfig::default()
        };
        let e = Exemptions::new(&config);
        assert!(e.covers("198.18.24.9".parse().unwrap(), "admin"));
        assert!(e.covers("2001:db8:20::7".parse().unwrap(), "imaging"));
        assert!(!e.covers("2001:db8:20::8".parse().unwrap(), "imaging"));
        assert!(e.covers("198.18.21.10".parse().unwrap(), "pacs"));
        assert!(!e.covers("198.18.20.10".parse().unwrap(), "imaging"));
    }
}
