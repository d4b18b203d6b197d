//! The record of one event: a flow event is an OCSF Network Activity (class 4001)
//! event, an alert an OCSF Detection Finding (class 2004); both carry the host's
//! identity (`device`) and Ward's own fields under `unmapped.ward`. The JSON form of
//! each class is in [`super::wire`]; the schema is in `docs/events.md`.
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

pub use super::device::{Device, NetworkInterface};

/// OCSF Network Activity class.
pub const OCSF_CLASS_NETWORK_ACTIVITY: u32 = 4001;
/// OCSF Network Activity category.
pub const OCSF_CATEGORY_NETWORK: u32 = 4;
/// OCSF Detection Finding class (alerts).
pub const OCSF_CLASS_DETECTION_FINDING: u32 = 2004;
/// OCSF Findings category.
pub const OCSF_CATEGORY_FINDINGS: u32 = 2;
/// OCSF schema version the records follow.
pub const OCSF_VERSION: &str = "1.3.0";

/// One event as written to the event log and sent to `ward flows`. Its JSON form
/// depends on its class ([`super::wire`]): an alert's endpoints are its evidence.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(into = "super::wire::Wire", from = "super::wire::Wire")]
pub struct FlowRecord {
    /// 4001 (Network Activity) for a flow event, 2004 (Detection Finding) for an alert.
    pub class_uid: u32,
    /// 4 (Network) for a flow event, 2 (Findings) for an alert.
    pub category_uid: u32,
    /// 1 Open (a new allowed flow), 5 Refuse (a denied packet), 6 Traffic (audited);
    /// alerts: 1 Create.
    pub activity_id: u32,
    /// `class_uid * 100 + activity_id`.
    pub type_uid: u32,
    /// Milliseconds since the Unix epoch.
    pub time: i64,
    /// 1 Informational (allowed, audited), 3 Medium (denied); alerts 1 or 4 (High).
    pub severity_id: u32,
    /// What an alert found (alerts only).
    pub finding_info: Option<FindingInfo>,
    /// 1 Allowed, 2 Denied; 0 (not written) for an alert that blocked nothing.
    pub action_id: u32,
    /// `Allowed` or `Denied` (empty with `action_id` 0).
    pub action: String,
    /// 1 Allowed, 2 Blocked, 17 Logged (audited); 0 (not written) with `action_id` 0.
    pub disposition_id: u32,
    /// `Allowed`, `Blocked` or `Logged` (empty with `disposition_id` 0).
    pub disposition: String,
    /// The packet's source.
    pub src_endpoint: Endpoint,
    /// The packet's destination.
    pub dst_endpoint: Endpoint,
    /// Protocol and direction.
    pub connection_info: ConnectionInfo,
    /// The packet's size.
    pub traffic: Traffic,
    /// The rule that allowed the flow, when one did.
    pub firewall_rule: Option<FirewallRule>,
    /// The host that wrote the record (stamped by the event reader).
    pub device: Device,
    /// Producer.
    pub metadata: Metadata,
    /// Ward's fields without an OCSF place.
    pub unmapped: Unmapped,
}

/// An OCSF network endpoint, with the Ward zone the address belongs to.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Endpoint {
    /// Address (absent when the packet was too malformed to tell).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ip: Option<IpAddr>,
    /// Port (ICMP echo: identifier); absent for protocols without ports.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub port: Option<u16>,
    /// Ward zone of the address (OCSF `zone`).
    pub zone: String,
}

/// OCSF `connection_info`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ConnectionInfo {
    /// IP protocol number.
    pub protocol_num: u8,
    /// `tcp`, `udp`, `icmp`, `icmpv6`, or the number.
    pub protocol_name: String,
    /// 4 or 6 (0 when unknown).
    pub protocol_ver_id: u8,
    /// 1 Inbound (XDP ingress), 2 Outbound (TC egress).
    pub direction_id: u8,
    /// `Inbound` or `Outbound`.
    pub direction: String,
}

/// OCSF `traffic`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Traffic {
    /// Frame length.
    pub bytes: u64,
    /// Always 1: events are per packet.
    pub packets: u64,
}

/// OCSF `finding_info` of an alert.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FindingInfo {
    /// Unique id of this finding (random, 32 hex digits).
    pub uid: String,
    /// What was found, in words (`Host quarantined`, `Enforcement tampered with`…).
    pub title: String,
    /// The alert's action (`quarantine`, `tamper`…), as `unmapped.ward.alert.action`.
    pub types: Vec<String>,
    /// Why: `unmapped.ward.alert.reason`.
    pub desc: String,
}

impl Endpoint {
    /// Whether nothing is known of it (no address, port or zone).
    pub fn is_empty(&self) -> bool {
        self.ip.is_none() && self.port.is_none() && self.zone.is_empty()
    }
}

/// OCSF `firewall_rule`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FirewallRule {
    /// Rule id (its index in the merged policy), or `breakglass-N` for grant N.
    pub uid: String,
    /// Where the rule is written (`file:line`), or `break-glass grant N`.
    pub name: String,
}

/// OCSF `metadata`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Metadata {
    /// OCSF schema version.
    pub version: String,
    /// The producer.
    pub product: Product,
}

impl Metadata {
    /// This build of Ward, on the OCSF schema version its records follow.
    pub fn ward() -> Self {
        Metadata {
            version: OCSF_VERSION.into(),
            product: Product {
                name: "Ward".into(),
                vendor_name: "Ward".into(),
                version: env!("CARGO_PKG_VERSION").into(),
            },
        }
    }
}

/// OCSF `metadata.product`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Product {
    /// `Ward`.
    pub name: String,
    /// `Ward`.
    pub vendor_name: String,
    /// Ward's version.
    pub version: String,
}

/// Fields without an OCSF place.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Unmapped {
    /// Ward's own view of the event.
    pub ward: WardFields,
}

/// Ward's verdict details.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct WardFields {
    /// `allow`, `deny` or `audit`.
    pub verdict: String,
    /// Typed reason: `rule`, `no-rule`, `malformed`, `policy-revoked`, …
    pub reason: String,
    /// Interface the hook runs on.
    pub interface: String,
    /// `ingress` or `egress`.
    pub hook: String,
    /// Generation of the policy that judged the packet.
    pub policy_generation: u64,
    /// For verdict `alert`: what the response did.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub alert: Option<AlertInfo>,
}

/// What an alert is about (`unmapped.ward.alert`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AlertInfo {
    /// `quarantine`, `release`, `exempt`, `quarantine-limited`, `quarantine-failed`,
    /// `tamper`, `policy-applied`, `policy-refused`, `breakglass-start` or
    /// `breakglass-end`.
    pub action: String,
    /// Why.
    pub reason: String,
    /// Who or what acted (`auto`, the requester, or `ward` for tampering).
    pub by: String,
    /// When the quarantine started, ms since the epoch.
    pub since: i64,
    /// When it ends by itself, ms since the epoch.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub expires: Option<i64>,
    /// For `policy-applied`: the policy now in force.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub policy: Option<PolicyInfo>,
    /// For `breakglass-start` and `breakglass-end`: the grant.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub breakglass: Option<crate::breakglass::Grant>,
}

/// The policy in force (`unmapped.ward.alert.policy`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PolicyInfo {
    /// Hash (sha256) of the compiled policy.
    pub hash: String,
    /// The signed bundle it came from; absent for an unsigned policy.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub bundle: Option<crate::distribution::BundleInfo>,
}

impl FlowRecord {
    /// `allow`, `deny` or `audit`.
    pub fn verdict(&self) -> &str {
        &self.unmapped.ward.verdict
    }

    /// Whether either endpoint is in zone `name`.
    pub fn touches_zone(&self, name: &str) -> bool {
        self.src_endpoint.zone == name || self.dst_endpoint.zone == name
    }
}
