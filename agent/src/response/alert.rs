//! Alert records: quarantines, releases, exempted detections and tampering, in the
//! event stream.
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
    /// A hook lost the agent's program (detached or replaced by someone else).
    Tamper,
}

impl AlertKind {
    /// `quarantine`, `release`, `exempt` or `tamper`.
    pub fn name(self) -> &'static str {
        match self {
            AlertKind::Quarantine => "quarantine",
            AlertKind::Release => "release",
            AlertKind::Exempt => "exempt",
            AlertKind::Tamper => "tamper",
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
    let src = Endpoint {
        ip: Some(ip),
        port: None,
        zone: zone.into(),
    };
    let alert = AlertInfo {
        action: kind.name().into(),
        reason: entry.reason.clone(),
        by: entry.by.clone(),
        since: ms(entry.since),
        expires: entry.expires.map(ms),
    };
    let mut r = base(kind, src, alert, generation);
    r.connection_info.protocol_ver_id = if ip.is_ipv4() { 4 } else { 6 };
    r
}

/// A tamper alert: `hook` (`ingress` or `egress`) of `interface` no longer ran the
/// agent's program; `reason` says what was found and what the agent did.
pub fn tamper(interface: &str, hook: &str, reason: String, generation: u64) -> FlowRecord {
    let src = Endpoint {
        ip: None,
        port: None,
        zone: String::new(),
    };
    let alert = AlertInfo {
        action: AlertKind::Tamper.name().into(),
        reason,
        by: "ward".into(),
        since: ms(SystemTime::now()),
        expires: None,
    };
    let mut r = base(AlertKind::Tamper, src, alert, generation);
    r.unmapped.ward.interface = interface.into();
    r.unmapped.ward.hook = hook.into();
    r
}

/// Milliseconds since the Unix epoch.
fn ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn base(kind: AlertKind, src: Endpoint, alert: AlertInfo, generation: u64) -> FlowRecord {
    let blocked = kind == AlertKind::Quarantine;
    FlowRecord {
        class_uid: OCSF_CLASS_NETWORK_ACTIVITY,
        category_uid: OCSF_CATEGORY_NETWORK,
        activity_id: 99,
        type_uid: OCSF_CLASS_NETWORK_ACTIVITY * 100 + 99,
        time: ms(SystemTime::now()),
        severity_id: if kind == AlertKind::Release { 1 } else { 4 },
        action_id: if blocked { 2 } else { 1 },
        action: if blocked { "Denied" } else { "Allowed" }.into(),
        disposition_id: if blocked { 2 } else { 1 },
        disposition: if blocked { "Blocked" } else { "Allowed" }.into(),
        src_endpoint: src,
        dst_endpoint: Endpoint {
            ip: None,
            port: None,
            zone: String::new(),
        },
        connection_info: ConnectionInfo {
            protocol_num: 0,
            protocol_name: String::new(),
            protocol_ver_id: 0,
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
                alert: Some(alert),
            },
        },
    }
}
