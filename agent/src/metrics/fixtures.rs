//! The status and counter snapshot the metrics tests encode: every series has a
//! value that tells it apart.
use std::{
    collections::BTreeMap,
    path::PathBuf,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use ward_common::{Counter, Reason, Verdict};

use crate::{
    config::Role,
    dataplane::{CounterSnapshot, TableFill},
    state::{AgentStatus, HookStatus, Mode, PolicyNames, ReloadFailure, SinkStats},
};

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

pub(super) fn status() -> AgentStatus {
    let names = |generation: u64, hash: &str| PolicyNames {
        generation,
        hash: hash.into(),
        zones: vec!["world".into(), "imaging".into(), "billing".into()],
        rules: vec!["policy.toml:7".into()],
    };
    let hook = |interface: &str, hook: &str, attached| HookStatus {
        interface: interface.into(),
        hook: hook.into(),
        attached,
    };
    AgentStatus {
        role: Role::Gateway,
        mode: Mode::Audit,
        policy_path: PathBuf::from("/etc/ward/policy"),
        event_log: None,
        hooks: vec![
            hook("eth0", "xdp-ingress", true),
            hook("eth0", "tc-egress", false),
        ],
        slots: [Some(names(2, "old")), Some(names(3, "abc123"))],
        generation: 3,
        started_at: at(1_700_000_000),
        loaded_at: Some(at(1_700_000_100)),
        last_reload_ok: Some(at(1_700_000_100)),
        last_reload_error: Some(ReloadFailure {
            at: at(1_700_000_200),
            error: "no".into(),
        }),
        response: crate::state::ResponseStats {
            quarantined: 2,
            fleet_quarantined: 1,
            fleet_quarantines_total: 5,
            fleet_version: Some(3),
            auto_quarantines_total: 3,
            manual_quarantines_total: 1,
            releases_total: 2,
            exempt_alerts_total: 4,
            limited_alerts_total: 5,
            detector_skipped_total: 6,
        },
        failsafe: Default::default(),
        pending_confirmation: Some(crate::state::PendingConfirmation {
            generation: 3,
            hash: "abc123".into(),
            deadline: at(1_700_000_300),
            rollback_to: "old".into(),
        }),
        rollbacks_total: 2,
        last_rollback: None,
        faults: vec![crate::state::Fault {
            area: crate::state::FaultArea::EventLog,
            message: "writing the event log: No space left on device".into(),
            since: at(1_700_000_250),
            count: 12,
        }],
        watch: crate::state::WatchStats {
            tamper_total: 5,
            refused: vec![crate::state::RefusedInterface {
                interface: "wg0".into(),
                reason: "not Ethernet".into(),
            }],
        },
        distribution: crate::distribution::DistributionStatus {
            require_signature: true,
            bundle: Some(crate::distribution::BundleInfo {
                version: 7,
                digest: "d1e2".into(),
                key_id: "0123456789abcdef".into(),
                files: vec!["policy.toml".into()],
            }),
            highest_version: Some(7),
            ..Default::default()
        },
        breakglass: vec![
            grant(1_700_000_400),
            crate::breakglass::Grant {
                by: "fleet v7".into(),
                fleet: Some(crate::breakglass::FleetMark {
                    version: 7,
                    author: "netsec".into(),
                }),
                ..grant(1_700_000_300)
            },
        ],
        breakglass_refused: vec!["imaging -> ehr ssh of fleet bundle version 7 refused: …".into()],
        event_sink: Some(SinkStats {
            url: "syslog+tcp://198.18.24.10:10514".into(),
            connected: true,
            sent_total: 40,
            dropped_total: 2,
            lost_total: 1,
        }),
    }
}

/// A break-glass grant given at `since` (Unix seconds), for an hour.
fn grant(since: u64) -> crate::breakglass::Grant {
    crate::breakglass::Grant {
        id: (since % 16) as u32,
        from: "imaging".into(),
        to: "billing".into(),
        service: "https".into(),
        reason: "INC-1".into(),
        by: "root".into(),
        since: at(since),
        expires: at(since + 3600),
        expires_ns: 0,
        fleet: None,
    }
}

pub(super) fn snapshot() -> CounterSnapshot {
    let pair = |src: &str, dst: &str, verdict| (src.to_owned(), dst.to_owned(), verdict);
    let mut zone_pairs = BTreeMap::new();
    zone_pairs.insert(
        pair("imaging", "billing", Verdict::Deny),
        Counter {
            packets: 3,
            bytes: 180,
        },
    );
    zone_pairs.insert(
        pair("imaging", "billing", Verdict::Allow),
        Counter {
            packets: 10,
            bytes: 1500,
        },
    );
    zone_pairs.insert(
        pair("world", "imaging", Verdict::Audit),
        Counter {
            packets: 2,
            bytes: 120,
        },
    );
    let reasons = Reason::ALL
        .iter()
        .flat_map(|&r| Verdict::ALL.map(|v| (r, v)))
        .map(|(r, v)| {
            (
                r,
                v,
                Counter {
                    packets: 100 + 10 * r as u64 + v as u64,
                    bytes: 1,
                },
            )
        })
        .collect();
    CounterSnapshot {
        zone_pairs,
        reasons,
        events_emitted: 5,
        events_suppressed: 6,
        events_lost: 7,
        conntrack_entries: 42,
        conntrack_capacity: 1 << 21,
        conntrack_tables: [
            TableFill {
                entries: 40,
                capacity: 1 << 20,
            },
            TableFill {
                entries: 2,
                capacity: 1 << 20,
            },
        ],
    }
}
