//! The JSON of records, exactly: a flow event (OCSF Network Activity) stamped with the
//! host's identity, and records read back from their JSON.
use std::time::UNIX_EPOCH;

use ward_common::{direction, family, FlowEvent, Reason, Verdict, NO_RULE};

use super::{decode, record::*};
use crate::state::PolicyNames;

pub(super) fn denied() -> FlowRecord {
    let names = PolicyNames {
        generation: 3,
        hash: "h".into(),
        zones: vec!["world".into(), "billing".into(), "imaging".into()],
        rules: vec!["p.toml:4".into()],
    };
    let addr =
        |a, b, c, d| ward_common::addr_from_bytes([a, b, c, d, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    let event = FlowEvent {
        time_ns: 1_795_540_686_123_000_000,
        src: addr(198, 18, 20, 10),
        dst: addr(198, 18, 23, 10),
        src_zone: 2,
        dst_zone: 1,
        rule_id: NO_RULE,
        reason: Reason::NoRule as u32,
        bytes: 74,
        sport: 40000,
        dport: 443,
        ip_proto: 6,
        family: family::V4,
        direction: direction::INGRESS,
        verdict: Verdict::Deny as u8,
        ..FlowEvent::default()
    };
    let clock = decode::Clock::booted_at(UNIX_EPOCH);
    let mut r = decode::record(&event, Some(&names), "gw-imaging".into(), &clock);
    r.device = Device::new(
        "ward-gw".into(),
        vec![
            ("gw-imaging".into(), "198.18.20.1".parse().unwrap()),
            ("gw-imaging".into(), "2001:db8:20::1".parse().unwrap()),
        ],
    );
    r
}

#[test]
fn a_flow_event_is_network_activity_with_the_device() {
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        serde_json::to_string(&denied()).unwrap(),
        concat!(
            r#"{"class_uid":4001,"category_uid":4,"activity_id":5,"type_uid":400105,"time":1795540686123,"#,
            r#""severity_id":3,"action_id":2,"action":"Denied","disposition_id":2,"disposition":"Blocked","#,
            r#""src_endpoint":{"ip":"198.18.20.10","port":40000,"zone":"imaging"},"#,
            r#""dst_endpoint":{"ip":"198.18.23.10","port":443,"zone":"billing"},"#,
            r#""connection_info":{"protocol_num":6,"protocol_name":"tcp","protocol_ver_id":4,"direction_id":1,"direction":"Inbound"},"#,
            r#""traffic":{"bytes":74,"packets":1},"#,
            r#""device":{"hostname":"ward-gw","ip":"198.18.20.1","type_id":0,"type":"Unknown","network_interfaces":["#,
            r#"{"name":"gw-imaging","ip":"198.18.20.1","type_id":0,"type":"Unknown"},"#,
            r#"{"name":"gw-imaging","ip":"2001:db8:20::1","type_id":0,"type":"Unknown"}]},"#,
            r#""metadata":{"version":"1.3.0","product":{"name":"Ward","vendor_name":"Ward","version":"VERSION"}},"#,
            r#""unmapped":{"ward":{"verdict":"deny","reason":"no-rule","interface":"gw-imaging","hook":"ingress","policy_generation":3}}}"#
        )
        .replace("VERSION", version)
    );
}

#[test]
fn records_read_back_as_written() {
    let record = denied();
    let line = serde_json::to_string(&record).unwrap();
    assert_eq!(serde_json::from_str::<FlowRecord>(&line).unwrap(), record);
}
