//! Guards ahead of the policy: the failsafe (management access the agent's
//! configuration guarantees) and quarantine (hosts cut off by the response).
use aya_ebpf::maps::lpm_trie::Key;
use ward_common::{family, Addr, QuarantineKey, ZONE_QUARANTINE_ALLOW};

use crate::{
    conntrack,
    context::{Decision, Settings},
    lookup::{addr_bytes, zone_pair},
    maps::{CONFIG, FAILSAFE_V4, FAILSAFE_V6, QUARANTINE},
    parse::{
        l3::Ip,
        l4::{self, ct_key},
        Frame,
    },
};

/// Whether the packet is failsafe management access: TCP to a failsafe port from a
/// management prefix (a SYN opens a tracked failsafe connection), or the server's side
/// of such a tracked connection. Not inlined, so that its keys get a stack frame of
/// their own.
#[inline(never)]
pub fn failsafe(frame: &Frame, ip: &Ip, s: &Settings) -> bool {
    let Some(flow) = l4::tcp_flow(frame, ip) else {
        return false;
    };
    let Some(c) = CONFIG.get_ptr(0) else {
        return false;
    };
    // SAFETY: `c` points to the map's one entry, valid for the program run; only read.
    let ports = unsafe { &(*c).failsafe_ports };
    let (mut to_port, mut from_port) = (false, false);
    for p in ports {
        to_port |= *p != 0 && *p == flow.dport;
        from_port |= *p != 0 && *p == flow.sport;
    }
    if !to_port && !from_port {
        return false;
    }
    let key = ct_key(ip.family, &ip.src, &ip.dst, &flow);
    let from_a = key.addr_a == ip.src && key.port_a == flow.sport;
    if to_port && is_management(ip.family, &ip.src) {
        conntrack::failsafe_request(ip, &key, &flow, from_a, s);
        return true;
    }
    from_port
        && is_management(ip.family, &ip.dst)
        && conntrack::failsafe_reply(&key, flow.tcp_flags, from_a, s)
}

#[inline(always)]
fn is_management(fam: u8, addr: &Addr) -> bool {
    if fam == family::V4 {
        FAILSAFE_V4
            .get(&Key::new(32, addr[0].to_ne_bytes()))
            .is_some()
    } else {
        FAILSAFE_V6.get(&Key::new(128, addr_bytes(addr))).is_some()
    }
}

/// Whether one end of the packet is quarantined and the other end is not in a zone
/// quarantined hosts may still reach; fills the zones when it is.
/// Not inlined, so that its keys get a stack frame of their own.
#[inline(never)]
pub fn quarantined(ip: &Ip, s: &Settings, d: &mut Decision) -> bool {
    let src = is_quarantined(&ip.src, ip.family, s.now());
    let dst = is_quarantined(&ip.dst, ip.family, s.now());
    if !src && !dst {
        return false;
    }
    let zones = zone_pair(s, ip.family, &ip.src, &ip.dst);
    let (src_zone, dst_zone) = (zones.src(), zones.dst());
    // The peer of a quarantined end must be in a zone that may still reach it.
    let peer_allowed = (!src || dst_zone & ZONE_QUARANTINE_ALLOW != 0)
        && (!dst || src_zone & ZONE_QUARANTINE_ALLOW != 0);
    if peer_allowed {
        return false;
    }
    d.set_zones(src_zone, dst_zone);
    true
}

#[inline(always)]
fn is_quarantined(addr: &Addr, family: u8, now: u64) -> bool {
    let key = QuarantineKey {
        addr: *addr,
        family,
        _pad: 0,
        _pad2: 0,
    };
    // SAFETY: the entry's memory stays valid for the program run (RCU); one plain
    // integer is read at once, so a concurrent update gives the old or the new expiry.
    match unsafe { QUARANTINE.get(&key) } {
        Some(q) => q.expires_ns == 0 || now < q.expires_ns,
        None => false,
    }
}
