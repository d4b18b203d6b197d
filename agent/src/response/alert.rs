//! Alert records: quarantines, releases, exempted detections, tampering, the policies
//! applied and refused, and break-glass grants, in the event stream.
use std::{
    net::IpAddr,
    time::{SystemTime, UNIX_EPOCH},
};

use crate::{
    breakglass::Grant, dataplane::QuarantineEntry, distribution::BundleInfo, events::record::*,
};

/// What an alert is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertKind {
    /// A host was quarantined.
    Quarantine,
    /// A quarantine ended (released or expired).
    Release,
    /// A scan was detected from a host that is never quarantined automatically (or
    /// while `auto_quarantine` is off).
    Exempt,
    /// A scan was detected past `max_auto_quarantines` a minute: not quarantined.
    Limited,
    /// A quarantine the kernel table could not take (full): not quarantined.
    QuarantineFailed,
    /// A hook lost the agent's program (detached or replaced by someone else).
    Tamper,
    /// A policy was put in force (or found in force at the start).
    PolicyApplied,
    /// A policy was refused (invalid, unsigned, badly signed, older): the one in force stays.
    PolicyRefused,
    /// A break-glass grant started.
    BreakglassStart,
    /// A break-glass grant ended (expired, ended by hand, or its zone left the policy).
    BreakglassEnd,
}

impl AlertKind {
    /// `quarantine`, `release`, `exempt`, `quarantine-limited`, `quarantine-failed`,
    /// `tamper`, `policy-applied`, `policy-refused`, `breakglass-start` or
    /// `breakglass-end`.
    pub fn name(self) -> &'static str {
        match self {
            AlertKind::Quarantine => "quarantine",
            AlertKind::Release => "release",
            AlertKind::Exempt => "exempt",
            AlertKind::Limited => "quarantine-limited",
            AlertKind::QuarantineFailed => "quarantine-failed",
            AlertKind::Tamper => "tamper",
            AlertKind::PolicyApplied => "policy-applied",
            AlertKind::PolicyRefused => "policy-refused",
            AlertKind::BreakglassStart => "breakglass-start",
            AlertKind::BreakglassEnd => "breakglass-end",
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
        policy: None,
        breakglass: None,
    };
    let mut r = base(kind, src, alert, generation);
    r.connection_info.protocol_ver_id = if ip.is_ipv4() { 4 } else { 6 };
    r
}

/// A tamper alert: `hook` (`ingress` or `egress`) of `interface` no longer ran the
/// agent's program; `reason` says what was found and what the agent did.
pub fn tamper(interface: &str, hook: &str, reason: String, generation: u64) -> FlowRecord {
    let alert = agent_alert(AlertKind::Tamper, reason);
    let mut r = base(AlertKind::Tamper, nobody(), alert, generation);
    r.unmapped.ward.interface = interface.into();
    r.unmapped.ward.hook = hook.into();
    r
}

/// The policy `hash` is in force as `generation`, from `bundle` (absent: unsigned):
/// the record that proves which policy a host enforces.
pub fn policy_applied(hash: &str, generation: u64, bundle: Option<BundleInfo>) -> FlowRecord {
    let reason = match &bundle {
        Some(b) => format!(
            "policy {hash} in force as generation {generation}: bundle version {} signed by key {} (sha256 {})",
            b.version, b.key_id, b.digest
        ),
        None => format!("policy {hash} in force as generation {generation}: unsigned"),
    };
    let mut alert = agent_alert(AlertKind::PolicyApplied, reason);
    alert.policy = Some(PolicyInfo {
        hash: hash.to_owned(),
        bundle,
    });
    base(AlertKind::PolicyApplied, nobody(), alert, generation)
}

/// A policy was refused for `reason`; `generation` stays in force.
pub fn policy_refused(reason: String, generation: u64) -> FlowRecord {
    let alert = agent_alert(AlertKind::PolicyRefused, reason);
    base(AlertKind::PolicyRefused, nobody(), alert, generation)
}

/// A break-glass grant started (`BreakglassStart`, `why` its reason) or ended
/// (`BreakglassEnd`, `why` how), `by` whom: from its source zone to its destination zone.
pub fn breakglass(
    kind: AlertKind,
    grant: &Grant,
    why: String,
    by: &str,
    generation: u64,
) -> FlowRecord {
    let zone = |name: &str| Endpoint {
        ip: None,
        port: None,
        zone: name.into(),
    };
    let alert = AlertInfo {
        action: kind.name().into(),
        reason: why,
        by: by.into(),
        since: ms(grant.since),
        expires: Some(ms(grant.expires)),
        policy: None,
        breakglass: Some(grant.clone()),
    };
    let mut r = base(kind, zone(&grant.from), alert, generation);
    r.dst_endpoint = zone(&grant.to);
    if let [(proto, port)] = grant.ports()[..] {
        r.dst_endpoint.port = (proto != ward_common::proto::ICMP).then_some(port);
    }
    r
}

/// An alert about the agent itself, now.
fn agent_alert(kind: AlertKind, reason: String) -> AlertInfo {
    AlertInfo {
        action: kind.name().into(),
        reason,
        by: "ward".into(),
        since: ms(SystemTime::now()),
        expires: None,
        policy: None,
        breakglass: None,
    }
}

/// The endpoint of an alert about no address.
fn nobody() -> Endpoint {
    Endpoint {
        ip: None,
        port: None,
        zone: String::new(),
    }
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
        severity_id: match kind {
            AlertKind::Release | AlertKind::PolicyApplied | AlertKind::BreakglassEnd => 1,
            _ => 4,
        },
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
