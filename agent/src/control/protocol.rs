//! The lines exchanged on the control socket: one JSON request line, then one JSON
//! answer line (`{"error": "…"}` when the request failed), or for `flows`
//! `{"subscribed": true}` then one line per matching event (`{"lagged": N}` when N events were skipped) until the client leaves.
use serde::{Deserialize, Serialize};

use super::{FlowFilter, FlowVerdict};
use crate::{dataplane::CounterSnapshot, state::AgentStatus};

/// The error the daemon answers to a peer that is not root.
pub const PERMISSION_DENIED: &str = "permission denied: the control socket is for root";

/// A request line: `{"cmd": "status"}`, `{"cmd": "flows", "verdict": "deny"}`…
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "cmd", rename_all = "lowercase")]
pub enum Request {
    /// The agent's state and a counters summary ([`StatusReply`]).
    Status,
    /// Totals by zone pair and verdict (a list of [`ZonePairCount`]).
    Counters,
    /// Reload the policy now (a [`crate::daemon::ReloadOutcome`]); with
    /// `confirm_within_secs`, roll it back unless `confirm` arrives in time.
    Reload {
        /// The confirmation window in seconds; absent: the agent's default.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        confirm_within_secs: Option<u64>,
        /// Put the policy in force even if the lock-out preflight finds established
        /// management sessions it would cut.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        force: bool,
    },
    /// Confirm the policy awaiting confirmation (its generation).
    Confirm,
    /// Stream the flow events that match the filter.
    Flows(FlowFilter),
    /// Quarantine a host (a [`crate::dataplane::QuarantineEntry`]).
    Quarantine {
        /// The host.
        ip: std::net::IpAddr,
        /// For how many seconds; until released when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ttl_secs: Option<u64>,
        /// Why.
        reason: String,
    },
    /// End a host's quarantine (the [`crate::dataplane::QuarantineEntry`] it was).
    Release {
        /// The host.
        ip: std::net::IpAddr,
    },
    /// The quarantined hosts (a list of [`crate::dataplane::QuarantineEntry`]).
    Quarantines,
    /// Start a break-glass grant (the [`crate::breakglass::Grant`]).
    Breakglass(crate::breakglass::GrantRequest),
    /// End a break-glass grant before it expires (the [`crate::breakglass::Grant`] it was).
    #[serde(rename = "end-breakglass")]
    EndBreakglass {
        /// The grant's number.
        id: u32,
        /// Who ends it, as they name themselves.
        operator: String,
    },
    /// The break-glass grants in force (a list of [`crate::breakglass::Grant`]).
    Grants,
    /// Decide a flow as the kernel would now: the policy in force, the agent's mode and
    /// failsafe, its quarantines and grants (a list of [`crate::daemon::ExplainLine`]).
    Explain {
        /// Source: an address, a CIDR prefix or a zone name.
        from: String,
        /// Destination: an address, a CIDR prefix or a zone name.
        to: String,
        /// `tcp/PORT`, `udp/PORT`, `icmp` or a catalogue name.
        service: String,
    },
}

/// The answer to `status`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StatusReply {
    /// The agent's state.
    pub status: AgentStatus,
    /// The counters, unless they could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counters: Option<CountersSummary>,
    /// Why the counters could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counters_error: Option<String>,
    /// What the operator must know about the configuration (a host without failsafe
    /// management access).
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// Totals since the agent started, summed over zone pairs and CPUs.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct CountersSummary {
    /// Packets passed.
    pub allowed_packets: u64,
    /// Packets dropped.
    pub denied_packets: u64,
    /// Packets passed that enforcement would have dropped.
    pub audited_packets: u64,
    /// Flow events written to the ring buffer.
    pub events_emitted: u64,
    /// Flow events suppressed by the per-source budget.
    pub events_suppressed: u64,
    /// Flow events lost because the ring buffer was full.
    pub events_lost: u64,
    /// Tracked connections.
    pub conntrack_entries: u64,
    /// Capacity of the connection table.
    pub conntrack_capacity: u64,
}

impl From<&CounterSnapshot> for CountersSummary {
    fn from(s: &CounterSnapshot) -> Self {
        let mut summary = CountersSummary {
            events_emitted: s.events_emitted,
            events_suppressed: s.events_suppressed,
            events_lost: s.events_lost,
            conntrack_entries: s.conntrack_entries,
            conntrack_capacity: s.conntrack_capacity,
            ..CountersSummary::default()
        };
        for ((_, _, verdict), c) in &s.zone_pairs {
            *match verdict {
                ward_common::Verdict::Allow => &mut summary.allowed_packets,
                ward_common::Verdict::Deny => &mut summary.denied_packets,
                ward_common::Verdict::Audit => &mut summary.audited_packets,
            } += c.packets;
        }
        summary
    }
}

/// One line of the answer to `counters`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ZonePairCount {
    /// Source zone.
    pub src_zone: String,
    /// Destination zone.
    pub dst_zone: String,
    /// Verdict.
    pub verdict: FlowVerdict,
    /// Packets since the agent started.
    pub packets: u64,
    /// Bytes since the agent started.
    pub bytes: u64,
}

impl ZonePairCount {
    /// The zone pair totals of a snapshot, in zone-name order.
    pub fn list(s: &CounterSnapshot) -> Vec<ZonePairCount> {
        s.zone_pairs
            .iter()
            .map(|((src, dst, verdict), c)| ZonePairCount {
                src_zone: src.clone(),
                dst_zone: dst.clone(),
                verdict: (*verdict).into(),
                packets: c.packets,
                bytes: c.bytes,
            })
            .collect()
    }
}

/// The line a `flows` stream carries when the client fell behind and events were skipped.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Lagged {
    /// How many events were skipped.
    pub lagged: u64,
}

/// The first line of a `flows` stream: the agent is subscribed, every event from now
/// on is sent.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(super) struct Subscribed {
    /// Always `true`.
    pub subscribed: bool,
}

/// The answer to a request that failed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct ErrorReply {
    /// What went wrong.
    pub error: String,
}
