//! The metrics of one scrape, encoded from the agent's status and a counter snapshot.
use std::fmt;

use prometheus_client::{
    collector::Collector,
    encoding::{text, DescriptorEncoder},
    metrics::{counter::ConstCounter, gauge::ConstGauge},
    registry::{Registry, Unit},
};

use super::encode::{denied, family, pair_labels, possible, seconds, single};
use crate::{
    dataplane::CounterSnapshot,
    state::{AgentStatus, Mode},
};

/// Every agent-wide mode, so that `ward_mode` shows 0 for the modes not in force.
const MODES: [Mode; 2] = [Mode::Enforce, Mode::Audit];

/// Encodes the agent's metrics in the OpenMetrics text format (ending in `# EOF`).
///
/// Pure: everything comes from `status` and `snapshot`, which the caller reads at the
/// same moment (see [`serve`](super::serve)). Counter series are named `*_total`;
/// timestamps are seconds since the Unix epoch, 0 for an event that has not happened.
pub fn encode(status: &AgentStatus, snapshot: &CounterSnapshot) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Scrape {
        status: status.clone(),
        snapshot: snapshot.clone(),
    }));
    let mut out = String::new();
    // Writing to a `String` cannot fail, and `Scrape` fails only when its writer does.
    text::encode(&mut out, &registry).expect("encoding metrics into a String");
    out
}

/// What one scrape shows; a collector so that nothing outlives the scrape.
#[derive(Debug)]
struct Scrape {
    status: AgentStatus,
    snapshot: CounterSnapshot,
}

impl Collector for Scrape {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        self.encode_counters(&mut e)?;
        self.encode_status(&mut e)
    }
}

impl Scrape {
    /// The kernel's counters.
    fn encode_counters(&self, e: &mut DescriptorEncoder) -> fmt::Result {
        let s = &self.snapshot;
        family(
            e,
            "ward_packets",
            "Packets judged, by source zone, destination zone and verdict (allow, deny, audit).",
            None,
            s.zone_pairs
                .iter()
                .map(|(k, c)| (pair_labels(k), ConstCounter::new(c.packets))),
        )?;
        family(
            e,
            "ward_bytes",
            "Bytes (frame length) judged, by source zone, destination zone and verdict.",
            None,
            s.zone_pairs
                .iter()
                .map(|(k, c)| (pair_labels(k), ConstCounter::new(c.bytes))),
        )?;
        family(
            e,
            "ward_verdicts",
            "Packets by reason and the verdict applied (audit: a denial that audit mode passed).",
            None,
            s.reasons
                .iter()
                .filter(|(r, v, _)| possible(*r, *v))
                .map(|(r, v, c)| {
                    (
                        [("reason", r.name()), ("verdict", v.name())],
                        ConstCounter::new(c.packets),
                    )
                }),
        )?;
        family(
            e,
            "ward_denied_packets",
            "Packets dropped, by reason (audited packets, which passed, are not counted).",
            None,
            denied(&s.reasons)
                .map(|(r, packets)| ([("reason", r.name())], ConstCounter::new(packets))),
        )?;
        let events = [
            (
                "ward_events_emitted",
                "Flow events written to the ring buffer.",
                s.events_emitted,
            ),
            (
                "ward_events_suppressed",
                "Flow events not written: their source, or their CPU, exceeded its budget.",
                s.events_suppressed,
            ),
            (
                "ward_events_lost",
                "Flow events not written: the ring buffer was full.",
                s.events_lost,
            ),
        ];
        for (name, help, value) in events {
            single(e, name, help, None, ConstCounter::new(value))?;
        }
        let families = ["ipv4", "ipv6"];
        let tables = || families.iter().zip(&s.conntrack_tables);
        family(
            e,
            "ward_conntrack_entries",
            "Tracked connections, by family (each has its own table).",
            None,
            tables().map(|(f, t)| ([("family", *f)], ConstGauge::new(t.entries))),
        )?;
        family(
            e,
            "ward_conntrack_capacity",
            "Capacity of each family's connection table.",
            None,
            tables().map(|(f, t)| ([("family", *f)], ConstGauge::new(t.capacity))),
        )
    }

    /// The agent's own state.
    fn encode_status(&self, e: &mut DescriptorEncoder) -> fmt::Result {
        let st = &self.status;
        single(
            e,
            "ward_policy_generation",
            "Policy generation in force (0 before the first policy).",
            None,
            ConstGauge::new(st.generation),
        )?;
        let bundle = st.distribution.bundle.as_ref();
        family(
            e,
            "ward_policy_info",
            "1 for the hash (sha256) of the policy in force, with the version, key id and \
             digest of the signed bundle it came from; absent before the first policy.",
            None,
            st.current().map(|p| {
                let mut labels = vec![("hash", p.hash.clone())];
                if let Some(b) = bundle {
                    labels.push(("bundle_version", b.version.to_string()));
                    labels.push(("key_id", b.key_id.clone()));
                    labels.push(("bundle_digest", b.digest.clone()));
                }
                (labels, ConstGauge::new(1u64))
            }),
        )?;
        single(
            e,
            "ward_policy_bundle_version",
            "Version of the signed bundle the policy in force came from; 0 for an unsigned policy.",
            None,
            ConstGauge::new(bundle.map_or(0, |b| b.version)),
        )?;
        let timestamps = [
            (
                "ward_policy_last_reload_success_timestamp",
                "Last successful reload, 0 if none.",
                st.last_reload_ok,
            ),
            (
                "ward_policy_last_reload_failure_timestamp",
                "Last refused reload, 0 if none.",
                st.last_reload_error.as_ref().map(|f| f.at),
            ),
            (
                "ward_policy_loaded_timestamp",
                "When the policy in force was applied, 0 if none.",
                st.loaded_at,
            ),
        ];
        for (name, help, at) in timestamps {
            single(
                e,
                name,
                help,
                Some(&Unit::Seconds),
                ConstGauge::new(seconds(at)),
            )?;
        }
        family(
            e,
            "ward_attached",
            "1 if the hook's program is attached to the interface, else 0.",
            None,
            st.hooks.iter().map(|h| {
                (
                    [
                        ("interface", h.interface.as_str()),
                        ("hook", h.hook.as_str()),
                    ],
                    ConstGauge::new(u64::from(h.attached)),
                )
            }),
        )?;
        family(
            e,
            "ward_mode",
            "1 for the agent-wide mode in force (enforce or audit), 0 for the other.",
            None,
            MODES.map(|m| {
                (
                    [("mode", m.name())],
                    ConstGauge::new(u64::from(m == st.mode)),
                )
            }),
        )?;
        let info = [
            ("version", env!("CARGO_PKG_VERSION")),
            ("role", st.role.name()),
        ];
        family(
            e,
            "ward_info",
            "1, labelled with the agent's version and role.",
            None,
            [(info, ConstGauge::new(1u64))],
        )?;
        family(
            e,
            "ward_fault",
            "1 while a fault is in force (policy, policy-fetch, event-log, events-lost, quarantine, interfaces, unguarded), else 0.",
            None,
            crate::state::FaultArea::ALL.map(|area| {
                let active = st.faults.iter().any(|f| f.area == area);
                ([("area", area.name())], ConstGauge::new(u64::from(active)))
            }),
        )?;
        single(
            e,
            "ward_policy_awaiting_confirmation",
            "1 while the policy in force awaits `ward confirm` (commit-confirmed apply), else 0.",
            None,
            ConstGauge::new(u64::from(st.pending_confirmation.is_some())),
        )?;
        single(
            e,
            "ward_policy_rollbacks",
            "Unconfirmed policies rolled back since the agent started.",
            None,
            ConstCounter::new(st.rollbacks_total),
        )?;
        single(
            e,
            "ward_breakglass_grants",
            "Break-glass grants in force now (`ward breakglass --list` names them).",
            None,
            ConstGauge::new(st.breakglass.len() as u64),
        )?;
        let fleet = st.breakglass.iter().filter(|g| g.fleet.is_some()).count();
        family(
            e,
            "ward_breakglass_grants_by_source",
            "Break-glass grants in force now, by where they were started (local, or fleet: the signed bundle's breakglass.toml).",
            None,
            [("local", st.breakglass.len() - fleet), ("fleet", fleet)]
                .map(|(source, n)| ([("source", source)], ConstGauge::new(n as u64))),
        )?;
        single(
            e,
            "ward_breakglass_fleet_refused_grants",
            "Grants of the signed bundle's breakglass.toml this host refused (`ward status` says why).",
            None,
            ConstGauge::new(st.breakglass_refused.len() as u64),
        )?;
        single(
            e,
            "ward_breakglass_oldest_grant_timestamp",
            "When the oldest break-glass grant in force was granted, 0 if none.",
            Some(&Unit::Seconds),
            ConstGauge::new(seconds(st.breakglass.iter().map(|g| g.since).min())),
        )?;
        self.encode_response(e)
    }

    /// What the automatic response did.
    fn encode_response(&self, e: &mut DescriptorEncoder) -> fmt::Result {
        let r = &self.status.response;
        single(
            e,
            "ward_quarantined_hosts",
            "Hosts quarantined now.",
            None,
            ConstGauge::new(r.quarantined as u64),
        )?;
        let fleet = r.fleet_quarantined.min(r.quarantined);
        family(
            e,
            "ward_quarantined_hosts_by_source",
            "Hosts quarantined now, by where the quarantine was set (local, or fleet: the signed bundle's quarantine.toml).",
            None,
            [("local", r.quarantined - fleet), ("fleet", fleet)]
                .map(|(source, n)| ([("source", source)], ConstGauge::new(n as u64))),
        )?;
        family(
            e,
            "ward_quarantines",
            "Quarantines set since the agent started, by who set them (auto, manual, or fleet).",
            None,
            [
                ("auto", r.auto_quarantines_total),
                ("manual", r.manual_quarantines_total),
                ("fleet", r.fleet_quarantines_total),
            ]
            .map(|(by, n)| ([("by", by)], ConstCounter::new(n))),
        )?;
        let totals = [
            (
                "ward_quarantine_releases",
                "Quarantines ended (released or expired) since the agent started.",
                r.releases_total,
            ),
            (
                "ward_scan_alerts_exempt",
                "Scans detected from hosts that are never quarantined (or with auto_quarantine off).",
                r.exempt_alerts_total,
            ),
            (
                "ward_scan_alerts_limited",
                "Scans detected past max_auto_quarantines a minute: alerted on, not quarantined.",
                r.limited_alerts_total,
            ),
            (
                "ward_scan_events_skipped",
                "Denial events the scan detection fell too far behind to look at (a flood).",
                r.detector_skipped_total,
            ),
        ];
        for (name, help, value) in totals {
            single(e, name, help, None, ConstCounter::new(value))?;
        }
        self.encode_watch(e)
    }

    /// What the interface watch found.
    fn encode_watch(&self, e: &mut DescriptorEncoder) -> fmt::Result {
        let w = &self.status.watch;
        single(
            e,
            "ward_tamper",
            "Hooks found without the agent's program (detached or replaced by someone else) since the agent started.",
            None,
            ConstCounter::new(w.tamper_total),
        )?;
        single(
            e,
            "ward_interfaces_refused",
            "Interfaces matching `interfaces` that are not enforced on: not Ethernet devices.",
            None,
            ConstGauge::new(w.refused.len() as u64),
        )?;
        self.encode_sink(e)
    }

    /// What the `event_sink` delivered, dropped and lost (nothing without a sink).
    fn encode_sink(&self, e: &mut DescriptorEncoder) -> fmt::Result {
        let Some(sink) = &self.status.event_sink else {
            return Ok(());
        };
        single(
            e,
            "ward_event_sink_connected",
            "1 while the event sink is connected to its collector, else 0.",
            None,
            ConstGauge::new(u64::from(sink.connected)),
        )?;
        let totals = [
            (
                "ward_event_sink_sent",
                "Events the collector's TCP stack acknowledged.",
                sink.sent_total,
            ),
            (
                "ward_event_sink_dropped",
                "Events not sent: the sink buffer was full (the collector slow or away).",
                sink.dropped_total,
            ),
            (
                "ward_event_sink_lost",
                "Events written to a connection that broke before the collector acknowledged them (they may have arrived).",
                sink.lost_total,
            ),
        ];
        for (name, help, value) in totals {
            single(e, name, help, None, ConstCounter::new(value))?;
        }
        Ok(())
    }
}
