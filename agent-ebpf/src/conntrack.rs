//! Connection tracking and fragments: a tracked connection passes without a rule
//! lookup until the policy changes (then it is judged again), TCP connections open
//! only with a SYN and keep a state whose idle timeout is short until established, and
//! an allowed first fragment lets the rest of its packet through.
use aya_ebpf::helpers::bpf_jiffies64;
use ward_common::{
    is_breakglass, proto, slot_of, tcp_state, timeouts, CtKey, CtValue, FragKey, Reason,
    CT_AUDITED, CT_INITIATOR_A, FAILSAFE_RULE, FLAG_AUDIT, NO_RULE, ZONE_AUDIT, ZONE_ID_MASK,
};

use crate::{
    budget,
    context::{Decision, Settings},
    ctmap,
    lookup::{rule_of, zone_pair},
    maps::FRAGMENTS,
    parse::{
        l3::{Fragment, Ip},
        l4::{tcp_flags, Flow},
    },
};

/// What the policy makes of a new flow (step 7).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Admit {
    /// A rule allows it (its id is in the decision).
    Allowed,
    /// No rule allows it, but it is audited: tracked, so that its other packets pass
    /// without an event each.
    Audited,
    /// No rule allows it.
    Denied,
}

/// Looks up the zones and the rule of a new flow from `ip`'s source, into `d`.
/// Not inlined: its keys get a stack frame of their own, which is gone before the
/// connection lookup its callers may make.
#[inline(never)]
fn admit(ip: &Ip, flow: &Flow, s: &Settings, d: &mut Decision) -> Admit {
    let slot = slot_of(s.generation);
    d.set_zone_pair(zone_pair(s, ip.family, &ip.src, &ip.dst));
    let rule = rule_of(s, slot, d.src_zone, d.dst_zone, flow.proto, flow.dport);
    if rule != NO_RULE {
        d.rule_id = rule;
        Admit::Allowed
    } else if d.audited || s.flags & FLAG_AUDIT != 0 {
        Admit::Audited
    } else {
        Admit::Denied
    }
}

/// The reason an admitted flow is judged with.
#[inline(always)]
fn admitted(admit: Admit) -> Reason {
    if admit == Admit::Allowed {
        Reason::AllowedByRule
    } else {
        Reason::NoRule
    }
}

/// Judges a new flow by the policy and tracks it when a rule allows it (or when it is
/// audited), if its source has a new flow left in its budget.
/// Not inlined, so that its keys get a stack frame of their own.
#[inline(never)]
pub fn open(ip: &Ip, flow: &Flow, key: &CtKey, s: &Settings, d: &mut Decision) -> Reason {
    let admit = admit(ip, flow, s, d);
    if admit == Admit::Denied {
        return Reason::NoRule;
    }
    if !budget::take_flow(&ip.src, s) {
        d.rule_id = NO_RULE;
        return Reason::FlowLimit;
    }
    let from_a = key.addr_a == ip.src && key.port_a == flow.sport;
    track(key, d, s, ct_flags(from_a, admit), ANY);
    if ip.fragment == Fragment::First {
        remember_fragment(ip, s.now());
    }
    admitted(admit)
}

/// What the pipeline's one connection lookup is for (`Decision::pending`), kept in the
/// per-CPU scratch rather than a register, so that the verifier walks the one call of
/// [`tracked`] once for every kind of packet.
pub mod pending {
    /// A packet's own lookup (step 6): TCP, UDP, an ICMP echo request.
    pub const NONE: u8 = 0;
    /// A lone SYN admitted while its source is out of budget: it passes only as a
    /// tracked connection's SYN.
    pub const NO_BUDGET: u8 = 1;
    /// An ICMP echo reply: it passes only as a packet of a tracked echo.
    pub const ECHO_REPLY: u8 = 2;
    /// An ICMP error, looked up as the connection it quotes.
    pub const ICMP_ERROR: u8 = 3;
    /// A lone SYN that took a flow from its source's budget and whose insert found the
    /// tuple tracked; the low bits are the entry flags it was to be tracked with (`CT_*`).
    pub const TRACK: u8 = 0x80;
}

/// Judges a lone SYN (`docs/dataplane.md`, step 7):
/// by the policy first, so that a SYN no rule allows costs no connection lookup; an
/// admitted one is tracked by an insert that fails when its tuple is tracked already.
/// `None` when its connection must be looked up (step 6): the insert failed, or its
/// source is out of budget (`d.pending` says which); [`syn_looked_up`] then judges it
/// by what the lookup found.
/// Not inlined, so that its keys get a stack frame of their own.
#[inline(never)]
pub fn open_syn(
    ip: &Ip,
    flow: &Flow,
    key: &CtKey,
    s: &Settings,
    d: &mut Decision,
) -> Option<Reason> {
    let admit = admit(ip, flow, s, d);
    if admit == Admit::Denied {
        return Some(Reason::NoRule);
    }
    if !budget::take_flow(&ip.src, s) {
        d.pending = pending::NO_BUDGET;
        return None;
    }
    let from_a = key.addr_a == ip.src && key.port_a == flow.sport;
    let flags = ct_flags(from_a, admit);
    if !track(key, d, s, flags, NEW) {
        d.pending = pending::TRACK | flags;
        return None;
    }
    if ip.fragment == Fragment::First {
        remember_fragment(ip, s.now());
    }
    Some(admitted(admit))
}

/// Judges a lone SYN that [`open_syn`] left pending (`d.pending`) by what its connection's
/// lookup found: a tracked connection's SYN (a retransmission) passes as established
/// and gives back the flow it took; out of budget, nothing else passes; otherwise the
/// SYN starts a new connection on the tuple (the responder's, or after a close), which
/// replaces the entry. Not inlined: its entry is built in a frame of its own.
#[inline(never)]
pub fn syn_looked_up(
    ip: &Ip,
    key: &CtKey,
    known: Tracked,
    s: &Settings,
    d: &mut Decision,
) -> Reason {
    let pending = d.pending;
    match known {
        Tracked::No if pending & pending::TRACK == 0 => {
            d.rule_id = NO_RULE;
            Reason::FlowLimit
        }
        Tracked::No => {
            let flags = pending & !pending::TRACK;
            track(key, d, s, flags, ANY);
            if ip.fragment == Fragment::First {
                remember_fragment(ip, s.now());
            }
            if flags & CT_AUDITED != 0 {
                Reason::NoRule
            } else {
                Reason::AllowedByRule
            }
        }
        known => {
            if pending & pending::TRACK != 0 {
                budget::give_back(&ip.src, s);
            }
            known_reason(ip, known, s)
        }
    }
}

/// The reason for a packet of a connection `tracked` found (anything but
/// [`Tracked::No`]); an allowed first fragment lets the rest of its packet through.
#[inline(always)]
pub fn known_reason(ip: &Ip, known: Tracked, s: &Settings) -> Reason {
    match known {
        Tracked::Yes => {
            if ip.fragment == Fragment::First {
                remember_fragment(ip, s.now());
            }
            Reason::Established
        }
        Tracked::Audited => Reason::NoRule,
        Tracked::Revoked => Reason::PolicyRevoked,
        // Not a caller's case: judged as no rule if it were.
        Tracked::No => Reason::NoRule,
    }
}

/// The entry flags of a connection opened from endpoint `a` when `from_a`.
#[inline(always)]
fn ct_flags(from_a: bool, admit: Admit) -> u8 {
    let initiator = if from_a { CT_INITIATOR_A } else { 0 };
    if admit == Admit::Audited {
        initiator | CT_AUDITED
    } else {
        initiator
    }
}

/// [`track`]: insert or replace.
const ANY: bool = false;
/// [`track`]: insert only if the tuple is not tracked.
const NEW: bool = true;

/// Tracks `key`'s connection with the zones and rule in `d` and entry `flags`, only if
/// it is not tracked already when `new` ([`NEW`]); whether it was inserted. Not inlined:
/// the entry is built in a frame of its own, which no lookup's call chain holds.
#[inline(never)]
fn track(key: &CtKey, d: &Decision, s: &Settings, flags: u8, new: bool) -> bool {
    let value = CtValue {
        last_seen_ns: s.now(),
        generation: s.generation,
        rule_id: d.rule_id,
        src_zone: d.src_zone,
        dst_zone: d.dst_zone,
        flags,
        tcp_state: if key.proto == proto::TCP {
            tcp_state::SYN_SENT
        } else {
            tcp_state::NONE
        },
        _pad: [0; 2],
        fast_hook: [0; 2],
        // Read only with a permission in `fast_hook`: any value does, and a zero pair
        // would become an out-of-line `memset`.
        fast_jiffies: [1; 2],
    };
    if new {
        ctmap::insert_new(key, &value)
    } else {
        ctmap::insert(key, &value);
        true
    }
}

/// Judges a packet that may not open a connection (a TCP segment without a lone SYN,
/// an ICMP error about no connection of its destination) by the policy alone: a rule
/// allowing `protocol` to `dport` between its zones lets it pass; nothing is tracked.
/// Not inlined, so that its keys get a stack frame of their own.
#[inline(never)]
pub fn stateless(ip: &Ip, protocol: u8, dport: u16, s: &Settings, d: &mut Decision) -> Reason {
    let slot = slot_of(s.generation);
    d.set_zone_pair(zone_pair(s, ip.family, &ip.src, &ip.dst));
    let rule = rule_of(s, slot, d.src_zone, d.dst_zone, protocol, dport);
    if rule == NO_RULE {
        return Reason::NoRule;
    }
    d.rule_id = rule;
    if ip.fragment == Fragment::First {
        remember_fragment(ip, s.now());
    }
    Reason::AllowedByRule
}

/// Opens (SYN) or follows a failsafe connection: management access to a failsafe
/// port, which passes whatever the policy says. A SYN is tracked only within its
/// source's flow budget, so that forged management SYNs cannot fill the table. Not
/// inlined: its key and value get a stack frame of their own.
#[inline(never)]
pub fn failsafe_request(ip: &Ip, key: &CtKey, flow: &Flow, from_a: bool, s: &Settings) {
    if crate::parse::l4::opens_tcp(flow.tcp_flags) {
        if !budget::take_flow(&ip.src, s) {
            return;
        }
        let value = CtValue {
            last_seen_ns: s.now(),
            generation: s.generation,
            rule_id: FAILSAFE_RULE,
            src_zone: 0,
            dst_zone: 0,
            flags: if from_a { CT_INITIATOR_A } else { 0 },
            tcp_state: tcp_state::SYN_SENT,
            _pad: [0; 2],
            fast_hook: [0; 2],
            fast_jiffies: [1; 2],
        };
        ctmap::insert(key, &value);
        return;
    }
    let _ = failsafe_reply(key, flow.tcp_flags, from_a, s);
}

/// Whether `key` is a live failsafe connection (advancing its TCP state): the server's
/// side of management access passes only on one.
#[inline(never)]
pub fn failsafe_reply(key: &CtKey, flags: u8, from_a: bool, s: &Settings) -> bool {
    let Some(entry) = ctmap::get(key) else {
        return false;
    };
    // SAFETY: the entry's memory stays valid for the program run (RCU); other CPUs may
    // update the same connection's plain integer fields, so a race costs at most a
    // stale timestamp or state, never an invalid value.
    let entry = unsafe { &mut *entry };
    if entry.rule_id != FAILSAFE_RULE || expired(entry, key.proto, s.now()) {
        return false;
    }
    let from_initiator = (entry.flags & CT_INITIATOR_A != 0) == from_a;
    advance_tcp(entry, from_initiator, flags, s.now());
    true
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
    /// Not tracked, expired, a failsafe connection (the failsafe guard judges those),
    /// or a SYN that starts a new connection on the tuple (the responder's, or the
    /// initiator's after the connection closed): judged as a new flow.
    No,
}

/// Looks `key` up for a packet with TCP flags `flags` (0 for other protocols) sent by
/// endpoint `a` when `from_a`, re-judging it if the policy changed since it was
/// allowed and advancing its TCP state; fills the connection's zones and rule into `d`.
/// Not inlined: the pipeline's one call (`verdict::decide`), its stack frame apart.
#[inline(never)]
pub fn tracked(key: &CtKey, flags: u8, from_a: bool, s: &Settings, d: &mut Decision) -> Tracked {
    let Some(entry) = ctmap::get(key) else {
        return Tracked::No;
    };
    // SAFETY: the entry's memory stays valid for the program run (RCU); other CPUs may
    // update the same connection's fields, plain integers, so a race costs at most a
    // stale timestamp or a second re-judgement, never an invalid value.
    let entry = unsafe { &mut *entry };
    if entry.rule_id == FAILSAFE_RULE || expired(entry, key.proto, s.now()) {
        return Tracked::No;
    }
    if key.proto == proto::TCP {
        let from_initiator = (entry.flags & CT_INITIATOR_A != 0) == from_a;
        if crate::parse::l4::opens_tcp(flags)
            && (!from_initiator
                || entry.tcp_state == tcp_state::CLOSING
                || entry.tcp_state == tcp_state::CLOSED)
        {
            return Tracked::No;
        }
        advance_tcp(entry, from_initiator, flags, s.now());
    }
    if s.now().wrapping_sub(entry.last_seen_ns) > 1_000_000_000 {
        entry.last_seen_ns = s.now();
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
        let zones = zone_pair(s, key.family, init, resp);
        let (src, dst) = (zones.src(), zones.dst());
        let audit = (src | dst) & ZONE_AUDIT != 0 || s.flags & FLAG_AUDIT != 0;
        let (src, dst) = (src & ZONE_ID_MASK, dst & ZONE_ID_MASK);
        let rule = rule_of(s, slot, src, dst, key.proto, resp_port);
        if rule == NO_RULE && !audit {
            ctmap::remove(key);
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
    if s.mark != 0 {
        // SAFETY: a helper without arguments or preconditions.
        let now = unsafe { bpf_jiffies64() };
        if from_a {
            entry.fast_hook[0] = s.mark;
            entry.fast_jiffies[0] = now;
        } else {
            entry.fast_hook[1] = s.mark;
            entry.fast_jiffies[1] = now;
        }
    }
    Tracked::Yes
}

/// Whether `entry` has been idle longer than its protocol and TCP state allow.
#[inline(always)]
fn expired(entry: &CtValue, protocol: u8, now: u64) -> bool {
    let timeout = match protocol {
        proto::TCP => match entry.tcp_state {
            tcp_state::SYN_SENT | tcp_state::SYN_RECV => timeouts::TCP_HALF_OPEN_NS,
            tcp_state::CLOSING => timeouts::TCP_CLOSING_NS,
            tcp_state::CLOSED => timeouts::TCP_CLOSED_NS,
            _ => timeouts::TCP_NS,
        },
        proto::UDP => timeouts::UDP_NS,
        _ => timeouts::ICMP_NS,
    };
    now.wrapping_sub(entry.last_seen_ns) > timeout
}

/// Moves a TCP connection through its states: the responder's SYN-ACK, then the
/// initiator's ACK establish it; a FIN closes it slowly, an RST at once. A change of
/// state restarts the idle clock, since each state has its own timeout.
#[inline(always)]
fn advance_tcp(entry: &mut CtValue, from_initiator: bool, flags: u8, now: u64) {
    let state = entry.tcp_state;
    let syn_ack = tcp_flags::SYN | tcp_flags::ACK;
    let next = if flags & tcp_flags::RST != 0 {
        tcp_state::CLOSED
    } else if flags & tcp_flags::FIN != 0 && state != tcp_state::CLOSED {
        tcp_state::CLOSING
    } else if state == tcp_state::SYN_SENT && !from_initiator && flags & syn_ack == syn_ack {
        tcp_state::SYN_RECV
    } else if state == tcp_state::SYN_RECV && from_initiator && flags & syn_ack == tcp_flags::ACK {
        tcp_state::ESTABLISHED
    } else {
        state
    };
    if next != state {
        entry.tcp_state = next;
        entry.last_seen_ns = now;
    }
}
