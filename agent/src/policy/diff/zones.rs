//! The zone side of a policy diff: zones added, removed or changing mode, and prefixes
//! changing zone with what that changes for their addresses.
use std::collections::{BTreeMap, BTreeSet};

use ipnet::IpNet;

use super::{
    AccessChange, Change, Direction, FlowKey, ModeChange, PrefixChange, PrefixChangeKind,
    ZoneChanges,
};
use crate::policy::Mode;
use crate::policy::PortSet;
use crate::policy::{Policy, Protocol, WORLD};

/// Zones added and removed, mode changes and prefix changes.
pub(super) fn zone_changes(
    old: &Policy,
    new: &Policy,
    old_sets: &BTreeMap<FlowKey, PortSet>,
    new_sets: &BTreeMap<FlowKey, PortSet>,
) -> ZoneChanges {
    let names =
        |p: &Policy| -> BTreeSet<String> { p.zones.iter().map(|z| z.name.clone()).collect() };
    let (old_names, new_names) = (names(old), names(new));
    let mut modes = Vec::new();
    for zone in &new.zones {
        let Some(before) = old.zones.iter().find(|z| z.name == zone.name) else {
            continue;
        };
        if before.audit != zone.audit {
            modes.push(ModeChange {
                zone: zone.name.clone(),
                old: mode(before.audit),
                new: mode(zone.audit),
            });
        }
    }
    let (old_prefixes, new_prefixes) = (prefix_zones(old), prefix_zones(new));
    let mut prefixes = Vec::new();
    for (&prefix, &zone) in &new_prefixes {
        let (change, old_zone) = match old_prefixes.get(&prefix) {
            Some(&before) if before == zone => continue,
            Some(&before) => (PrefixChangeKind::Moved, before),
            None => (PrefixChangeKind::Added, covering(old, &prefix)),
        };
        prefixes.push((prefix, change, old_zone, zone));
    }
    for (&prefix, &zone) in &old_prefixes {
        if !new_prefixes.contains_key(&prefix) {
            prefixes.push((
                prefix,
                PrefixChangeKind::Removed,
                zone,
                covering(new, &prefix),
            ));
        }
    }
    let listed_in = |&(prefix, change, old_zone, new_zone): &(IpNet, _, &str, &str)| {
        let zone = if change == PrefixChangeKind::Removed {
            old_zone
        } else {
            new_zone
        };
        (zone.to_owned(), prefix)
    };
    prefixes.sort_by_key(listed_in);
    ZoneChanges {
        added: new_names.difference(&old_names).cloned().collect(),
        removed: old_names.difference(&new_names).cloned().collect(),
        modes,
        prefixes: prefixes
            .into_iter()
            .map(|(prefix, change, old_zone, new_zone)| PrefixChange {
                prefix,
                change,
                old_zone: old_zone.to_owned(),
                new_zone: new_zone.to_owned(),
                access: access_changes(&access(old_sets, old_zone), &access(new_sets, new_zone)),
            })
            .collect(),
    }
}

fn mode(audit: bool) -> Mode {
    if audit {
        Mode::Audit
    } else {
        Mode::Enforce
    }
}

/// Every listed prefix and the name of its zone.
fn prefix_zones(policy: &Policy) -> BTreeMap<IpNet, &str> {
    policy
        .zones
        .iter()
        .flat_map(|z| z.cidrs.iter().map(move |c| (*c, z.name.as_str())))
        .collect()
}

/// The zone of the longest prefix of `policy` containing `net` (`world` when none).
fn covering<'p>(policy: &'p Policy, net: &IpNet) -> &'p str {
    policy
        .zones
        .iter()
        .flat_map(|z| z.cidrs.iter().map(move |c| (c, z.name.as_str())))
        .filter(|(c, _)| c.contains(net))
        .max_by_key(|(c, _)| c.prefix_len())
        .map_or(WORLD, |(_, name)| name)
}

/// (direction, peer zone, protocol).
type AccessKey = (Direction, String, Protocol);

/// What `zone` may open and be opened from.
fn access(sets: &BTreeMap<FlowKey, PortSet>, zone: &str) -> BTreeMap<AccessKey, PortSet> {
    let mut out = BTreeMap::new();
    for ((src, dst, protocol), ports) in sets {
        if src == zone {
            out.insert((Direction::Out, dst.clone(), *protocol), ports.clone());
        }
        if dst == zone {
            out.insert((Direction::In, src.clone(), *protocol), ports.clone());
        }
    }
    out
}

/// The differences between two access maps.
fn access_changes(
    old: &BTreeMap<AccessKey, PortSet>,
    new: &BTreeMap<AccessKey, PortSet>,
) -> Vec<AccessChange> {
    let empty = PortSet::default();
    let keys: BTreeSet<&AccessKey> = old.keys().chain(new.keys()).collect();
    let mut out = Vec::new();
    for key in keys {
        let (was, is) = (
            old.get(key).unwrap_or(&empty),
            new.get(key).unwrap_or(&empty),
        );
        for (change, ports) in [
            (Change::Allow, is.minus(was)),
            (Change::Deny, was.minus(is)),
        ] {
            if ports.is_empty() {
                continue;
            }
            let (direction, peer, protocol) = key;
            out.push(AccessChange {
                change,
                direction: *direction,
                peer: peer.clone(),
                protocol: *protocol,
                ports: if *protocol == Protocol::Icmp {
                    Vec::new()
                } else {
                    ports.ranges().to_vec()
                },
            });
        }
    }
    out
}
