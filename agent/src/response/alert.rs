//! Alert records: quarantines, releases, exempted detections, tampering, the policies
//! applied and refused, and break-glass grants, in the event stream as OCSF
//! Detection Findings (class 2004).
use std::{
    net::IpAddr,
    time::{SystemTime, UNIX_EPOCH},
};

use rand_core::RngCore as _;

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

    /// The finding's title (OCSF `finding_info.title`).
    pub fn title(self) -> &'static str {
        match self {
            AlertKind::Quarantine => "Host quarantined",
            AlertKind::Release => "Quarantine ended",
            AlertKind::Exempt => "Scan from a host never quarantined",
            AlertKind::Limited => "Scan past the automatic quarantine rate limit",
            AlertKind::QuarantineFailed => "Quarantine failed",
            AlertKind::Tamper => "Enforcement tampered with",
            AlertKind::PolicyApplied => "Policy applied",
            AlertKind::PolicyRefused => "Policy refused",
            AlertKind::BreakglassStart => "Break-glass grant started",
            AlertKind::BreakglassEnd => "Break-glass grant ended",
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
    base(kind, src, alert, generation)
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
    Endpoint::default()
}

/// Milliseconds since the Unix epoch.
fn ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn base(kind: AlertKind, src: Endpoint, alert: AlertInfo, generation: u64) -> FlowRecord {
    let mut uid = [0u8; 16];
    rand_core::OsRng.fill_bytes(&mut uid);
    let uid: String = uid.iter().map(|b| format!("{b:02x}")).collect();
    finding(kind, src, alert, generation, SystemTime::now(), uid)
}

/// The Detection Finding (activity 1 Create) of an alert made at `now`, `uid` its id.
/// Only a quarantine blocked something: it alone carries an action (2 Denied,
/// disposition 2 Blocked); the others carry none.
fn finding(
    kind: AlertKind,
    src: Endpoint,
    alert: AlertInfo,
    generation: u64,
    now: SystemTime,
    uid: String,
) -> FlowRecord {
    let blocked = kind == AlertKind::Quarantine;
    FlowRecord {
        class_uid: OCSF_CLASS_DETECTION_FINDING,
        category_uid: OCSF_CATEGORY_FINDINGS,
        activity_id: 1,
        type_uid: OCSF_CLASS_DETECTION_FINDING * 100 + 1,
        time: ms(now),
        severity_id: match kind {
            AlertKind::Release | AlertKind::PolicyApplied | AlertKind::BreakglassEnd => 1,
            _ => 4,
        },
        finding_info: Some(FindingInfo {
            uid,
            title: kind.title().into(),
            types: vec![kind.name().into()],
            desc: alert.reason.clone(),
        }),
        action_id: if blocked { 2 } else { 0 },
        action: if blocked { "Denied" } else { "" }.into(),
        disposition_id: if blocked { 2 } else { 0 },
        disposition: if blocked { "Blocked" } else { "" }.into(),
        src_endpoint: src,
        dst_endpoint: Endpoint::default(),
        connection_info: ConnectionInfo::default(),
        traffic: Traffic::default(),
        firewall_rule: None,
        // Stamped by the event reader.
        device: Device::default(),
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms)
    }

    fn stamped(mut r: FlowRecord) -> FlowRecord {
        r.device = Device::new(
            "ward-gw".into(),
            vec![("gw-imaging".into(), "198.18.20.1".parse().unwrap())],
        );
        r
    }

    #[test]
    fn a_tamper_alert_is_a_detection_finding_without_an_action() {
        let alert = AlertInfo {
            since: 1_795_540_686_123,
            ..agent_alert(
                AlertKind::Tamper,
                "the ingress program was detached or replaced (found no program); re-attached"
                    .into(),
            )
        };
        let mut r = finding(
            AlertKind::Tamper,
            nobody(),
            alert,
            2,
            at(1_795_540_686_123),
            "0f".repeat(16),
        );
        r.unmapped.ward.interface = "gw-imaging".into();
        r.unmapped.ward.hook = "ingress".into();
        let version = env!("CARGO_PKG_VERSION");
        assert_eq!(
            serde_json::to_string(&stamped(r)).unwrap(),
            concat!(
                r#"{"class_uid":2004,"category_uid":2,"activity_id":1,"type_uid":200401,"time":1795540686123,"severity_id":4,"#,
                r#""finding_info":{"uid":"0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f","title":"Enforcement tampered with","types":["tamper"],"#,
                r#""desc":"the ingress program was detached or replaced (found no program); re-attached"},"#,
                r#""device":{"hostname":"ward-gw","ip":"198.18.20.1","type_id":0,"type":"Unknown","network_interfaces":["#,
                r#"{"name":"gw-imaging","ip":"198.18.20.1","type_id":0,"type":"Unknown"}]},"#,
                r#""metadata":{"version":"1.3.0","product":{"name":"Ward","vendor_name":"Ward","version":"VERSION"}},"#,
                r#""unmapped":{"ward":{"verdict":"alert","reason":"tamper","interface":"gw-imaging","hook":"ingress","policy_generation":2,"#,
                r#""alert":{"action":"tamper","reason":"the ingress program was detached or replaced (found no program); re-attached","#,
                r#""by":"ward","since":1795540686123}}}}"#
            )
            .replace("VERSION", version)
        );
    }

    #[test]
    fn a_quarantine_is_a_blocking_finding_with_the_host_as_evidence() {
        let host = Endpoint {
            ip: Some("198.18.20.10".parse().unwrap()),
            port: None,
            zone: "imaging".into(),
        };
        let alert = AlertInfo {
            action: "quarantine".into(),
            reason: "scan: 5 destinations in 5s".into(),
            by: "auto".into(),
            since: 1_795_540_686_123,
            expires: Some(1_795_544_286_123),
            policy: None,
            breakglass: None,
        };
        let r = stamped(finding(
            AlertKind::Quarantine,
            host.clone(),
            alert,
            1,
            at(1_795_540_686_123),
            "ab".repeat(16),
        ));
        let line = serde_json::to_string(&r).unwrap();
        let head = concat!(
            r#"{"class_uid":2004,"category_uid":2,"activity_id":1,"type_uid":200401,"time":1795540686123,"severity_id":4,"#,
            r#""finding_info":{"uid":"abababababababababababababababab","title":"Host quarantined","types":["quarantine"],"#,
            r#""desc":"scan: 5 destinations in 5s"},"#,
            r#""action_id":2,"action":"Denied","disposition_id":2,"disposition":"Blocked","#,
            r#""evidences":[{"src_endpoint":{"ip":"198.18.20.10","zone":"imaging"}}],"device":{"#
        );
        assert!(line.starts_with(head), "{line}");
        // Read back, the evidence is the record's source again.
        let back: FlowRecord = serde_json::from_str(&line).unwrap();
        assert_eq!(
            (&back.src_endpoint, &back.dst_endpoint),
            (&host, &Endpoint::default())
        );
        assert_eq!(back, r);
    }

    #[test]
    fn only_a_quarantine_carries_an_action() {
        for kind in [
            AlertKind::Release,
            AlertKind::Exempt,
            AlertKind::Limited,
            AlertKind::QuarantineFailed,
            AlertKind::Tamper,
            AlertKind::PolicyApplied,
            AlertKind::PolicyRefused,
            AlertKind::BreakglassStart,
            AlertKind::BreakglassEnd,
        ] {
            let r = base(kind, nobody(), agent_alert(kind, "why".into()), 1);
            let v = serde_json::to_value(&r).unwrap();
            for key in ["action_id", "action", "disposition_id", "disposition"] {
                assert_eq!(v.get(key), None, "{kind:?}: {v}");
            }
            assert_eq!(
                (v["class_uid"].as_u64(), v["activity_id"].as_u64()),
                (Some(2004), Some(1))
            );
            assert_eq!(r.finding_info.unwrap().uid.len(), 32);
        }
    }
}
