//! The verdict core shared by every hook: connection tracking, zones, rules, counters.
use aya_ebpf::{helpers::bpf_ktime_get_ns, maps::lpm_trie::Key};
use ward_common::{
    family, proto, rule_key, slot_of, timeouts, zone_key_v4, zone_key_v6, Addr, Counter, CtKey,
    CtValue, FragKey, Reason, ZonePairKey, CT_INITIATOR_A, RULE_KEY_FIXED_BITS, WORLD_ZONE,
    ZONE_KEY_SLOT_BITS,
};

use crate::{
    maps::{
        CONFIG, CONNTRACK, FRAGMENTS, REASON_COUNTERS, RULES, ZONES_V4, ZONES_V6,
        ZONE_PAIR_COUNTERS,
    },
    parse::{self, Flow, Fragment, Frame, Ip, Network, Transport},
};

/// Judges one frame and counts the verdict; `true` means pass.
#[inline(always)]
pub fn judge(frame: &Frame) -> bool {
    let (reason, zones) = decide(frame);
    count(reason, zones, frame.len as u64);
    matches!(reason.verdict(), ward_common::Verdict::Allow)
}

/// Zone pair a verdict is counted under.
type Zones = Option<(u32, u32)>;

#[inline(always)]
fn decide(frame: &Frame) -> (Reason, Zones) {
    let mut ip = Ip {
        family: 0,
        src: [0; 4],
        dst: [0; 4],
        ip_proto: 0,
        l4: 0,
        end: 0,
        fragment: Fragment::None,
        frag_id: 0,
        frag_proto: 0,
    };
    match parse::network(frame, &mut ip) {
        Network::NotIp => return (Reason::NotIp, None),
        Network::Malformed => return (Reason::Malformed, None),
        Network::Ip => {}
    }
    let generation = match CONFIG.get_ptr(0) {
        // An aligned 8-byte load: the agent publishes a new policy with one such store.
        Some(c) => unsafe { core::ptr::read_volatile(&(*c).generation) },
        None => 0,
    };
    if generation == 0 {
        return (Reason::NoPolicy, None);
    }
    let now = unsafe { bpf_ktime_get_ns() };
    let clock = Now {
        generation,
        ns: now,
    };
    if ip.fragment == Fragment::NonFirst {
        let fresh = unsafe { FRAGMENTS.get(&frag_key(&ip)) }
            .is_some_and(|t| now.wrapping_sub(*t) < timeouts::FRAGMENT_NS);
        return if fresh {
            (Reason::FragmentOfAllowed, None)
        } else {
            (Reason::FragmentWithoutFirst, None)
        };
    }
    let mut flow = Flow {
        proto: 0,
        sport: 0,
        dport: 0,
    };
    let mut key = CtKey::default();
    let may_open = match parse::transport(frame, &ip, &mut flow, &mut key) {
        Transport::Malformed => return (Reason::Malformed, None),
        Transport::NeighbourDiscovery => return (Reason::NeighbourDiscovery, None),
        Transport::Opens => true,
        Transport::ReplyOnly => false,
        Transport::Error => {
            match parse::quoted(frame, &ip, &mut key) {
                Transport::Malformed => return (Reason::Malformed, None),
                Transport::Error => {}
                _ => return (Reason::NoRule, None),
            }
            let mut zones = (WORLD_ZONE, WORLD_ZONE);
            return match tracked(&key, &clock, &mut zones) {
                Tracked::Yes => {
                    if ip.fragment == Fragment::First {
                        remember_fragment(&ip, now);
                    }
                    (Reason::Related, Some(zones))
                }
                Tracked::Revoked => (Reason::PolicyRevoked, Some(zones)),
                Tracked::No => (Reason::NoRule, None),
            };
        }
        Transport::Other => {
            let slot = slot_of(generation);
            let zones = (
                zone_of(slot, ip.family, &ip.src),
                zone_of(slot, ip.family, &ip.dst),
            );
            return (Reason::NoRule, Some(zones));
        }
    };
    let mut zones = (WORLD_ZONE, WORLD_ZONE);
    match tracked(&key, &clock, &mut zones) {
        // Counted under the connection's (initiator, responder) zones, replies included.
        Tracked::Yes => {
            if ip.fragment == Fragment::First {
                remember_fragment(&ip, now);
            }
            return (Reason::Established, Some(zones));
        }
        Tracked::Revoked => return (Reason::PolicyRevoked, Some(zones)),
        Tracked::No => {}
    }
    if !may_open {
        let slot = slot_of(generation);
        let zones = (
            zone_of(slot, ip.family, &ip.src),
            zone_of(slot, ip.family, &ip.dst),
        );
        return (Reason::NoRule, Some(zones));
    }
    let reason = open(&ip, &flow, &key, &clock, &mut zones);
    (reason, Some(zones))
}

/// Judges a new flow by the policy and tracks it when a rule allows it.
/// Not inlined, so that its keys get a stack frame of their own.
#[inline(never)]
fn open(ip: &Ip, flow: &Flow, key: &CtKey, now: &Now, zones: &mut (u32, u32)) -> Reason {
    let (generation, now) = (now.generation, now.ns);
    let slot = slot_of(generation);
    let src_zone = zone_of(slot, ip.family, &ip.src);
    let dst_zone = zone_of(slot, ip.family, &ip.dst);
    *zones = (src_zone, dst_zone);
    let Some(rule_id) = rule_of(slot, src_zone, dst_zone, flow, flow.dport) else {
        return Reason::NoRule;
    };
    let src_is_a = key.addr_a == ip.src && key.port_a == flow.sport;
    let value = CtValue {
        last_seen_ns: now,
        generation,
        rule_id,
        src_zone,
        dst_zone,
        flags: if src_is_a { CT_INITIATOR_A } else { 0 },
        _pad: [0; 3],
    };
    // A full table evicts its least recently used entry; an insert cannot fail otherwise.
    let _ = CONNTRACK.insert(key, &value, 0);
    if ip.fragment == Fragment::First {
        remember_fragment(ip, now);
    }
    Reason::AllowedByRule
}

/// Lets the rest of an allowed first fragment's packet through.
#[inline(always)]
fn remember_fragment(ip: &Ip, now: u64) {
    let _ = FRAGMENTS.insert(&frag_key(ip), &now, 0);
}

#[inline(always)]
fn frag_key(ip: &Ip) -> FragKey {
    FragKey {
        src: ip.src,
        dst: ip.dst,
        id: ip.frag_id,
        ip_proto: ip.frag_proto,
        family: ip.family,
        _pad: [0; 2],
    }
}

/// The policy generation in force and the time, as one packet sees them.
struct Now {
    generation: u64,
    ns: u64,
}

/// What connection tracking knows of a packet.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tracked {
    /// Tracked and allowed.
    Yes,
    /// Tracked, but the policy in force no longer allows it.
    Revoked,
    /// Not tracked, or expired.
    No,
}

/// Looks `key` up, re-judging it if the policy changed since it was allowed.
/// `zones` receives the connection's (initiator, responder) zones when it is tracked.
/// Not inlined: two callers share it, and its stack frame stays separate.
#[inline(never)]
fn tracked(key: &CtKey, now: &Now, zones: &mut (u32, u32)) -> Tracked {
    let (generation, now) = (now.generation, now.ns);
    let Some(entry) = CONNTRACK.get_ptr_mut(key) else {
        return Tracked::No;
    };
    let entry = unsafe { &mut *entry };
    let timeout = match key.proto {
        proto::TCP => timeouts::TCP_NS,
        proto::UDP => timeouts::UDP_NS,
        _ => timeouts::ICMP_NS,
    };
    let idle = now.wrapping_sub(entry.last_seen_ns);
    if idle > timeout {
        return Tracked::No;
    }
    if idle > 1_000_000_000 {
        entry.last_seen_ns = now;
    }
    if entry.generation == generation {
        *zones = (entry.src_zone, entry.dst_zone);
        return Tracked::Yes;
    }
    // The policy changed since this connection was allowed: judge it again as opened.
    let (init, resp, resp_port) = if entry.flags & CT_INITIATOR_A != 0 {
        (&key.addr_a, &key.addr_b, key.port_b)
    } else {
        (&key.addr_b, &key.addr_a, key.port_a)
    };
    let slot = slot_of(generation);
    let src_zone = zone_of(slot, key.family, init);
    let dst_zone = zone_of(slot, key.family, resp);
    *zones = (src_zone, dst_zone);
    let flow = Flow {
        proto: key.proto,
        sport: 0,
        dport: resp_port,
    };
    match rule_of(slot, src_zone, dst_zone, &flow, resp_port) {
        Some(rule_id) => {
            entry.generation = generation;
            entry.rule_id = rule_id;
            entry.src_zone = src_zone;
            entry.dst_zone = dst_zone;
            Tracked::Yes
        }
        None => {
            let _ = CONNTRACK.remove(key);
            Tracked::Revoked
        }
    }
}

#[inline(always)]
fn zone_of(slot: u8, fam: u8, addr: &Addr) -> u32 {
    let found = if fam == family::V4 {
        let key = Key::new(
            ZONE_KEY_SLOT_BITS + 32,
            zone_key_v4(slot, addr[0].to_ne_bytes()),
        );
        ZONES_V4.get(&key).copied()
    } else {
        let key = Key::new(
            ZONE_KEY_SLOT_BITS + 128,
            zone_key_v6(slot, addr_bytes(addr)),
        );
        ZONES_V6.get(&key).copied()
    };
    found.unwrap_or(WORLD_ZONE)
}

#[inline(always)]
fn addr_bytes(a: &Addr) -> [u8; 16] {
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

#[inline(always)]
fn rule_of(slot: u8, src_zone: u32, dst_zone: u32, flow: &Flow, dport: u16) -> Option<u32> {
    let port = if flow.proto == proto::ICMP { 0 } else { dport };
    let key = Key::new(
        RULE_KEY_FIXED_BITS + 16,
        rule_key(slot, src_zone, dst_zone, flow.proto, port),
    );
    RULES.get(&key).copied()
}

#[inline(always)]
fn count(reason: Reason, zones: Zones, bytes: u64) {
    if let Some(c) = REASON_COUNTERS.get_ptr_mut(reason as u32) {
        unsafe {
            (*c).packets += 1;
            (*c).bytes += bytes;
        }
    }
    let Some((src_zone, dst_zone)) = zones else {
        return;
    };
    let key = ZonePairKey {
        src_zone,
        dst_zone,
        verdict: reason.verdict() as u32,
        _pad: 0,
    };
    match ZONE_PAIR_COUNTERS.get_ptr_mut(&key) {
        Some(c) => unsafe {
            (*c).packets += 1;
            (*c).bytes += bytes;
        },
        None => {
            let _ = ZONE_PAIR_COUNTERS.insert(&key, &Counter { packets: 1, bytes }, 0);
        }
    }
}
