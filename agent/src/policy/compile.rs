//! Compiling a [`Policy`] into the entries of the dataplane's zone and rule tables.
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};
use std::sync::Arc;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use sha2::{Digest, Sha256};

use super::{Origin, Policy, Protocol};

/// One port range of the rule tables: the first rule allowing `proto` from `src_zone`
/// to the ports `first..=last` of `dst_zone`. The ranges of one (`src_zone`,
/// `dst_zone`, `proto`) are disjoint; adjacent ranges have different rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RuleEntry {
    /// Initiator's zone id.
    pub src_zone: u32,
    /// Responder's zone id.
    pub dst_zone: u32,
    /// `proto::*` code.
    pub proto: u8,
    /// First port of the range (0 for ICMP).
    pub first: u16,
    /// Last port of the range (0 for ICMP).
    pub last: u16,
    /// Id of the rule (its index in the merged rule list).
    pub rule_id: u32,
}

impl RuleEntry {
    /// Whether the range holds `port`.
    pub fn covers(&self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }
}

/// A rule that allows nothing that earlier rules do not already allow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShadowedRule {
    /// The shadowed rule's id.
    pub rule_id: u32,
    /// Earlier rules that own what it allows, by id.
    pub by: Vec<u32>,
}

/// The dataplane form of a policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompiledPolicy {
    /// Zone names by id; `[0]` is `world`.
    pub zone_names: Vec<String>,
    /// IPv4 prefixes and their zone ids, sorted (shared with the compiled form of a
    /// policy with the same zones: see [`compile_like`]).
    pub v4: Arc<[(Ipv4Net, u32)]>,
    /// IPv6 prefixes and their zone ids, sorted (shared likewise).
    pub v6: Arc<[(Ipv6Net, u32)]>,
    /// Rule ranges, sorted.
    pub rules: Vec<RuleEntry>,
    /// Where each rule id is written.
    pub rule_origins: Vec<Origin>,
    /// Rules that own no port of any zone pair, in id order.
    pub shadowed: Vec<ShadowedRule>,
    /// Ids of the zones in audit mode, sorted.
    pub audited_zones: Vec<u32>,
    /// SHA-256 (hex) of the zone names, zone entries, audited zones and rule ranges.
    pub hash: String,
}

impl CompiledPolicy {
    /// The number of (source zone, destination zone, protocol) groups of `rules`: the
    /// entries of the rule pair hash.
    pub fn rule_groups(&self) -> usize {
        let group = |r: &RuleEntry| (r.src_zone, r.dst_zone, r.proto);
        self.rules.chunk_by(|a, b| group(a) == group(b)).count()
    }

    /// The id of the zone called `name` (`world` is 0).
    pub fn zone_id(&self, name: &str) -> Option<u32> {
        self.zone_names
            .iter()
            .position(|z| z == name)
            .map(|id| id as u32)
    }
}

/// A port interval of one rule for one (source zone, destination zone, protocol).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Segment {
    key: (u32, u32, u8),
    first: u32,
    last: u32,
    rule: u32,
}

/// A disjoint port interval and the first rule covering it.
#[derive(Clone, Copy)]
struct Owned {
    first: u32,
    last: u32,
    rule: u32,
}

/// Compiles `policy` as `docs/dataplane.md` ("Rule compilation") says.
pub fn compile(policy: &Policy) -> CompiledPolicy {
    let (mut v4, mut v6) = (Vec::new(), Vec::new());
    for (zone, id) in policy.zones.iter().zip(1u32..) {
        for net in zone.cidrs.iter() {
            match net {
                IpNet::V4(n) => v4.push((*n, id)),
                IpNet::V6(n) => v6.push((*n, id)),
            }
        }
    }
    v4.sort_unstable();
    v6.sort_unstable();
    compile_with(policy, v4.into(), v6.into())
}

/// Compiles `policy`, whose zones are those of `previous` (names, order and
/// prefixes: `None` otherwise), sharing the sorted prefix lists of its compiled form.
pub(crate) fn compile_like(
    policy: &Policy,
    previous: &Policy,
    compiled: &CompiledPolicy,
) -> Option<CompiledPolicy> {
    let same = |(a, b): (&super::Zone, &super::Zone)| a.name == b.name && a.cidrs == b.cidrs;
    let zones = policy.zones.iter().zip(&previous.zones);
    if policy.zones.len() != previous.zones.len() || !zones.into_iter().all(same) {
        return None;
    }
    Some(compile_with(
        policy,
        compiled.v4.clone(),
        compiled.v6.clone(),
    ))
}

/// Compiles `policy` whose zone prefixes are `v4` and `v6`, sorted.
fn compile_with(
    policy: &Policy,
    v4: Arc<[(Ipv4Net, u32)]>,
    v6: Arc<[(Ipv6Net, u32)]>,
) -> CompiledPolicy {
    let zone_names = std::iter::once(super::WORLD.to_owned())
        .chain(policy.zones.iter().map(|z| z.name.clone()))
        .collect();
    let segments = segments(policy);
    let (groups, owned) = sweep(&segments);
    let mut owns = vec![false; policy.rules.len()];
    owned.iter().for_each(|o| owns[o.rule as usize] = true);
    let shadowed = shadowed(&segments, &groups, &owned, &owns);
    let mut rules = Vec::new();
    for (segs, intervals) in &groups {
        let (src_zone, dst_zone, proto) = segments[segs.start].key;
        let port = |p: u32| u16::try_from(p).expect("a port");
        rules.extend(owned[intervals.clone()].iter().map(|o| RuleEntry {
            src_zone,
            dst_zone,
            proto,
            first: port(o.first),
            last: port(o.last),
            rule_id: o.rule,
        }));
    }
    let rule_origins = policy.rules.iter().map(|r| r.origin.clone()).collect();
    let mut compiled = CompiledPolicy {
        zone_names,
        v4,
        v6,
        rules,
        rule_origins,
        shadowed,
        audited_zones: (1u32..)
            .zip(&policy.zones)
            .filter(|(_, z)| z.audit)
            .map(|(id, _)| id)
            .collect(),
        hash: String::new(),
    };
    compiled.hash = hash(&compiled);
    compiled
}

/// Every rule's port intervals for every zone pair and protocol, sorted by key and first port.
fn segments(policy: &Policy) -> Vec<Segment> {
    let zone_count = policy.zone_count();
    let mut segments = Vec::new();
    for (rule, id) in policy.rules.iter().zip(0u32..) {
        let (from, to) = (rule.from.ids(zone_count), rule.to.ids(zone_count));
        // The order does not matter: segments are sorted below.
        for p in Protocol::ALL.map(Protocol::code) {
            for range in rule.ports(p) {
                for &src in &from {
                    for &dst in &to {
                        let (first, last) = (u32::from(range.first), u32::from(range.last));
                        segments.push(Segment {
                            key: (src, dst, p),
                            first,
                            last,
                            rule: id,
                        });
                    }
                }
            }
        }
    }
    segments.sort_unstable();
    segments
}

type Groups = Vec<(std::ops::Range<usize>, std::ops::Range<usize>)>;

/// Splits each key's segments into disjoint intervals owned by their first rule, merging
/// adjacent intervals of the same owner. Returns, per key, its segment and interval ranges.
fn sweep(segments: &[Segment]) -> (Groups, Vec<Owned>) {
    let mut groups = Vec::new();
    let mut owned: Vec<Owned> = Vec::new();
    let mut points = Vec::new();
    let mut active = BinaryHeap::new();
    for group in segments.chunk_by(|a, b| a.key == b.key) {
        let start = groups
            .last()
            .map_or(0, |(s, _): &(std::ops::Range<usize>, _)| s.end);
        let first_interval = owned.len();
        points.clear();
        points.extend(group.iter().flat_map(|s| [s.first, s.last + 1]));
        points.sort_unstable();
        points.dedup();
        active.clear();
        let mut next = 0;
        for w in points.windows(2) {
            let (p, end) = (w[0], w[1] - 1);
            while next < group.len() && group[next].first <= p {
                active.push(Reverse((group[next].rule, group[next].last)));
                next += 1;
            }
            while active.peek().is_some_and(|Reverse((_, last))| *last < p) {
                active.pop();
            }
            let Some(&Reverse((rule, _))) = active.peek() else {
                continue;
            };
            let in_group = owned.len() > first_interval;
            match owned.last_mut() {
                Some(o) if in_group && o.rule == rule && o.last + 1 == p => o.last = end,
                _ => owned.push(Owned {
                    first: p,
                    last: end,
                    rule,
                }),
            }
        }
        groups.push((start..start + group.len(), first_interval..owned.len()));
    }
    (groups, owned)
}

/// The rules that own nothing, with the owners of the intervals they cover.
fn shadowed(
    segments: &[Segment],
    groups: &Groups,
    owned: &[Owned],
    owns: &[bool],
) -> Vec<ShadowedRule> {
    let mut by: Vec<(u32, BTreeSet<u32>)> = Vec::new();
    let mut index = std::collections::HashMap::new();
    for (segs, intervals) in groups {
        let owned = &owned[intervals.clone()];
        for s in segments[segs.clone()]
            .iter()
            .filter(|s| !owns[s.rule as usize])
        {
            let slot = *index.entry(s.rule).or_insert_with(|| {
                by.push((s.rule, BTreeSet::new()));
                by.len() - 1
            });
            let from = owned.partition_point(|o| o.last < s.first);
            by[slot].1.extend(
                owned[from..]
                    .iter()
                    .take_while(|o| o.first <= s.last)
                    .map(|o| o.rule),
            );
        }
    }
    by.sort_unstable_by_key(|(rule, _)| *rule);
    by.into_iter()
        .map(|(rule_id, by)| ShadowedRule {
            rule_id,
            by: by.into_iter().collect(),
        })
        .collect()
}

/// The smallest set of aligned prefixes (first port, prefix bits) covering `first..=last`.
pub(crate) fn prefixes(first: u32, last: u32) -> Vec<(u16, u8)> {
    let mut out = Vec::new();
    let mut lo = first;
    while lo <= last {
        let mut size_log = lo.trailing_zeros().min(16);
        while lo + (1 << size_log) - 1 > last {
            size_log -= 1;
        }
        out.push((lo as u16, (16 - size_log) as u8));
        lo += 1 << size_log;
    }
    out
}

/// SHA-256 (hex) of the compiled content, independent of file names and lines. Each
/// rule range is hashed as the port prefixes covering it (as earlier builds wrote
/// them into a rule trie), so the same policy keeps its hash across builds.
fn hash(c: &CompiledPolicy) -> String {
    let mut h = Sha256::new();
    h.update(b"ward-policy-v1\0");
    for name in &c.zone_names {
        h.update(name.as_bytes());
        h.update([0]);
    }
    for id in &c.audited_zones {
        h.update(id.to_be_bytes());
    }
    h.update([0xff]);
    for (net, id) in c.v4.iter() {
        h.update(net.addr().octets());
        h.update([net.prefix_len()]);
        h.update(id.to_be_bytes());
    }
    h.update([0xff]);
    for (net, id) in c.v6.iter() {
        h.update(net.addr().octets());
        h.update([net.prefix_len()]);
        h.update(id.to_be_bytes());
    }
    h.update([0xff]);
    for r in &c.rules {
        for (port, port_bits) in prefixes(u32::from(r.first), u32::from(r.last)) {
            h.update(r.src_zone.to_be_bytes());
            h.update(r.dst_zone.to_be_bytes());
            h.update([r.proto]);
            h.update(port.to_be_bytes());
            h.update([port_bits]);
            h.update(r.rule_id.to_be_bytes());
        }
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}
