//! What a slot of the zone and rule maps holds once a policy is written there, and
//! the difference between two such contents: what a reload must remove, and what it
//! must write (new entries and entries whose value changed). Kept in memory by the
//! dataplane per slot, so that a one-rule change writes a handful of entries.
//!
//! A zone prefix goes to one of the zone hashes when a hash lookup finds it exactly
//! (`ward_common::hosts`): IPv4 /32s, IPv6 /128s, and IPv6 /64s with no prefix of
//! 65–127 bits inside them; every other prefix to the family's trie. The rule ranges
//! of each (zone pair, protocol) are one run of the slot's part of the range array,
//! named by the group's entry in the pair hash (`ward_common::rules`).
use std::collections::HashSet;
use std::sync::Arc;

use ipnet::{Ipv4Net, Ipv6Net};
use ward_common::zone_skip;
use ward_common::{
    addr_from_bytes, zone_key_v4, zone_key_v6, HostKeyV4, HostKeyV6, NetKeyV6, RulePair,
    RulePairKey, RuleRange, ZoneKeyV4, ZoneKeyV6, NET_V6_PREFIX, ZONE_AUDIT, ZONE_KEY_SLOT_BITS,
    ZONE_QUARANTINE_ALLOW,
};

use crate::policy::CompiledPolicy;

/// Zone flags that come from the agent configuration rather than the policy.
#[derive(Debug, Default)]
pub struct ZoneFlags {
    /// Ids of the zones quarantined hosts may still reach.
    pub quarantine_allow: Vec<u32>,
}

/// Names how a slot's entries are laid out over the maps, in the slot digest: a slot
/// an earlier build wrote otherwise (every zone prefix in the tries) is not taken for
/// one this build wrote, so its policy is written again rather than trusted, and its
/// difference writes never start from a layout the slot does not have.
const LAYOUT: &[u8] = b"zone hashes: /32, /128, plain /64; rule pairs and ranges";

impl ZoneFlags {
    /// A non-zero digest of `policy` with these flags, as this build lays it out: what
    /// a slot holds once written.
    pub fn digest(&self, policy: &CompiledPolicy) -> u64 {
        use sha2::{Digest as _, Sha256};
        let mut h = Sha256::new();
        h.update(LAYOUT);
        h.update(policy.hash.as_bytes());
        for id in &self.quarantine_allow {
            h.update(id.to_be_bytes());
        }
        let bytes: [u8; 8] = h.finalize()[..8].try_into().expect("8 of 32 bytes");
        u64::from_be_bytes(bytes).max(1)
    }
}

/// One entry: key (slot 0), prefix length (of the trie key; of the address for a
/// zone hash, where it is implied by the map; 0 for the rule tables), value.
pub type Entry<K, V = u32> = (K, u32, V);

/// The entries of one slot of each map, each list sorted by (key, prefix length); the
/// slot of every key is 0 (the slot is set when written). The zone lists are shared
/// with the entries of a policy with the same zones (see [`SlotEntries::of_like`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SlotEntries {
    /// IPv4 zone trie: the prefixes shorter than /32.
    pub v4: Arc<[Entry<ZoneKeyV4>]>,
    /// IPv6 zone trie: the prefixes in neither IPv6 hash.
    pub v6: Arc<[Entry<ZoneKeyV6>]>,
    /// IPv4 host hash (/32s).
    pub hosts_v4: Arc<[Entry<HostKeyV4>]>,
    /// IPv6 host hash (/128s).
    pub hosts_v6: Arc<[Entry<HostKeyV6>]>,
    /// IPv6 /64 hash: the /64s with no prefix of 65–127 bits inside.
    pub nets_v6: Arc<[Entry<NetKeyV6>]>,
    /// Rule pair hash: each (zone pair, protocol) with a rule, and its run of ranges.
    pub pairs: Vec<Entry<RulePairKey, RulePair>>,
    /// The slot's part of the range array, by index from the part's start.
    pub ranges: Vec<Entry<u32, RuleRange>>,
    /// What the zone lists were made of.
    zones_of: ZonesOf,
}

/// What a slot's zone entries are made of: the compiled prefix lists (by identity: a
/// reload that keeps the zones shares them) and the zones' flags.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct ZonesOf {
    v4: Arc<[(Ipv4Net, u32)]>,
    v6: Arc<[(Ipv6Net, u32)]>,
    audited: Vec<u32>,
    quarantine_allow: Vec<u32>,
}

impl ZonesOf {
    fn new(policy: &CompiledPolicy, flags: &ZoneFlags) -> Self {
        ZonesOf {
            v4: policy.v4.clone(),
            v6: policy.v6.clone(),
            audited: policy.audited_zones.clone(),
            quarantine_allow: flags.quarantine_allow.clone(),
        }
    }

    /// Whether both give the same zone entries, known without building them.
    fn same(&self, other: &ZonesOf) -> bool {
        Arc::ptr_eq(&self.v4, &other.v4)
            && Arc::ptr_eq(&self.v6, &other.v6)
            && self.audited == other.audited
            && self.quarantine_allow == other.quarantine_allow
    }
}

impl SlotEntries {
    /// What a slot holds once `policy` is written there with `flags`.
    pub fn of(policy: &CompiledPolicy, flags: &ZoneFlags) -> Self {
        Self::of_like(policy, flags, &[])
    }

    /// As [`SlotEntries::of`], taking the zone entries of one of `known` made of the
    /// same compiled prefix lists with the same flags (a reload that changed only
    /// rules) rather than building them again.
    pub fn of_like(policy: &CompiledPolicy, flags: &ZoneFlags, known: &[&SlotEntries]) -> Self {
        let zones_of = ZonesOf::new(policy, flags);
        let mut e = match known.iter().find(|k| k.zones_of.same(&zones_of)) {
            Some(k) => SlotEntries {
                v4: k.v4.clone(),
                v6: k.v6.clone(),
                hosts_v4: k.hosts_v4.clone(),
                hosts_v6: k.hosts_v6.clone(),
                nets_v6: k.nets_v6.clone(),
                ..SlotEntries::default()
            },
            None => Self::zones(policy, flags),
        };
        e.zones_of = zones_of;
        for group in policy
            .rules
            .chunk_by(|a, b| (a.src_zone, a.dst_zone, a.proto) == (b.src_zone, b.dst_zone, b.proto))
        {
            let first = e.ranges.len() as u32;
            let key = RulePairKey::new(0, group[0].src_zone, group[0].dst_zone, group[0].proto);
            let count = group.len() as u32;
            e.pairs.push((key, 0, RulePair { first, count }));
            e.ranges.extend(group.iter().zip(first..).map(|(r, index)| {
                let range = RuleRange {
                    first: r.first,
                    last: r.last,
                    rule_id: r.rule_id,
                };
                (index, 0, range)
            }));
        }
        e.pairs.sort_unstable();
        e
    }

    /// The zone entries of `policy` with `flags`, and no rule entries.
    fn zones(policy: &CompiledPolicy, flags: &ZoneFlags) -> Self {
        // Zone trie values carry the zone's flag bits next to its id.
        let zone_value = |id: u32| {
            let mut value = id;
            if policy.audited_zones.binary_search(&id).is_ok() {
                value |= ZONE_AUDIT;
            }
            if flags.quarantine_allow.contains(&id) {
                value |= ZONE_QUARANTINE_ALLOW;
            }
            value
        };
        let prefix = |len: u8| ZONE_KEY_SLOT_BITS + u32::from(len);
        let (mut v4, mut v6, mut hosts_v4, mut hosts_v6, mut nets_v6) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (net, zone) in policy.v4.iter() {
            let octets = net.network().octets();
            if net.prefix_len() == 32 {
                let key = HostKeyV4::new(0, u32::from_ne_bytes(octets));
                hosts_v4.push((key, 32, zone_value(*zone)));
            } else {
                let key = zone_key_v4(0, octets);
                v4.push((key, prefix(net.prefix_len()), zone_value(*zone)));
            }
        }
        let split = split_nets(policy.v6.iter().map(|(net, _)| *net));
        for (net, zone) in policy.v6.iter() {
            let octets = net.network().octets();
            let addr = addr_from_bytes(octets);
            if net.prefix_len() == 128 {
                hosts_v6.push((HostKeyV6::new(0, addr), 128, zone_value(*zone)));
            } else if net.prefix_len() == NET_V6_PREFIX && !split.contains(&net.trunc()) {
                let len = u32::from(NET_V6_PREFIX);
                nets_v6.push((NetKeyV6::new(0, &addr), len, zone_value(*zone)));
            } else {
                let key = zone_key_v6(0, octets);
                v6.push((key, prefix(net.prefix_len()), zone_value(*zone)));
            }
        }
        v4.sort_unstable();
        v6.sort_unstable();
        hosts_v4.sort_unstable();
        hosts_v6.sort_unstable();
        nets_v6.sort_unstable();
        SlotEntries {
            v4: v4.into(),
            v6: v6.into(),
            hosts_v4: hosts_v4.into(),
            hosts_v6: hosts_v6.into(),
            nets_v6: nets_v6.into(),
            ..SlotEntries::default()
        }
    }

    /// Entries over all maps.
    pub fn len(&self) -> usize {
        self.v4.len()
            + self.v6.len()
            + self.hosts_v4.len()
            + self.hosts_v6.len()
            + self.nets_v6.len()
            + self.pairs.len()
            + self.ranges.len()
    }

    /// The places of the zone lookup these entries leave empty (`ward_common::zone_skip`
    /// bits): the programs skip them for the slot that holds these entries.
    pub fn zone_skip(&self) -> u8 {
        [
            (self.hosts_v4.is_empty(), zone_skip::HOSTS_V4),
            (self.v4.is_empty(), zone_skip::TRIE_V4),
            (self.hosts_v6.is_empty(), zone_skip::HOSTS_V6),
            (self.nets_v6.is_empty(), zone_skip::NETS_V6),
            (self.v6.is_empty(), zone_skip::TRIE_V6),
        ]
        .iter()
        .filter(|(empty, _)| *empty)
        .fold(0, |bits, (_, bit)| bits | bit)
    }
}

/// The /64s of `prefixes` that must stay in the trie: those with a prefix of 65–127
/// bits inside them, which is longer than the /64 for the addresses it covers.
fn split_nets(prefixes: impl Iterator<Item = Ipv6Net>) -> HashSet<Ipv6Net> {
    prefixes
        .filter(|n| (NET_V6_PREFIX + 1..128).contains(&n.prefix_len()))
        .map(|n| {
            Ipv6Net::new(n.network(), NET_V6_PREFIX)
                .expect("64 is a valid IPv6 prefix length")
                .trunc()
        })
        .collect()
}

/// What turns one map's slot from its old entries into its new ones.
#[derive(Debug, PartialEq, Eq)]
pub struct Delta<K, V = u32> {
    /// Keys the new entries lack: (key data, prefix length).
    pub remove: Vec<(K, u32)>,
    /// New entries, and entries whose value changed.
    pub write: Vec<Entry<K, V>>,
}

/// The difference from `old` to `new` (both sorted by key data and prefix length).
pub fn delta<K: Ord + Copy, V: PartialEq + Copy>(
    old: &[Entry<K, V>],
    new: &[Entry<K, V>],
) -> Delta<K, V> {
    let (mut remove, mut write) = (Vec::new(), Vec::new());
    let (mut o, mut n) = (old.iter().peekable(), new.iter().peekable());
    loop {
        match (o.peek(), n.peek()) {
            (None, None) => break,
            (Some(&&(k, p, _)), None) => {
                remove.push((k, p));
                o.next();
            }
            (None, Some(&&e)) => {
                write.push(e);
                n.next();
            }
            (Some(&&(ok, op, ov)), Some(&&(nk, np, nv))) => match (ok, op).cmp(&(nk, np)) {
                std::cmp::Ordering::Less => {
                    remove.push((ok, op));
                    o.next();
                }
                std::cmp::Ordering::Greater => {
                    write.push((nk, np, nv));
                    n.next();
                }
                std::cmp::Ordering::Equal => {
                    if ov != nv {
                        write.push((nk, np, nv));
                    }
                    o.next();
                    n.next();
                }
            },
        }
    }
    Delta { remove, write }
}

#[cfg(test)]
mod tests;
