//! The verdict core shared by every hook: connection tracking, zones, rules, audit,
//! counters and events.
use aya_ebpf::{
    helpers::bpf_ktime_get_ns,
    macros::map,
    maps::{lpm_trie::Key, PerCpuArray},
};
use ward_common::{
    family, is_breakglass, log_level, proto, reason_counter_index, rule_key, slot_of, timeouts,
    zone_key_v4, zone_key_v6, Addr, BreakglassKey, Counter, CtKey, CtValue, FragKey, QuarantineKey,
    Reason, Verdict, ZonePairKey, CT_AUDITED, CT_INITIATOR_A, FLAG_AUDIT, FLAG_BREAKGLASS, NO_RULE,
    RULE_KEY_FIXED_BITS, WORLD_ZONE, ZONE_AUDIT, ZONE_ID_MASK, ZONE_KEY_SLOT_BITS,
    ZONE_QUARANTINE_ALLOW,
};

use crate::{
    events::{self, Hook},
    maps::{
        BREAKGLASS, CONFIG, CONNTRACK, FAILSAFE_V4, FAILSAFE_V6, FRAGMENTS, QUARANTINE,
        REASON_COUNTERS, RULES, ZONES_V4, ZONES_V6, ZONE_PAIR_COUNTERS,
    },
    parse::{self, Flow, Fragment, Frame, Ip, Network, Transport},
};

/// The agent's settings and the time, as one packet sees them.
pub struct Settings {
    /// Policy generation in force (0: none yet).
    pub generation: u64,
    /// `bpf_ktime_get_ns` when the packet arrived.
    pub now: u64,
    /// `Config::flags`.
    pub flags: u32,
    /// `Config::log_level`.
    pub log_level: u32,
    /// `Config::events_per_source`.
    pub events_per_source: u32,
    /// `Config::quarantined`.
    pub quarantined: u32,
    /// Whether any failsafe port is configured.
    pub failsafe: bool,
}

/// What the core decided about a packet.
pub struct Decision {
    /// Why.
    pub reason: Reason,
    /// Whether the zone pair is known (it is not for malformed packets, fragments…).
    pub has_zones: bool,
    /// Source zone id (the initiator's, for packets of a tracked connection).
    pub src_zone: u32,
    /// Destination zone id (the responder's, for packets of a tracked connection).
    pub dst_zone: u32,
    /// Rule that allowed the flow, or `NO_RULE`.
    pub rule_id: u32,
    /// One of the zones is in audit mode, or the connection passes only because it is audited.
    pub audited: bool,
    /// Whether this packet is worth an event (the first of a flow, not its followers).
    pub notable: bool,
}

impl Decision {
    #[inline(always)]
    fn set_zones(&mut self, src: u32, dst: u32) {
        self.has_zones = true;
        self.audited |= (src | dst) & ZONE_AUDIT != 0;
        self.src_zone = src & ZONE_ID_MASK;
        self.dst_zone = dst & ZONE_ID_MASK;
    }
}

/// Per-packet state, kept in a per-CPU map rather than on the 512-byte stack (on 6.1 the
/// verifier rounds every frame of a call chain up to 32 bytes and counts them all).
pub struct Scratch {
    settings: Settings,
    ip: Ip,
    flow: Flow,
    d: Decision,
}

/// One [`Scratch`] per hook direction and CPU: XDP and TC never share one.
#[map]
static SCRATCH: PerCpuArray<Scratch> = PerCpuArray::with_max_entries(2, 0);

/// Judges one frame, counts the verdict and reports it; `true` means pass.
#[inline(always)]
pub fn judge(frame: &Frame, hook: &Hook) -> bool {
    let Some(scratch) = SCRATCH.get_ptr_mut(u32::from(hook.direction)) else {
        // Cannot happen (a per-CPU array entry within bounds); fail closed if it does.
        return false;
    };
    let Scratch {
        settings,
        ip,
        flow,
        d,
    } = unsafe { &mut *scratch };
    *settings = Settings {
        generation: 0,
        now: 0,
        flags: 0,
        log_level: 0,
        events_per_source: 0,
        quarantined: 0,
        failsafe: false,
    };
    if let Some(c) = CONFIG.get_ptr(0) {
        // An aligned 8-byte load: the agent publishes a new policy with one such store.
        settings.generation = unsafe { core::ptr::read_volatile(&(*c).generation) };
        let c = unsafe { &*c };
        settings.flags = c.flags;
        settings.log_level = c.log_level;
        settings.events_per_source = c.events_per_source;
        settings.quarantined = c.quarantined;
        settings.failsafe = c.failsafe_ports[0] != 0;
    }
    *ip = Ip {
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
    *flow = Flow {
        proto: 0,
        sport: 0,
        dport: 0,
    };
    *d = Decision {
        reason: Reason::NotIp,
        has_zones: false,
        src_zone: WORLD_ZONE,
        dst_zone: WORLD_ZONE,
        rule_id: NO_RULE,
        audited: false,
        notable: true,
    };
    d.reason = decide(frame, settings, ip, flow, d);
    let mut verdict = d.reason.verdict();
    // A quarantine is an explicit response: audit mode does not soften it.
    let auditable = d.reason != Reason::Quarantined;
    if verdict == Verdict::Deny && auditable && (d.audited || settings.flags & FLAG_AUDIT != 0) {
        verdict = Verdict::Audit;
    }
    count(d, verdict, slot_of(settings.generation), frame.len as u64);
    let report = match verdict {
        Verdict::Deny | Verdict::Audit => settings.log_level >= log_level::DENIED,
        Verdict::Allow => {
            d.reason == Reason::AllowedByRule
                && settings.log_level >= log_level::DENIED_AND_NEW_ALLOWED
        }
    };
    if report && d.notable {
        events::emit(
            ip,
            flow,
            d,
            &events::Context {
                hook,
                settings,
                verdict,
                bytes: frame.len as u32,
            },
        );
    }
    verdict != Verdict::Deny
}

/// Fills `d` for the frame; `ip` and `flow` receive what the parser found.
/// Not inlined, so that its keys get a stack frame of their own.
#[inline(never)]
fn decide(
    frame: &Frame,
    s: &mut Settings,
    ip: &mut Ip,
    flow: &mut Flow,
    d: &mut Decision,
) -> Reason {
    match parse::network(frame, ip) {
        Network::NotIp => return Reason::NotIp,
        Network::Malformed => return Reason::Malformed,
        Network::Ip => {}
    }
    if s.failsafe && failsafe(frame, ip) {
        return Reason::Failsafe;
    }
    if s.generation == 0 {
        return Reason::NoPolicy;
    }
    s.now = unsafe { bpf_ktime_get_ns() };
    if s.quarantined != 0 && quarantined(ip, s, d) {
        return Reason::Quarantined;
    }
    if ip.fragment == Fragment::NonFirst {
        let fresh = unsafe { FRAGMENTS.get(&frag_key(ip)) }
            .is_some_and(|t| s.now.wrapping_sub(*t) < timeouts::FRAGMENT_NS);
        return if fresh {
            Reason::FragmentOfAllowed
        } else {
            Reason::FragmentWithoutFirst
        };
    }
    let mut key = CtKey::default();
    let may_open = match parse::transport(frame, ip, flow, &mut key) {
        Transport::Malformed => return Reason::Malformed,
        Transport::NeighbourDiscovery => return Reason::NeighbourDiscovery,
        Transport::Opens => true,
        Transport::ReplyOnly => false,
        Transport::Error => {
            match parse::quoted(frame, ip, &mut key) {
                Transport::Malformed => return Reason::Malformed,
                Transport::Error => {}
                _ => return Reason::NoRule,
            }
            let reason = match tracked(&key, s, d) {
                Tracked::Yes | Tracked::Audited => Reason::Related,
                Tracked::Revoked => Reason::PolicyRevoked,
                Tracked::No => Reason::NoRule,
            };
            if reason == Reason::Related && ip.fragment == Fragment::First {
                remember_fragment(ip, s.now);
            }
            return reason;
        }
        Transport::Other => {
            let slot = slot_of(s.generation);
            d.set_zones(
                zone_of(slot, ip.family, &ip.src),
                zone_of(slot, ip.family, &ip.dst),
            );
            return Reason::NoRule;
        }
    };
    match tracked(&key, s, d) {
        Tracked::Yes => {
            if ip.fragment == Fragment::First {
                remember_fragment(ip, s.now);
            }
            Reason::Established
        }
        Tracked::Audited => Reason::NoRule,
        Tracked::Revoked => Reason::PolicyRevoked,
        Tracked::No if !may_open => {
            let slot = slot_of(s.generation);
            d.set_zones(
                zone_of(slot, ip.family, &ip.src),
                zone_of(slot, ip.family, &ip.dst),
            );
            Reason::NoRule
        }
        Tracked::No => open(ip, flow, &key, s, d),
    }
}

/// Whether the packet is failsafe management access: TCP to a failsafe port from a
/// management prefix, or a reply (ACK set) from such a port to a management prefix.
/// Not inlined, so that its keys get a stack frame of their own.
#[inline(never)]
fn failsafe(frame: &Frame, ip: &Ip) -> bool {
    let Some((sport, dport, flags)) = parse::tcp_ports_and_flags(frame, ip) else {
        return false;
    };
    let Some(c) = CONFIG.get_ptr(0) else {
        return false;
    };
    let ports = unsafe { &(*c).failsafe_ports };
    let (mut to_port, mut from_port) = (false, false);
    for p in ports {
        to_port |= *p != 0 && *p == dport;
        from_port |= *p != 0 && *p == sport;
    }
    (to_port && is_management(ip.family, &ip.src))
        || (from_port && flags & TCP_ACK != 0 && is_management(ip.family, &ip.dst))
}

/// TCP header flag: the segment acknowledges (every segment but a connection's first).
const TCP_ACK: u8 = 0x10;

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
fn quarantined(ip: &Ip, s: &Settings, d: &mut Decision) -> bool {
    let src = is_quarantined(&ip.src, ip.family, s.now);
    let dst = is_quarantined(&ip.dst, ip.family, s.now);
    if !src && !dst {
        return false;
    }
    let slot = slot_of(s.generation);
    let src_zone = zone_of(slot, ip.family, &ip.src);
    let dst_zone = zone_of(slot, ip.family, &ip.dst);
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
        _pad: [0; 3],
    };
    match unsafe { QUARANTINE.get(&key) } {
        Some(q) => q.expires_ns == 0 || now < q.expires_ns,
        None => false,
    }
}

/// Judges a new flow by the policy and tracks it when a rule allows it (or when it is
/// audited, so that its other packets pass without an event each).
/// Not inlined, so that its keys get a stack frame of their own.
#[inline(never)]
fn open(ip: &Ip, flow: &Flow, key: &CtKey, s: &Settings, d: &mut Decision) -> Reason {
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
        _pad: [0; 3],
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

/// What connection tracking knows of a packet.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tracked {
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
fn tracked(key: &CtKey, s: &Settings, d: &mut Decision) -> Tracked {
    let Some(entry) = CONNTRACK.get_ptr_mut(key) else {
        return Tracked::No;
    };
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

/// The rule allowing `proto` to port `dport` from `src_zone` to `dst_zone`: the
/// policy's, else a break-glass grant's that has not expired; [`NO_RULE`] if none.
/// A plain id, not an `Option`: an `Option`'s unset payload would reach the verifier
/// as a read of an uninitialised register.
#[inline(always)]
fn rule_of(s: &Settings, slot: u8, src_zone: u32, dst_zone: u32, proto: u8, dport: u16) -> u32 {
    let port = if proto == proto::ICMP { 0 } else { dport };
    let key = Key::new(
        RULE_KEY_FIXED_BITS + 16,
        rule_key(slot, src_zone, dst_zone, proto, port),
    );
    if let Some(rule) = RULES.get(&key) {
        return *rule;
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
    match unsafe { BREAKGLASS.get(&key) } {
        Some(grant) if s.now < grant.expires_ns => grant.rule_id,
        _ => NO_RULE,
    }
}

#[inline(always)]
fn count(d: &Decision, verdict: Verdict, slot: u8, bytes: u64) {
    if let Some(c) = REASON_COUNTERS.get_ptr_mut(reason_counter_index(d.reason, verdict)) {
        unsafe {
            (*c).packets += 1;
            (*c).bytes += bytes;
        }
    }
    if !d.has_zones {
        return;
    }
    let key = ZonePairKey {
        src_zone: d.src_zone,
        dst_zone: d.dst_zone,
        verdict: verdict as u32,
        slot: slot as u32,
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
