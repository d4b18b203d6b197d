//! What a policy change does: flows newly allowed or denied, zones added, removed or
//! changing mode, prefixes changing zone. Computed from the compiled form (zone pairs ×
//! protocol × port intervals), zones compared by name since ids differ between policies.
//! The JSON shape (serde) is documented in `docs/policy-review.md` and stable within
//! [`FORMAT`].
mod text;
mod zones;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use ipnet::IpNet;
use serde::Serialize;

use super::ports::PortSet;
use super::Mode;
use super::{catalogue, CompiledPolicy, Loaded, Policy, PortRange, Protocol};
use zones::zone_changes;

/// Name and version of the JSON shape.
pub const FORMAT: &str = "ward-policy-diff/1";

/// The difference between an old and a new policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PolicyDiff {
    /// Always [`FORMAT`].
    pub format: &'static str,
    /// Hash of the old compiled policy.
    pub old_hash: String,
    /// Hash of the new compiled policy.
    pub new_hash: String,
    /// Whether anything allowed differs: a flow, a zone's mode, a prefix's zone.
    pub changed: bool,
    /// Flows newly allowed or denied, by zone pair, protocol and first port.
    pub flows: Vec<FlowChange>,
    /// Zone and prefix changes.
    pub zones: ZoneChanges,
}

/// Newly allowed or newly denied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// The new policy allows it, the old one did not.
    Allow,
    /// The old policy allowed it, the new one does not.
    Deny,
}

/// Ports of one zone pair and protocol that one change concerns, with the rules behind it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FlowChange {
    /// Newly allowed or newly denied.
    pub change: Change,
    /// Initiator zone name.
    pub from: String,
    /// Responder zone name.
    pub to: String,
    /// Protocol.
    pub protocol: Protocol,
    /// Destination port ranges, merged and in order; empty for ICMP.
    pub ports: Vec<PortRange>,
    /// Catalogue services the rules below name for these ports.
    pub services: Vec<String>,
    /// The rules allowing these ports: in the new policy for `allow`, in the old for `deny`.
    pub rules: Vec<RuleRef>,
}

/// A rule, by id and place.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct RuleRef {
    /// Rule id in its policy.
    pub id: u32,
    /// File it is written in.
    pub file: PathBuf,
    /// Line of its `[[allow]]` header.
    pub line: usize,
}

/// Changes to zones and their prefixes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ZoneChanges {
    /// Zones only the new policy has.
    pub added: Vec<String>,
    /// Zones only the old policy has.
    pub removed: Vec<String>,
    /// Zones in both whose mode differs.
    pub modes: Vec<ModeChange>,
    /// Prefixes added, removed or moved, by zone then prefix.
    pub prefixes: Vec<PrefixChange>,
}

/// A zone whose mode changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ModeChange {
    /// Zone name.
    pub zone: String,
    /// Old mode.
    pub old: Mode,
    /// New mode.
    pub new: Mode,
}

/// How a prefix changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PrefixChangeKind {
    /// Listed in a zone of the new policy only.
    Added,
    /// Listed in a zone of the old policy only.
    Removed,
    /// Listed in both, in zones of different names.
    Moved,
}

/// A prefix listed differently, and what that changes for its addresses (those that no
/// more specific prefix covers).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PrefixChange {
    /// The prefix.
    pub prefix: IpNet,
    /// Added, removed or moved.
    pub change: PrefixChangeKind,
    /// Zone its addresses were in (by longest match; `world` when none).
    pub old_zone: String,
    /// Zone its addresses are now in.
    pub new_zone: String,
    /// What its addresses may newly do or no longer do: `old_zone`'s access in the old
    /// policy against `new_zone`'s in the new.
    pub access: Vec<AccessChange>,
}

/// Which end of a connection a zone is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// The zone opens connections to `peer`.
    Out,
    /// `peer` opens connections to the zone.
    In,
}

/// A change in what a prefix's addresses may open, or be opened from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AccessChange {
    /// Newly allowed or newly denied.
    pub change: Change,
    /// Opening (`out`) or being opened (`in`).
    pub direction: Direction,
    /// The zone at the other end.
    pub peer: String,
    /// Protocol.
    pub protocol: Protocol,
    /// Destination port ranges; empty for ICMP.
    pub ports: Vec<PortRange>,
}

/// (initiator zone, responder zone, protocol), by name.
pub(super) type FlowKey = (String, String, Protocol);

/// What a compiled policy allows: per key, each port interval with its owning rule.
type Pieces = BTreeMap<FlowKey, Vec<(PortRange, u32)>>;

/// Compares `old` with `new`.
pub fn diff(old: &Loaded, new: &Loaded) -> PolicyDiff {
    let (old_pieces, new_pieces) = (pieces(&old.compiled), pieces(&new.compiled));
    let (old_sets, new_sets) = (sets(&old_pieces), sets(&new_pieces));
    let empty = PortSet::default();
    let keys: BTreeSet<&FlowKey> = old_sets.keys().chain(new_sets.keys()).collect();
    let mut flows = Vec::new();
    let none = Vec::new();
    for key in keys {
        let was = old_sets.get(key).unwrap_or(&empty);
        let is = new_sets.get(key).unwrap_or(&empty);
        let (old_owners, new_owners) = (
            old_pieces.get(key).unwrap_or(&none),
            new_pieces.get(key).unwrap_or(&none),
        );
        flows.extend(flow_changes(
            Change::Allow,
            key,
            &is.minus(was),
            new_owners,
            &new.policy,
        ));
        flows.extend(flow_changes(
            Change::Deny,
            key,
            &was.minus(is),
            old_owners,
            &old.policy,
        ));
    }
    let zones = zone_changes(&old.policy, &new.policy, &old_sets, &new_sets);
    let changed = !flows.is_empty()
        || !zones.modes.is_empty()
        || zones.prefixes.iter().any(|p| p.old_zone != p.new_zone);
    PolicyDiff {
        format: FORMAT,
        old_hash: old.compiled.hash.clone(),
        new_hash: new.compiled.hash.clone(),
        changed,
        flows,
        zones,
    }
}

/// The rule ranges of `c` by zone names.
fn pieces(c: &CompiledPolicy) -> Pieces {
    let mut out = Pieces::new();
    for e in &c.rules {
        let Some(protocol) = Protocol::from_code(e.proto) else {
            continue;
        };
        let range = PortRange {
            first: e.first,
            last: e.last,
        };
        let key = (
            c.zone_names[e.src_zone as usize].clone(),
            c.zone_names[e.dst_zone as usize].clone(),
            protocol,
        );
        out.entry(key).or_default().push((range, e.rule_id));
    }
    out
}

/// The allowed port set of each key.
fn sets(pieces: &Pieces) -> BTreeMap<FlowKey, PortSet> {
    pieces
        .iter()
        .map(|(k, p)| (k.clone(), PortSet::from_ranges(p.iter().map(|(r, _)| *r))))
        .collect()
}

/// One [`FlowChange`] per set of owning rules, covering `ports` of `key`.
fn flow_changes(
    change: Change,
    key: &FlowKey,
    ports: &PortSet,
    pieces: &[(PortRange, u32)],
    policy: &Policy,
) -> Vec<FlowChange> {
    let mut groups: Vec<(BTreeSet<u32>, Vec<PortRange>)> = Vec::new();
    for &range in ports.ranges() {
        let owners: BTreeSet<u32> = pieces
            .iter()
            .filter(|(r, _)| r.first <= range.last && range.first <= r.last)
            .map(|&(_, id)| id)
            .collect();
        match groups.iter_mut().find(|(o, _)| *o == owners) {
            Some((_, ranges)) => ranges.push(range),
            None => groups.push((owners, vec![range])),
        }
    }
    let (from, to, protocol) = key;
    groups
        .into_iter()
        .map(|(owners, ranges)| FlowChange {
            change,
            from: from.clone(),
            to: to.clone(),
            protocol: *protocol,
            services: services(policy, &owners, *protocol, &ranges),
            rules: owners
                .iter()
                .map(|&id| {
                    let origin = &policy.rules[id as usize].origin;
                    RuleRef {
                        id,
                        file: origin.file.clone(),
                        line: origin.line,
                    }
                })
                .collect(),
            ports: if *protocol == Protocol::Icmp {
                Vec::new()
            } else {
                ranges
            },
        })
        .collect()
}

/// The services named by rules `owners` that use a port of `ranges` on `protocol`.
fn services(
    policy: &Policy,
    owners: &BTreeSet<u32>,
    protocol: Protocol,
    ranges: &[PortRange],
) -> Vec<String> {
    let mut names = Vec::new();
    for &id in owners {
        for name in &policy.rules[id as usize].services {
            let Some(service) = catalogue::lookup(name) else {
                continue;
            };
            let ports = service.ports(protocol);
            let used = ports.iter().any(|&p| ranges.iter().any(|r| r.contains(p)));
            if used && !names.contains(name) {
                names.push(name.clone());
            }
        }
    }
    names
}
