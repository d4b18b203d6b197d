//! The checked zone policy: zones with their prefixes and rules in merged order.
use std::{collections::BTreeMap, fmt, sync::Arc};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use ward_common::WORLD_ZONE;

use super::{Origin, Protocol};

/// Name of the reserved zone of addresses that no zone covers (id 0).
pub const WORLD: &str = "world";
/// Rule keyword for every zone, `world` included.
pub const ANY: &str = "any";

/// Enforce or only log.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Drop what the policy does not allow.
    #[default]
    Enforce,
    /// Drop nothing; log would-be drops with verdict `audit`.
    Audit,
}

impl Mode {
    /// `enforce` or `audit`, as in the configuration.
    pub const fn name(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Audit => "audit",
        }
    }
}

/// A checked policy. Zones are sorted by name, zone `i` has id `i + 1`; rules keep
/// the merged file order and rule `i` has id `i`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Zones, sorted by name.
    pub zones: Vec<Zone>,
    /// Rules, in merged order.
    pub rules: Vec<Rule>,
}

/// A named set of address prefixes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Zone {
    /// Zone name.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Prefixes, in file order, without host bits. Shared, not copied, by the policies
    /// a reload keeps (the one in force, the roll-back target) when the zone did not
    /// change.
    pub cidrs: Arc<[IpNet]>,
    /// Whether flows to or from the zone are only logged (`mode = "audit"`).
    pub audit: bool,
    /// Where the zone is defined.
    pub origin: Origin,
}

/// The zones on one side of a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ZoneSet {
    /// Every zone, `world` included.
    Any,
    /// These zone ids, sorted and without duplicates.
    Zones(Vec<u32>),
}

impl ZoneSet {
    /// Whether zone `id` is in the set.
    pub fn contains(&self, id: u32) -> bool {
        match self {
            ZoneSet::Any => true,
            ZoneSet::Zones(ids) => ids.binary_search(&id).is_ok(),
        }
    }

    /// The zone ids of the set, given the number of zones `world` included.
    pub fn ids(&self, zone_count: u32) -> Vec<u32> {
        match self {
            ZoneSet::Any => (WORLD_ZONE..zone_count).collect(),
            ZoneSet::Zones(ids) => ids.clone(),
        }
    }
}

/// An inclusive range of ports; in JSON `{"first": 104, "last": 104}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct PortRange {
    /// First port.
    pub first: u16,
    /// Last port (≥ `first`).
    pub last: u16,
}

impl PortRange {
    /// Whether `port` is in the range.
    pub fn contains(&self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }
}

/// One `[[allow]]` rule: `from` zones may open connections to `to` zones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Initiator zones.
    pub from: ZoneSet,
    /// Responder zones.
    pub to: ZoneSet,
    /// Allowed destination port ranges by protocol (none listed: none allowed); ICMP
    /// echo, which has no port, is allowed as port 0.
    pub allowed: BTreeMap<Protocol, Vec<PortRange>>,
    /// Catalogue services the rule names (`services = [...]`), as written; their ports
    /// are already in `allowed`.
    pub services: Vec<String>,
    /// Why a rule the lateral-movement lint flags was accepted (`reviewed = "..."`).
    pub reviewed: Option<String>,
    /// Free text.
    pub description: Option<String>,
    /// Where the rule is written (its `[[allow]]` header).
    pub origin: Origin,
}

impl Rule {
    /// The port ranges this rule allows for `proto::*` code `proto`; ICMP is port 0.
    pub fn ports(&self, proto: u8) -> &[PortRange] {
        Protocol::from_code(proto)
            .and_then(|p| self.allowed.get(&p))
            .map_or(&[], Vec::as_slice)
    }

    /// Whether the rule allows zone `src` to open a `proto` flow to port `port` of zone `dst`.
    pub fn allows(&self, src: u32, dst: u32, proto: u8, port: u16) -> bool {
        self.from.contains(src)
            && self.to.contains(dst)
            && self.ports(proto).iter().any(|r| r.contains(port))
    }
}

impl Policy {
    /// Number of zone ids in use, `world` included.
    pub fn zone_count(&self) -> u32 {
        self.zones.len() as u32 + 1
    }

    /// Name of zone `id` (`world` for 0 or an unknown id).
    pub fn zone_name(&self, id: u32) -> &str {
        match id.checked_sub(1).and_then(|i| self.zones.get(i as usize)) {
            Some(zone) => &zone.name,
            None => WORLD,
        }
    }

    /// Id of the zone called `name` (`world` is 0).
    pub fn zone_id(&self, name: &str) -> Option<u32> {
        if name == WORLD {
            return Some(WORLD_ZONE);
        }
        self.zones
            .binary_search_by(|z| z.name.as_str().cmp(name))
            .ok()
            .map(|i| i as u32 + 1)
    }

    /// Id of the first rule that allows `src` to open `proto` flows to port `port` of `dst`.
    pub fn first_rule(&self, src: u32, dst: u32, proto: u8, port: u16) -> Option<u32> {
        self.rules
            .iter()
            .position(|r| r.allows(src, dst, proto, port))
            .map(|i| i as u32)
    }

    /// Number of prefixes of all zones.
    pub fn cidr_count(&self) -> usize {
        self.zones.iter().map(|z| z.cidrs.len()).sum()
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}
