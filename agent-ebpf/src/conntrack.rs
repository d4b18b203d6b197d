//! Connection tracking and fragments: a tracked connection passes without a rule
//! lookup until the policy changes (then it is judged again), and an allowed first
//! fragment lets the rest of its packet through.
use ward_common::{
    is_breakglass, proto, slot_of, timeouts, CtKey, CtValue, FragKey, Reason, CT_AUDITED,
    CT_INITIATOR_A, FLAG_AUDIT, NO_RULE, ZONE_AUDIT, ZONE_ID_MASK,
};

use crate::{
    context::{Decision, Settings},
    lookup::{rule_of, zone_of},
    maps::{CONNTRACK, FRAGMENTS},
    parse::{
        l3::{Fragment, Ip},
        l4::Flow,
    },
};

/// Judges a new flow by the policy and tracks it when a rule allows it (or when it is
/// audited, so that its other packets pass without an event each).
/// Not inlined, so that its keys get a stack frame of their own.
#[inline(never)]
pub fn open(ip: &Ip, flow: &Flow, key: &CtKey, s: &Settings, d: &mut Decision) -> Reason {
    let slot = slot_of(s.generation);
    d.set_zones(
        zone_of(slot, ip.family, &ip.src),
        zone_of(slot, ip.family, &ip.dst),
    );
    let rule = rule_of(s, slot, d.src_zone, d.dst_zone, flow.proto, flow.dport);
    let audit = d.audited || s.flags & FLAG_AUDIT != 0;
    let mut flags = if key.addr_a == ip.src && key.port_a == flow.sport {
        CT_INITIATOR_A
    } else {
        0
    };
    let reason = match rule {
        rule_id if rule_id != NO_RULE => {
            d.rule_id = rule_id;
            Reason::AllowedByRule
        }
        _ if audit => {
            flags |= CT_AUDITED;
            Reason::NoRule
        }
        _ => return Reason::NoRule,
    };
    let value = CtValue {
        last_seen_ns: s.now,
        generation: s.generation,
        rule_id: d.rule_id,
        src_zone: d.src_zone,
        dst_zone: d.dst_zone,
        flags,
        tcp_state: 0,
        _pad: [0; 2],
    };
    // A full table evicts its least recently used entry; an insert cannot fail otherwise.
    let _ = CONNTRACK.insert(key, &value, 0);
    if ip.fragment == Fragment::First {
        remember_fragment(ip, s.now);
    }
    reason
}

/// Lets the rest of an allowed first fragment's packet through.
#[inline(always)]
pub fn remember_fragment(ip: &Ip, now: u64) {
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

/// Whether the first fragment of `ip`'s packet was allowed less than
/// `timeouts::FRAGMENT_NS` ago.
#[inline(always)]
pub fn fragment_allowed(ip: &Ip, now: u64) -> bool {
    // SAFETY: the entry's memory stays valid for the program run (RCU); the one plain
    // integer is copied out at once.
    unsafe { FRAGMENTS.get(&frag_key(ip)) }
        .is_some_and(|t| now.wrapping_sub(*t) < timeouts::FRAGMENT_NS)
}

/// What connection tracking knows of a packet.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Tracked {
    /// Tracked and allowed.
    Yes,
    /// Tracked, but no rule allows it: it passes because it is audited.
    Audited,
    /// Tracked, but the policy in force no longer allows it.
    Revoked,
    /// Not tracked, or expired.
    No,
}

/// Looks `key` up, re-judging it if the policy changed since it was allowed; fills the
/// connection's zones and rule into `d`.
/// Not inlined: two callers share it, and its stack frame stays separate.
#[inline(never)]
pub fn tracked(key: &CtKey, s: &Settings, d: &mut Decision) -> Tracked {
    let Some(entry) = CONNTRACK.get_ptr_mut(key) else {
        return Tracked::No;
    };
    // SAFETY: the entry's memory stays valid for the program run (RCU); other CPUs may
    // update the same connection's fields, plain integers, so a race costs at most a
    // stale timestamp or a second re-judgement, never an invalid value.
    let entry = unsafe { &mut *entry };
    let timeout = match key.proto {
        proto::TCP => timeouts::TCP_NS,
        proto::UDP => timeouts::UDP_NS,
        _ => timeouts::ICMP_NS,
    };
    let idle = s.now.wrapping_sub(entry.last_seen_ns);
    if idle > timeout {
        return Tracked::No;
    }
    if idle > 1_000_000_000 {
        entry.last_seen_ns = s.now;
    }
    // A connection a break-glass grant allowed is judged again on every packet, so that
    // it ends with the grant (which expires in the kernel, agent or no agent).
    if entry.generation != s.generation || is_breakglass(entry.rule_id) {
        // The policy changed since this connection was allowed: judge it again as opened.
        let (init, resp, resp_port) = if entry.flags & CT_INITIATOR_A != 0 {
            (&key.addr_a, &key.addr_b, key.port_b)
        } else {
            (&key.addr_b, &key.addr_a, key.port_a)
        };
        let slot = slot_of(s.generation);
        let src = zone_of(slot, key.family, init);
        let dst = zone_of(slot, key.family, resp);
        let audit = (src | dst) & ZONE_AUDIT != 0 || s.flags & FLAG_AUDIT != 0;
        let (src, dst) = (src & ZONE_ID_MASK, dst & ZONE_ID_MASK);
        let rule = rule_of(s, slot, src, dst, key.proto, resp_port);
        if rule == NO_RULE && !audit {
            let _ = CONNTRACK.remove(key);
            d.set_zones(src, dst);
            return Tracked::Revoked;
        }
        entry.generation = s.generation;
        entry.rule_id = rule;
        entry.src_zone = src;
        entry.dst_zone = dst;
        entry.flags = if rule != NO_RULE {
            entry.flags & !CT_AUDITED
        } else {
            entry.flags | CT_AUDITED
        };
    }
    // Counted under the connection's (initiator, responder) zones, replies included.
    d.set_zones(entry.src_zone, entry.dst_zone);
    d.rule_id = entry.rule_id;
    if entry.flags & CT_AUDITED != 0 {
        // Each packet counts as audited; the flow's first packet was the one reported.
        d.audited = true;
        d.notable = false;
        return Tracked::Audited;
    }
    Tracked::Yes
}
