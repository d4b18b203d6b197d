//! What the running agent knows about itself, shared by the daemon, the control
//! socket, the event writer and the metrics endpoint.
use std::{
    path::PathBuf,
    sync::{Arc, RwLock},
    time::SystemTime,
};

use serde::{Deserialize, Serialize};

/// The agent-wide mode, defined with the policy model (its zones have one too).
pub use crate::policy::Mode;
use crate::{config::Role, policy::CompiledPolicy};

/// Names behind the ids of one policy generation, to resolve kernel counters and events.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PolicyNames {
    /// Policy generation.
    pub generation: u64,
    /// Policy hash (sha256 hex).
    pub hash: String,
    /// Zone names by id; `[0]` is `world`.
    pub zones: Vec<String>,
    /// Where each rule is written (`file:line`), by rule id.
    pub rules: Vec<String>,
}

impl PolicyNames {
    /// The names of a compiled policy published as `generation`.
    pub fn new(generation: u64, policy: &CompiledPolicy) -> Self {
        PolicyNames {
            generation,
            hash: policy.hash.clone(),
            zones: policy.zone_names.clone(),
            rules: policy
                .rule_origins
                .iter()
                .map(ToString::to_string)
                .collect(),
        }
    }

    /// A zone's name, or `zone#ID` for an id this policy does not have.
    pub fn zone(&self, id: u32) -> String {
        self.zones
            .get(id as usize)
            .cloned()
            .unwrap_or_else(|| format!("zone#{id}"))
    }

    /// A rule's `file:line`, if the id is one of this policy's rules.
    pub fn rule(&self, id: u32) -> Option<&str> {
        self.rules.get(id as usize).map(String::as_str)
    }
}

/// One program attached (or not) to one interface.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct HookStatus {
    /// Interface name.
    pub interface: String,
    /// `xdp-ingress` or `tc-egress`.
    pub hook: String,
    /// Whether the program is attached.
    pub attached: bool,
}

/// A reload that did not go through.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReloadFailure {
    /// When it was refused.
    pub at: SystemTime,
    /// The checker's errors or the dataplane's error.
    pub error: String,
}

/// The agent's state as `ward status` and the metrics show it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AgentStatus {
    /// Host or gateway.
    pub role: Role,
    /// Enforce or audit (the agent-wide mode; zones may be audited on their own).
    pub mode: Mode,
    /// Policy file or directory.
    pub policy_path: PathBuf,
    /// The event log file (`event_log`), when the agent writes one: `ward flows
    /// --since` reads its history there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_log: Option<PathBuf>,
    /// Attach state per interface and hook.
    pub hooks: Vec<HookStatus>,
    /// Policy in force, by slot: `slots[generation & 1]` is the current one, the other
    /// the previous one (kept to name the ids of counters and events it left behind).
    pub slots: [Option<PolicyNames>; 2],
    /// Generation in force (0 before the first policy).
    pub generation: u64,
    /// When the agent started.
    pub started_at: SystemTime,
    /// When the policy in force was applied.
    pub loaded_at: Option<SystemTime>,
    /// Last successful reload.
    pub last_reload_ok: Option<SystemTime>,
    /// Last refused reload.
    pub last_reload_error: Option<ReloadFailure>,
    /// What the automatic response has done.
    #[serde(default)]
    pub response: ResponseStats,
    /// What the interface watch found: tampering, refused interfaces.
    #[serde(default)]
    pub watch: WatchStats,
    /// Management access guaranteed ahead of quarantine and policy.
    #[serde(default)]
    pub failsafe: crate::config::FailsafeConfig,
    /// The policy in force awaits `ward confirm` (or the confirm probe) until then.
    #[serde(default)]
    pub pending_confirmation: Option<PendingConfirmation>,
    /// Unconfirmed policies rolled back since the agent started.
    #[serde(default)]
    pub rollbacks_total: u64,
    /// The last roll-back.
    #[serde(default)]
    pub last_rollback: Option<Rollback>,
    /// Conditions that need an operator, until they clear; enforcement goes on.
    #[serde(default)]
    pub faults: Vec<Fault>,
    /// Where the policy comes from, the signed bundle in force, `policy_url` polling.
    #[serde(default)]
    pub distribution: crate::distribution::DistributionStatus,
    /// Break-glass grants in force.
    #[serde(default)]
    pub breakglass: Vec<crate::breakglass::Grant>,
    /// The fleet grants of the bundle in force this host refused, one line each
    /// (`imaging -> billing https of fleet bundle version 7 refused: why`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub breakglass_refused: Vec<String>,
    /// What the `event_sink` delivered, dropped and lost; `None` without a sink.
    #[serde(default)]
    pub event_sink: Option<SinkStats>,
}

/// The syslog sink's counts since the agent started (`docs/events.md`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SinkStats {
    /// The collector, as configured.
    pub url: String,
    /// Whether a connection to it is open now.
    pub connected: bool,
    /// Events whose bytes the collector's TCP stack acknowledged.
    pub sent_total: u64,
    /// Events never queued for the sink: its buffer was full.
    pub dropped_total: u64,
    /// Events written to a connection that broke before the collector acknowledged
    /// them: they may or may not have arrived.
    pub lost_total: u64,
}

/// What a fault is about.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum FaultArea {
    /// The policy on disk cannot be loaded (unreadable, deleted, invalid): the last
    /// good policy stays in force.
    Policy,
    /// Event lines cannot be written (disk full…): events are still counted and sent
    /// to live subscribers.
    EventLog,
    /// The kernel found the event ring buffer full and dropped events (counted).
    EventsLost,
    /// `policy_url` does not answer with a bundle: the policy in force stays.
    PolicyFetch,
    /// An automatic quarantine could not be set (the kernel table is full).
    Quarantine,
    /// An interface named in `interfaces` does not exist: it is attached when it
    /// appears, the others are enforced on meanwhile.
    Interfaces,
    /// Gateway: an interface is up without the agent's XDP program; packets forwarded
    /// from it are judged on egress only.
    Unguarded,
}

impl FaultArea {
    /// Every area, in a fixed order.
    pub const ALL: [FaultArea; 7] = [
        FaultArea::Policy,
        FaultArea::EventLog,
        FaultArea::EventsLost,
        FaultArea::PolicyFetch,
        FaultArea::Quarantine,
        FaultArea::Interfaces,
        FaultArea::Unguarded,
    ];

    /// `policy`, `event-log`, `events-lost`, `policy-fetch`, `quarantine`,
    /// `interfaces` or `unguarded`.
    pub const fn name(self) -> &'static str {
        match self {
            FaultArea::Policy => "policy",
            FaultArea::EventLog => "event-log",
            FaultArea::EventsLost => "events-lost",
            FaultArea::PolicyFetch => "policy-fetch",
            FaultArea::Quarantine => "quarantine",
            FaultArea::Interfaces => "interfaces",
            FaultArea::Unguarded => "unguarded",
        }
    }
}

/// A fault in force.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Fault {
    /// What it is about.
    pub area: FaultArea,
    /// The latest description.
    pub message: String,
    /// When it started.
    pub since: SystemTime,
    /// How many times it happened since (records not written, events lost…).
    pub count: u64,
}

/// A commit-confirmed policy waiting for its confirmation.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PendingConfirmation {
    /// Its generation.
    pub generation: u64,
    /// Its hash.
    pub hash: String,
    /// When it is rolled back unless confirmed.
    pub deadline: SystemTime,
    /// Hash of the policy it is rolled back to.
    pub rollback_to: String,
}

/// An unconfirmed policy that was taken back.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Rollback {
    /// When.
    pub at: SystemTime,
    /// Hash of the policy that was not confirmed.
    pub unconfirmed: String,
    /// Generation now in force (the previous policy again).
    pub generation: u64,
    /// Hash of the policy in force again.
    pub hash: String,
    /// Why: the deadline passed, or the agent stopped first.
    pub reason: String,
}

/// Quarantines and alerts since the agent started.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ResponseStats {
    /// Hosts quarantined now (set by this or an earlier agent process).
    pub quarantined: usize,
    /// Of them, the ones set by the fleet quarantine list of a signed bundle.
    #[serde(default)]
    pub fleet_quarantined: usize,
    /// The version of the bundle whose fleet quarantine list is in force; `None`
    /// before one is applied, or with an unsigned policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet_version: Option<u64>,
    /// Quarantines set by the fleet quarantine list.
    #[serde(default)]
    pub fleet_quarantines_total: u64,
    /// Quarantines set automatically.
    pub auto_quarantines_total: u64,
    /// Quarantines set by request.
    pub manual_quarantines_total: u64,
    /// Quarantines ended (released or expired).
    pub releases_total: u64,
    /// Scans detected from hosts that are never quarantined (or with auto-quarantine off).
    pub exempt_alerts_total: u64,
    /// Scans detected past `max_auto_quarantines` a minute (alerted on, not quarantined).
    #[serde(default)]
    pub limited_alerts_total: u64,
    /// Denial events the scan detection fell too far behind to look at (a flood).
    #[serde(default)]
    pub detector_skipped_total: u64,
}

/// What the interface watch found since the agent started.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct WatchStats {
    /// Hooks found without the agent's program (detached or replaced by someone else).
    pub tamper_total: u64,
    /// Interfaces matching `interfaces` that are refused now.
    pub refused: Vec<RefusedInterface>,
}

/// An interface the agent does not enforce on although `interfaces` matches it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RefusedInterface {
    /// Interface name.
    pub interface: String,
    /// Why, in one line.
    pub reason: String,
}

impl AgentStatus {
    /// What an operator must know about this agent's configuration (`ward status`).
    pub fn warnings(&self) -> Vec<String> {
        self.failsafe.warning(self.role).into_iter().collect()
    }

    /// The names of the policy in force.
    pub fn current(&self) -> Option<&PolicyNames> {
        self.slots[(self.generation & 1) as usize].as_ref()
    }

    /// Records a fault in `area` (`count` more occurrences); true when it is new.
    pub fn raise(&mut self, area: FaultArea, message: String, count: u64) -> bool {
        if let Some(f) = self.faults.iter_mut().find(|f| f.area == area) {
            f.message = message;
            f.count += count;
            return false;
        }
        self.faults.push(Fault {
            area,
            message,
            since: SystemTime::now(),
            count,
        });
        true
    }

    /// Ends the fault in `area`; the fault it was, if any.
    pub fn clear(&mut self, area: FaultArea) -> Option<Fault> {
        let i = self.faults.iter().position(|f| f.area == area)?;
        Some(self.faults.remove(i))
    }

    /// The names of the policy in `slot`.
    pub fn slot(&self, slot: u8) -> Option<&PolicyNames> {
        self.slots.get(slot as usize).and_then(Option::as_ref)
    }
}

/// [`AgentStatus`] shared between tasks.
pub type SharedStatus = Arc<RwLock<AgentStatus>>;
