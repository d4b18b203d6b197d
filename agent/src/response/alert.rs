//! Alert records: quarantines, releases and exempted detections, in the event stream.
use std::{
    net::IpAddr,
    time::{SystemTime, UNIX_EPOCH},
};

use crate::{dataplane::QuarantineEntry, events::record::*};

/// What an alert is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertKind {
    /// A host was quarantined.
    Quarantine,
    /// A quarantine ended (released or expired).
    Release,
    /// A scan was detected from a host that is never quarantined.
    Exempt,
}

impl AlertKind {
    /// `quarantine`, `release` or `exempt`.
    pub fn name(self) -> &'static str {
        match self {
            AlertKind::Quarantine => "quarantine",
            AlertKind::Release => "release",
            AlertKind::Exempt => "exempt",
        }
    }
}

/// An alert about `ip` (in `zone`) as a record of the event stream: verdict `alert`,
/// the details under `unmapped.ward.alert`.
pub fn record(
    kind: AlertKind,
    ip: IpAddr,
    zone: &str,
    entry: &QuarantineEntry,
    generation: u64,
) -> FlowRecord {
    let ms = |t: SystemTime| {
        t.duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    };
    FlowRecord {
        class_uid: OCSF_CLASS_NETWORK_ACTIVITY,
        category_uid: OCSF_CATEGORY_NETWORK,
        activity_id: 99,
        type_uid: OCSF_CLASS_NETWORK_ACTIVITY * 100 + 99,
        time: ms(SystemTime::now()),
        severity_id: if kind == AlertKind::Release { 1 } else { 4 },
        action_id: if kind == AlertKind::Quarantine { 2 } else { 1 },
        action: if kind == AlertKind::Quarantine {
            "Denied"
        } else {
            "Allowed"
        }
        .into(),
        disposition_id: if kind == AlertKind::Quarantine { 2 } else { 1 },
        disposition: if kind == AlertKind::Quarantine {
            "Blocked"
        } else {
            "Allowed"
        }
        .into(),
        src_endpoint: Endpoint {
            ip: Some(ip),
            port: None,
            zone: zone.into(),
        },
        dst_endpoint: Endpoint {
            ip: None,
            port: None,
            zone: String::new(),
        },
        connection_info: ConnectionInfo {
            protocol_num: 0,
            protocol_name: String::new(),
            protocol_ver_id: if ip.is_ipv4() { 4 } else { 6 },
            direction_id: 0,
            direction: "Unknown".into(),
        },
        traffic: Traffic {
            bytes: 0,
            packets: 0,
        },
        firewall_rule: None,
        metadata: Metadata::ward(),
        unmapped: Unmapped {
            ward: WardFields {
                verdict: "alert".into(),
                reason: kind.name().into(),
                interface: String::new(),
                hook: String::new(),
                policy_generation: generation,
                alert: Some(AlertInfo {
                    action: kind.name().into(),
                    reason: entry.reason.clone(),
                    by: entry.by.clone(),
                    since: ms(entry.since),
                    expires: entry.expires.map(ms),
                }),
            },
        },
    }
}
