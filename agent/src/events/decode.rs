//! Turning a kernel [`FlowEvent`] into a [`FlowRecord`] with names resolved.
use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use ward_common::{addr_to_bytes, direction, family, FlowEvent, Reason, Verdict, NO_RULE};

use super::record::*;
use crate::state::PolicyNames;

/// Converts `bpf_ktime_get_ns` (CLOCK_MONOTONIC) readings to wall-clock time.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    /// Wall-clock time at monotonic zero.
    boot: SystemTime,
}

impl Clock {
    /// Reads both clocks now.
    pub fn new() -> Self {
        Clock {
            boot: SystemTime::now() - crate::clock::monotonic_now(),
        }
    }

    /// A clock whose monotonic zero is `boot` (tests).
    #[cfg(test)]
    pub(super) fn booted_at(boot: SystemTime) -> Self {
        Clock { boot }
    }

    /// Wall-clock time of a monotonic reading.
    pub fn wall(&self, mono_ns: u64) -> SystemTime {
        self.boot + Duration::from_nanos(mono_ns)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// Why a ring-buffer record is not a [`FlowEvent`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The record is not exactly one event long (a kernel program of another layout).
    #[error("event record of {0} bytes, expected {expected}", expected = size_of::<FlowEvent>())]
    Length(usize),
}

/// Reads the [`FlowEvent`] in one ring-buffer record, which must be exactly one event long.
pub fn event(bytes: &[u8]) -> Result<FlowEvent, DecodeError> {
    if bytes.len() != size_of::<FlowEvent>() {
        return Err(DecodeError::Length(bytes.len()));
    }
    // SAFETY: FlowEvent is plain old data (integers only, any bit pattern is valid) and
    // the length was checked; the read does not assume alignment.
    Ok(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<FlowEvent>()) })
}

/// Builds the record of `event`; `names` are those of the event's policy slot.
pub fn record(
    event: &FlowEvent,
    names: Option<&PolicyNames>,
    interface: String,
    clock: &Clock,
) -> FlowRecord {
    let verdict = Verdict::from_code(u32::from(event.verdict)).unwrap_or(Verdict::Deny);
    let reason = Reason::from_code(event.reason).map_or("unknown", Reason::name);
    let (activity_id, severity_id, action_id, disposition_id, disposition) = match verdict {
        Verdict::Allow => (1, 1, 1, 1, "Allowed"),
        Verdict::Deny => (5, 3, 2, 2, "Blocked"),
        Verdict::Audit => (6, 1, 1, 17, "Logged"),
    };
    let zone = |id: u32| names.map_or_else(|| format!("zone#{id}"), |n| n.zone(id));
    let known = event.family != 0;
    let has_ports = matches!(event.ip_proto, 6 | 17);
    let endpoint = |addr, port, zone_id| Endpoint {
        ip: known.then(|| ip(event.family, addr)),
        port: has_ports.then_some(port),
        zone: if known { zone(zone_id) } else { String::new() },
    };
    let inbound = event.direction == direction::INGRESS;
    let time = clock
        .wall(event.time_ns)
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    FlowRecord {
        class_uid: OCSF_CLASS_NETWORK_ACTIVITY,
        category_uid: OCSF_CATEGORY_NETWORK,
        activity_id,
        type_uid: OCSF_CLASS_NETWORK_ACTIVITY * 100 + activity_id,
        time,
        severity_id,
        finding_info: None,
        action_id,
        action: if action_id == 1 { "Allowed" } else { "Denied" }.into(),
        disposition_id,
        disposition: disposition.into(),
        src_endpoint: endpoint(event.src, event.sport, event.src_zone),
        dst_endpoint: endpoint(event.dst, event.dport, event.dst_zone),
        connection_info: ConnectionInfo {
            protocol_num: event.ip_proto,
            protocol_name: protocol_name(event.ip_proto),
            protocol_ver_id: event.family,
            direction_id: if inbound { 1 } else { 2 },
            direction: if inbound { "Inbound" } else { "Outbound" }.into(),
        },
        traffic: Traffic {
            bytes: u64::from(event.bytes),
            packets: 1,
        },
        firewall_rule: (event.rule_id != NO_RULE).then(|| firewall_rule(event.rule_id, names)),
        // Stamped by the reader.
        device: Device::default(),
        metadata: Metadata::ward(),
        unmapped: Unmapped {
            ward: WardFields {
                verdict: verdict.name().into(),
                reason: reason.into(),
                interface,
                hook: if inbound { "ingress" } else { "egress" }.into(),
                policy_generation: names.map_or(0, |n| n.generation),
                alert: None,
            },
        },
    }
}

fn ip(fam: u8, addr: ward_common::Addr) -> IpAddr {
    let b = addr_to_bytes(addr);
    if fam == family::V4 {
        IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
    } else {
        IpAddr::V6(Ipv6Addr::from(b))
    }
}

fn protocol_name(p: u8) -> String {
    match p {
        6 => "tcp".into(),
        17 => "udp".into(),
        1 => "icmp".into(),
        58 => "icmpv6".into(),
        other => other.to_string(),
    }
}

/// The rule of an event: a policy rule (`uid` its id, `name` its `file:line`) or a
/// break-glass grant (`breakglass-N`).
fn firewall_rule(rule_id: u32, names: Option<&PolicyNames>) -> FirewallRule {
    if rule_id == ward_common::FAILSAFE_RULE {
        return FirewallRule {
            uid: "failsafe".into(),
            name: "[failsafe] management access".into(),
        };
    }
    if ward_common::is_breakglass(rule_id) {
        let grant = rule_id & !ward_common::RULE_BREAKGLASS;
        return FirewallRule {
            uid: format!("breakglass-{grant}"),
            name: format!("break-glass grant {grant}"),
        };
    }
    FirewallRule {
        uid: rule_id.to_string(),
        name: names
            .and_then(|n| n.rule(rule_id))
            .unwrap_or("unknown")
            .to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_records_of_one_event_decode() {
        let size = size_of::<FlowEvent>();
        assert_eq!(event(&vec![0; size]), Ok(FlowEvent::default()));
        for len in [0, 1, size - 1, size + 1, 2 * size] {
            assert_eq!(event(&vec![0; len]), Err(DecodeError::Length(len)));
        }
    }

    #[test]
    fn a_denied_tcp_event_maps_onto_ocsf() {
        let names = PolicyNames {
            generation: 3,
            hash: "h".into(),
            zones: vec!["world".into(), "billing".into(), "imaging".into()],
            rules: vec!["p.toml:4".into()],
        };
        let event = FlowEvent {
            time_ns: 5_000_000,
            src: ward_common::addr_from_bytes([
                198, 18, 20, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            ]),
            dst: ward_common::addr_from_bytes([
                198, 18, 23, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            ]),
            ifindex: 7,
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
        let r = record(
            &event,
            Some(&names),
            "eth0".into(),
            &Clock { boot: UNIX_EPOCH },
        );
        assert_eq!(
            (r.class_uid, r.activity_id, r.type_uid, r.time),
            (4001, 5, 400105, 5)
        );
        assert_eq!(
            (r.action.as_str(), r.disposition.as_str()),
            ("Denied", "Blocked")
        );
        assert_eq!(r.src_endpoint.ip, Some("198.18.20.10".parse().unwrap()));
        assert_eq!(
            (r.src_endpoint.port, r.src_endpoint.zone.as_str()),
            (Some(40000), "imaging")
        );
        assert_eq!(
            (r.dst_endpoint.port, r.dst_endpoint.zone.as_str()),
            (Some(443), "billing")
        );
        assert_eq!(r.connection_info.protocol_name, "tcp");
        assert_eq!(
            (r.verdict(), r.unmapped.ward.reason.as_str()),
            ("deny", "no-rule")
        );
        assert_eq!(r.firewall_rule, None);
        assert_eq!(r.unmapped.ward.policy_generation, 3);

        let allowed = FlowEvent {
            rule_id: 0,
            reason: Reason::AllowedByRule as u32,
            verdict: 0,
            ..event
        };
        let r = record(
            &allowed,
            Some(&names),
            "eth0".into(),
            &Clock { boot: UNIX_EPOCH },
        );
        assert_eq!(r.firewall_rule.unwrap().name, "p.toml:4");
        assert_eq!((r.activity_id, r.disposition_id), (1, 1));

        let breakglass = FlowEvent {
            rule_id: ward_common::RULE_BREAKGLASS | 3,
            ..allowed
        };
        let clock = Clock { boot: UNIX_EPOCH };
        let r = record(&breakglass, Some(&names), "eth0".into(), &clock);
        let rule = r.firewall_rule.unwrap();
        assert_eq!(
            (rule.uid.as_str(), rule.name.as_str()),
            ("breakglass-3", "break-glass grant 3")
        );
    }

    #[test]
    fn the_new_reasons_and_the_failsafe_rule_are_named() {
        let clock = Clock { boot: UNIX_EPOCH };
        for (reason, name, verdict) in [
            (Reason::Spoofed, "spoofed", Verdict::Deny),
            (Reason::FlowLimit, "flow-limit", Verdict::Deny),
            (Reason::NotOnLink, "not-on-link", Verdict::Deny),
            (Reason::BuiltIn, "built-in", Verdict::Allow),
        ] {
            let event = FlowEvent {
                reason: reason as u32,
                verdict: verdict as u8,
                rule_id: NO_RULE,
                ..FlowEvent::default()
            };
            let r = record(&event, None, "eth0".into(), &clock);
            assert_eq!(r.unmapped.ward.reason, name);
            assert_eq!(r.verdict(), verdict.name());
        }
        let failsafe = FlowEvent {
            reason: Reason::Failsafe as u32,
            rule_id: ward_common::FAILSAFE_RULE,
            ..FlowEvent::default()
        };
        let rule = record(&failsafe, None, "eth0".into(), &clock)
            .firewall_rule
            .unwrap();
        assert_eq!(
            (rule.uid.as_str(), rule.name.as_str()),
            ("failsafe", "[failsafe] management access")
        );
    }
}
