//! `[limits]` and `[events]`: the budgets the kernel keeps per source and per CPU,
//! checked against each other, and what they become in the kernel's `Config`.
use serde::{Deserialize, Serialize};

/// `[limits]`: new tracked flows each source address may open.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// New tracked flows a source may open per second once its burst is spent
    /// (0: no limit); past it, new flows are denied with reason `flow-limit`.
    pub new_flows_per_source: u32,
    /// New tracked flows a source may open at once.
    pub new_flow_burst: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            new_flows_per_source: 200,
            new_flow_burst: 1000,
        }
    }
}

impl LimitsConfig {
    /// Checks the two values together; on error, the key to point at and why.
    pub(super) fn check(&self) -> Result<(), (&'static str, String)> {
        if self.new_flows_per_source > 0 && self.new_flow_burst < self.new_flows_per_source {
            let why = format!(
                "`new_flow_burst` ({}) must be at least `new_flows_per_source` ({}): a source \
                 could never open a second's worth of flows (`new_flows_per_source = 0` lifts \
                 the limit)",
                self.new_flow_burst, self.new_flows_per_source
            );
            return Err(("new_flow_burst", why));
        }
        Ok(())
    }
}

/// `[events]`: how many flow events the kernel sends, per source and in all.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    /// Flow events one source address may cause per second before the kernel
    /// suppresses (and counts) the rest; `None` here: the top-level
    /// `events_per_source` of earlier versions, or the default 100.
    pub per_source: Option<u32>,
    /// Flow events all sources together may cause per second (0: no limit), split
    /// evenly between the CPUs.
    pub per_second: u32,
    /// Events held for `event_sink` while the collector is slow or away; past it,
    /// events are dropped from the sink (and counted), never from the event log.
    pub sink_buffer: usize,
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig {
            per_source: None,
            per_second: 5000,
            sink_buffer: DEFAULT_SINK_BUFFER,
        }
    }
}

/// `[events] sink_buffer` when not set.
pub const DEFAULT_SINK_BUFFER: usize = 10_000;

/// `events_per_source` when neither key sets it.
pub const DEFAULT_EVENTS_PER_SOURCE: u32 = 100;

impl EventsConfig {
    /// Checks the values; on error, the key to point at and why.
    pub(super) fn check(&self) -> Result<(), (&'static str, String)> {
        if self.sink_buffer == 0 {
            return Err(("sink_buffer", "must hold at least 1 event".into()));
        }
        Ok(())
    }

    /// Events one source may cause per second.
    pub fn per_source(&self) -> u32 {
        self.per_source.unwrap_or(DEFAULT_EVENTS_PER_SOURCE)
    }

    /// Each CPU's share of `per_second` among `cpus` (possible) CPUs, rounded up so
    /// that no budget becomes 0 (which would mean no limit); 0 stays 0.
    pub fn per_cpu(&self, cpus: usize) -> u32 {
        let cpus = u32::try_from(cpus.max(1)).unwrap_or(u32::MAX);
        self.per_second.div_ceil(cpus)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_global_budget_is_split_between_cpus_rounding_up() {
        let events = |per_second| EventsConfig {
            per_second,
            ..EventsConfig::default()
        };
        assert_eq!(events(5000).per_cpu(2), 2500);
        assert_eq!(events(5000).per_cpu(3), 1667);
        assert_eq!(events(1).per_cpu(64), 1, "never rounded down to unlimited");
        assert_eq!(events(0).per_cpu(8), 0, "0 stays unlimited");
        assert_eq!(events(7).per_cpu(0), 7);
        assert_eq!(events(u32::MAX).per_cpu(1), u32::MAX);
    }

    #[test]
    fn the_burst_must_hold_a_second_of_new_flows() {
        let limits = |new_flows_per_source, new_flow_burst| LimitsConfig {
            new_flows_per_source,
            new_flow_burst,
        };
        assert!(limits(200, 1000).check().is_ok());
        assert!(limits(200, 200).check().is_ok());
        assert!(limits(0, 0).check().is_ok(), "no limit at all");
        let (key, why) = limits(200, 0).check().unwrap_err();
        assert_eq!(key, "new_flow_burst");
        assert!(
            why.starts_with("`new_flow_burst` (0) must be at least"),
            "{why}"
        );
    }
}
