//! Which flow events `ward flows` wants, and the verdicts it names: the filter the
//! daemon applies to the live stream and the command applies to the event log's
//! history, the same for both.
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::events::FlowRecord;

/// Which flow events a `flows` request wants; absent fields match everything, the
/// fields given must all match.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FlowFilter {
    /// Only events with this verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<FlowVerdict>,
    /// Only events whose source or destination is in this zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// Only events whose source or destination address is in this prefix (an address
    /// is a one-host prefix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addr: Option<IpNet>,
    /// Only events whose source or destination port is this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

impl FlowFilter {
    /// Whether `record` passes the filter.
    pub fn matches(&self, record: &FlowRecord) -> bool {
        let ends = [&record.src_endpoint, &record.dst_endpoint];
        self.verdict.is_none_or(|v| record.verdict() == v.name())
            && self.zone.as_deref().is_none_or(|z| record.touches_zone(z))
            && (self.addr).is_none_or(|net| {
                ends.iter()
                    .any(|e| e.ip.is_some_and(|ip| net.contains(&ip)))
            })
            && (self.port).is_none_or(|port| ends.iter().any(|e| e.port == Some(port)))
    }
}

/// `--addr`: an address (a one-host prefix) or a CIDR prefix without host bits.
pub fn parse_addr(text: &str) -> Result<IpNet, String> {
    if let Ok(ip) = text.parse::<std::net::IpAddr>() {
        return Ok(IpNet::from(ip));
    }
    let net: IpNet = text
        .parse()
        .map_err(|_| format!("`{text}` is neither an address nor a CIDR prefix"))?;
    if net.trunc() != net {
        return Err(format!(
            "`{text}` has host bits set (did you mean {}?)",
            net.trunc()
        ));
    }
    Ok(net)
}

/// A verdict as the protocol and the command line name it.
#[derive(
    Clone,
    Copy,
    Debug,
    Serialize,
    Deserialize,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum FlowVerdict {
    /// Passed.
    Allow,
    /// Dropped.
    Deny,
    /// Would have been dropped; passed because of audit mode.
    Audit,
    /// A response alert: quarantine, release, exempted detection.
    Alert,
}

impl FlowVerdict {
    /// `allow`, `deny`, `audit` or `alert`, as in event records.
    pub fn name(self) -> &'static str {
        match self {
            FlowVerdict::Allow => "allow",
            FlowVerdict::Deny => "deny",
            FlowVerdict::Audit => "audit",
            FlowVerdict::Alert => "alert",
        }
    }
}

impl From<ward_common::Verdict> for FlowVerdict {
    fn from(v: ward_common::Verdict) -> Self {
        match v {
            ward_common::Verdict::Allow => FlowVerdict::Allow,
            ward_common::Verdict::Deny => FlowVerdict::Deny,
            ward_common::Verdict::Audit => FlowVerdict::Audit,
        }
    }
}
