//! Lookups in the policy of a slot: an address's zone, and the rule allowing a
//! service between two zones, with the break-glass grants as the fallback; and
//! whether an address is this host's own.
use aya_ebpf::maps::lpm_trie::Key;
use ward_common::{
    family, proto, slot_of, zone_key_v4, zone_key_v6, zone_skip, Addr, AddrKey, BreakglassKey,
    HostKeyV4, HostKeyV6, NetKeyV6, RulePairKey, FLAG_BREAKGLASS, NO_RULE, RANGE_SEARCH_STEPS,
    SLOT_RULE_RANGES, WORLD_ZONE, ZONE_KEY_SLOT_BITS,
};

use crate::{
    context::{Settings, ZonePair},
    maps::{
        BREAKGLASS, HOSTS_V4, HOSTS_V6, HOST_ADDRS, NETS_V6, OWN_FILTER, RULE_PAIRS, RULE_RANGES,
        ZONES_V4, ZONES_V6,
    },
};

/// The zone value of `addr` in `slot` (id and `ZONE_*` flags) of its longest covering
/// prefix: an exact host (hash), else an IPv6 /64 without longer prefixes inside
/// (hash), else the trie; `WORLD_ZONE` when no zone's prefix covers it. A place the
/// slot has no entry in (`skip`, `zone_skip` bits) is not consulted. Not inlined: the
/// verifier then walks its branches (each place a slot may leave empty, both ways) once
/// per caller, not once more for each path its caller took to the call.
#[inline(never)]
pub fn zone_of(slot: u8, skip: u8, fam: u8, addr: &Addr) -> u32 {
    // SAFETY (each `get`): the entry stays valid for the program run (RCU); its u32 is
    // read at once, so a concurrent rewrite yields the old or the new value.
    let found = if fam == family::V4 {
        if skip & zone_skip::HOSTS_V4 == 0 {
            if let Some(zone) = unsafe { HOSTS_V4.get(&HostKeyV4::new(slot, addr[0])) } {
                return *zone;
            }
        }
        if skip & zone_skip::TRIE_V4 != 0 {
            return WORLD_ZONE;
        }
        let key = Key::new(
            ZONE_KEY_SLOT_BITS + 32,
            zone_key_v4(slot, addr[0].to_ne_bytes()),
        );
        ZONES_V4.get(&key).copied()
    } else {
        if skip & zone_skip::HOSTS_V6 == 0 {
            if let Some(zone) = unsafe { HOSTS_V6.get(&HostKeyV6::new(slot, *addr)) } {
                return *zone;
            }
        }
        if skip & zone_skip::NETS_V6 == 0 {
            if let Some(zone) = unsafe { NETS_V6.get(&NetKeyV6::new(slot, addr)) } {
                return *zone;
            }
        }
        if skip & zone_skip::TRIE_V6 != 0 {
            return WORLD_ZONE;
        }
        let key = Key::new(
            ZONE_KEY_SLOT_BITS + 128,
            zone_key_v6(slot, addr_bytes(addr)),
        );
        ZONES_V6.get(&key).copied()
    };
    found.unwrap_or(WORLD_ZONE)
}

/// The zone values of `src` and `dst` (see [`zone_of`]) in the slot in force, as one
/// [`ZonePair`]: every step that needs zones needs both.
#[inline(always)]
pub fn zone_pair(s: &Settings, fam: u8, src: &Addr, dst: &Addr) -> ZonePair {
    let slot = slot_of(s.generation);
    let src = zone_of(slot, s.zone_skip, fam, src);
    let dst = zone_of(slot, s.zone_skip, fam, dst);
    ZonePair::new(src, dst)
}

/// Whether `addr` is one of this host's own addresses (as the agent last wrote them):
/// looked up in the table only when the filter in front of it has the address's bit.
#[inline(always)]
pub fn is_own(fam: u8, addr: &Addr) -> bool {
    if OWN_FILTER.get(0).is_some_and(|f| !f.may_hold(fam, addr)) {
        return false;
    }
    let key = AddrKey {
        addr: *addr,
        family: fam,
        _pad: 0,
        _pad2: 0,
    };
    HOST_ADDRS.get_ptr(&key).is_some()
}

/// The bytes of an address, as the IPv6 tries take them.
#[inline(always)]
pub fn addr_bytes(a: &Addr) -> [u8; 16] {
    let (w0, w1, w2, w3) = (
        a[0].to_ne_bytes(),
        a[1].to_ne_bytes(),
        a[2].to_ne_bytes(),
        a[3].to_ne_bytes(),
    );
    [
        w0[0], w0[1], w0[2], w0[3], w1[0], w1[1], w1[2], w1[3], w2[0], w2[1], w2[2], w2[3], w3[0],
        w3[1], w3[2], w3[3],
    ]
}

/// The rule allowing `proto` to port `dport` from `src_zone` to `dst_zone`: the
/// policy's, else a break-glass grant's that has not expired; [`NO_RULE`] if none.
/// A plain id, not an `Option`: an `Option`'s unset payload would reach the verifier
/// as a read of an uninitialised register.
#[inline(always)]
pub fn rule_of(s: &Settings, slot: u8, src_zone: u32, dst_zone: u32, proto: u8, dport: u16) -> u32 {
    let port = if proto == proto::ICMP { 0 } else { dport };
    let rule = policy_rule(slot, src_zone, dst_zone, proto, port);
    if rule != NO_RULE {
        return rule;
    }
    if s.flags & FLAG_BREAKGLASS == 0 {
        return NO_RULE;
    }
    let key = BreakglassKey {
        src_zone,
        dst_zone,
        port,
        proto,
        slot,
    };
    // SAFETY: the entry's memory stays valid for the program run (RCU); it is read at
    // once, two plain integers, so a concurrent update can at worst judge this packet
    // by the old or the new grant.
    match unsafe { BREAKGLASS.get(&key) } {
        Some(grant) if s.now() < grant.expires_ns => grant.rule_id,
        _ => NO_RULE,
    }
}

/// The policy's rule for `port` of (`src_zone`, `dst_zone`, `proto`) in `slot`: one
/// lookup of the group in the pair hash, then a binary search of its sorted, disjoint
/// ranges for the last one starting at or below `port`, which holds the port or
/// nothing does. [`NO_RULE`] if none.
#[inline(always)]
fn policy_rule(slot: u8, src_zone: u32, dst_zone: u32, proto: u8, port: u16) -> u32 {
    let key = RulePairKey::new(slot, src_zone, dst_zone, proto);
    // SAFETY: the entry stays valid for the program run (RCU); its two integers are
    // read at once (the agent never rewrites the pairs of the slot in force).
    let Some(pair) = (unsafe { RULE_PAIRS.get(&key) }) else {
        return NO_RULE;
    };
    let mut at = u32::from(slot) * SLOT_RULE_RANGES + pair.first;
    let mut left = pair.count;
    for _ in 0..RANGE_SEARCH_STEPS {
        if left <= 1 {
            break;
        }
        let half = left / 2;
        let Some(range) = RULE_RANGES.get(at + half) else {
            return NO_RULE;
        };
        if range.first <= port {
            at += half;
        }
        left -= half;
    }
    match RULE_RANGES.get(at) {
        Some(range) if left == 1 && range.first <= port && port <= range.last => range.rule_id,
        _ => NO_RULE,
    }
}
