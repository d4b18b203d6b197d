//! The JSON form of a [`FlowRecord`], by class: a flow event (OCSF Network Activity)
//! has its endpoints, `connection_info` and `traffic` at the top; an alert (OCSF
//! Detection Finding) has `finding_info`, its endpoints as its evidence
//! (`evidences[0]`), and no `action` unless it blocked something.
use serde::{Deserialize, Serialize};

use super::record::*;

/// A record as it is written and read.
#[derive(Serialize, Deserialize)]
pub(super) struct Wire {
    class_uid: u32,
    category_uid: u32,
    activity_id: u32,
    type_uid: u32,
    time: i64,
    severity_id: u32,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    finding_info: Option<FindingInfo>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    action_id: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    disposition_id: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    disposition: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    src_endpoint: Option<Endpoint>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    dst_endpoint: Option<Endpoint>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    connection_info: Option<ConnectionInfo>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    traffic: Option<Traffic>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    evidences: Vec<Evidence>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    firewall_rule: Option<FirewallRule>,
    #[serde(default)]
    device: Device,
    metadata: Metadata,
    unmapped: Unmapped,
}

/// OCSF `evidences[]` of a finding: the endpoints concerned.
#[derive(Serialize, Deserialize)]
struct Evidence {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    src_endpoint: Option<Endpoint>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    dst_endpoint: Option<Endpoint>,
}

impl From<FlowRecord> for Wire {
    fn from(r: FlowRecord) -> Self {
        let finding = r.class_uid == OCSF_CLASS_DETECTION_FINDING;
        let known = |e: Endpoint| (!e.is_empty()).then_some(e);
        let (src_endpoint, dst_endpoint, connection_info, traffic, evidences) = match finding {
            true => {
                let evidence = Evidence {
                    src_endpoint: known(r.src_endpoint),
                    dst_endpoint: known(r.dst_endpoint),
                };
                let any = evidence.src_endpoint.is_some() || evidence.dst_endpoint.is_some();
                (
                    None,
                    None,
                    None,
                    None,
                    any.then_some(evidence).into_iter().collect(),
                )
            }
            false => (
                Some(r.src_endpoint),
                Some(r.dst_endpoint),
                Some(r.connection_info),
                Some(r.traffic),
                Vec::new(),
            ),
        };
        let acted = r.action_id != 0;
        Wire {
            class_uid: r.class_uid,
            category_uid: r.category_uid,
            activity_id: r.activity_id,
            type_uid: r.type_uid,
            time: r.time,
            severity_id: r.severity_id,
            finding_info: r.finding_info,
            action_id: acted.then_some(r.action_id),
            action: acted.then_some(r.action),
            disposition_id: (r.disposition_id != 0).then_some(r.disposition_id),
            disposition: (r.disposition_id != 0).then_some(r.disposition),
            src_endpoint,
            dst_endpoint,
            connection_info,
            traffic,
            evidences,
            firewall_rule: r.firewall_rule,
            device: r.device,
            metadata: r.metadata,
            unmapped: r.unmapped,
        }
    }
}

impl From<Wire> for FlowRecord {
    fn from(w: Wire) -> Self {
        let evidence = w.evidences.into_iter().next();
        let (ev_src, ev_dst) = evidence.map_or((None, None), |e| (e.src_endpoint, e.dst_endpoint));
        FlowRecord {
            class_uid: w.class_uid,
            category_uid: w.category_uid,
            activity_id: w.activity_id,
            type_uid: w.type_uid,
            time: w.time,
            severity_id: w.severity_id,
            finding_info: w.finding_info,
            action_id: w.action_id.unwrap_or(0),
            action: w.action.unwrap_or_default(),
            disposition_id: w.disposition_id.unwrap_or(0),
            disposition: w.disposition.unwrap_or_default(),
            src_endpoint: w.src_endpoint.or(ev_src).unwrap_or_default(),
            dst_endpoint: w.dst_endpoint.or(ev_dst).unwrap_or_default(),
            connection_info: w.connection_info.unwrap_or_default(),
            traffic: w.traffic.unwrap_or_default(),
            firewall_rule: w.firewall_rule,
            device: w.device,
            metadata: w.metadata,
            unmapped: w.unmapped,
        }
    }
}
