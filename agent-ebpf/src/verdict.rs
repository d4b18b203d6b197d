//! The verdict pipeline shared by every hook, in the order `docs/dataplane.md` gives:
//! the fast path for established connections first; then parse, anti-spoofing,
//! failsafe, policy loaded, quarantine, fragments, link-scoped traffic, connection
//! tracking, rules; then audit, counters and events.
use ward_common::{
    direction, fast_hook, log_level, proto, slot_of, Reason, Verdict, FLAG_AUDIT, NO_RULE,
    WORLD_ZONE,
};

use crate::{
    conntrack::{self, pending, Tracked},
    context::{Clock, Context, Decision, Hook, Scratch, Settings},
    counters, events,
    fast::{self, Fast},
    guards, link,
    lookup::zone_pair,
    maps::{CONFIG, SCRATCH},
    parse::{
        l3::{self, Fragment, Ip, Network},
        l4::{self, Flow, Transport},
        Frame,
    },
    spoof,
};

/// Judges one frame, counts the verdict and reports it; `true` means pass.
#[inline(always)]
pub fn judge(frame: &Frame, hook: &Hook) -> bool {
    let fast = fast::judge(
        frame.data,
        frame.data_end,
        frame.len,
        hook.ifindex,
        hook.direction,
    );
    if fast == Fast::Passed {
        return true;
    }
    if fast == Fast::Malformed {
        if let Some(pass) = malformed_unreported(frame.len as u64) {
            return pass;
        }
    }
    let Some(scratch) = SCRATCH.get_ptr_mut(u32::from(hook.direction)) else {
        // Cannot happen (a per-CPU array entry within bounds); fail closed if it does.
        return false;
    };
    // SAFETY: this CPU's entry for this hook direction, valid for the program run; no
    // one else uses it meanwhile: XDP and TC have an entry each, a program runs with
    // migration disabled, and neither hook's program nests in itself on one CPU.
    let scratch = unsafe { &mut *scratch };
    let Scratch {
        settings,
        ip,
        flow,
        d,
        ..
    } = scratch;
    let Some(c) = CONFIG.get_ptr(0) else {
        // Cannot happen (the one entry of an array); fail closed if it does.
        return false;
    };
    // SAFETY: `c` points to the map's one entry, valid for the program run and 8-byte
    // aligned; the agent publishes a new policy with one aligned store of
    // `generation`, read here with one aligned load; the other fields once each.
    let c = unsafe { &*c };
    // SAFETY: as above.
    let generation = unsafe { core::ptr::read_volatile(&c.generation) };
    // Only what every path reads is set here; each step fills what it finds, and the
    // event reads the network layer only when `ip.family` says it was parsed.
    *settings = Settings {
        generation,
        now: Clock::unread(),
        flags: c.flags,
        log_level: c.log_level,
        events_per_source: c.events_per_source,
        quarantined: c.quarantined,
        flows_per_source: c.flows_per_source,
        flow_burst: c.flow_burst,
        events_per_cpu: c.events_per_cpu,
        mark: fast_hook(hook.ifindex, hook.direction),
        untracked: fast == Fast::Untracked,
        failsafe: c.failsafe_ports[0] != 0,
        zone_skip: if slot_of(generation) == 0 {
            c.zone_skip[0]
        } else {
            c.zone_skip[1]
        },
    };
    ip.family = 0;
    // A volatile store: LLVM would turn six zero bytes into an out-of-line `memset`.
    // SAFETY: `flow` is a valid, aligned, exclusive reference to a `Flow`.
    unsafe {
        core::ptr::write_volatile(
            flow,
            Flow {
                proto: 0,
                tcp_flags: 0,
                sport: 0,
                dport: 0,
            },
        )
    };
    *d = Decision {
        reason: Reason::NotIp,
        has_zones: false,
        src_zone: WORLD_ZONE,
        dst_zone: WORLD_ZONE,
        rule_id: NO_RULE,
        audited: false,
        notable: true,
        pending: pending::NONE,
    };
    let reason = decide(frame, hook, scratch);
    let Scratch {
        settings,
        ip,
        flow,
        d,
        ..
    } = scratch;
    d.reason = reason;
    let mut verdict = d.reason.verdict();
    // A quarantine is an explicit response: audit mode does not soften it.
    let auditable = d.reason != Reason::Quarantined;
    if verdict == Verdict::Deny && auditable && (d.audited || settings.flags & FLAG_AUDIT != 0) {
        verdict = Verdict::Audit;
    }
    counters::count(d, verdict, slot_of(settings.generation), frame.len as u64);
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
            &Context {
                hook,
                settings,
                verdict,
                bytes: frame.len as u32,
            },
        );
    }
    verdict != Verdict::Deny
}

/// A frame the fast path found malformed (steps 1–3): counted as **deny, malformed**
/// (audit mode lets it pass, as it lets the full pipeline's), without the full
/// pipeline when no event is to be reported; `None` sends it there, to be reported.
/// Returns whether it passes.
#[inline(always)]
fn malformed_unreported(bytes: u64) -> Option<bool> {
    let c = CONFIG.get(0)?;
    if c.log_level >= log_level::DENIED {
        return None;
    }
    let mut verdict = Reason::Malformed.verdict();
    if verdict == Verdict::Deny && c.flags & FLAG_AUDIT != 0 {
        verdict = Verdict::Audit;
    }
    counters::count_reason(Reason::Malformed, verdict, bytes);
    Some(verdict != Verdict::Deny)
}

/// Fills `d` for the frame; `ip` and `flow` receive what the parser found.
/// Not inlined, so that what its steps keep on the stack gets a frame of its own.
#[inline(never)]
fn decide(frame: &Frame, hook: &Hook, scratch: &mut Scratch) -> Reason {
    let Scratch {
        settings: s,
        ip,
        flow,
        d,
        key,
        ..
    } = scratch;
    match l3::network(frame, ip) {
        Network::NotIp => return Reason::NotIp,
        Network::Malformed => return Reason::Malformed,
        Network::Ip => {}
    }
    if hook.direction == direction::INGRESS && spoof::spoofed(frame, ip, hook, s) {
        return Reason::Spoofed;
    }
    if s.failsafe && guards::failsafe(frame, ip, s) {
        return Reason::Failsafe;
    }
    if s.generation == 0 {
        return Reason::NoPolicy;
    }
    if s.quarantined != 0 && guards::quarantined(ip, s, d) {
        return Reason::Quarantined;
    }
    if ip.fragment == Fragment::NonFirst {
        return if conntrack::fragment_allowed(ip, s.now()) {
            Reason::FragmentOfAllowed
        } else {
            Reason::FragmentWithoutFirst
        };
    }
    // What the connection lookup below is for, kept in the scratch (`d.pending`), not
    // in a register, so that the verifier walks the one lookup once for every kind.
    d.pending = match l4::transport(frame, ip, flow, key) {
        Transport::Malformed => return Reason::Malformed,
        Transport::NeighbourDiscovery => return link::neighbour(frame, ip, hook),
        Transport::Mld => return link::mld(ip),
        Transport::Opens => pending::NONE,
        Transport::ReplyOnly => pending::ECHO_REPLY,
        Transport::Error | Transport::Unrelated => match l4::quoted(frame, ip, key) {
            Transport::Malformed => return Reason::Malformed,
            Transport::Error => pending::ICMP_ERROR,
            _ => return conntrack::stateless(ip, proto::ICMP, 0, s, d),
        },
        Transport::Other => return no_rule(ip, s, d),
    };
    if flow.proto == proto::UDP && link::dhcp_client(ip, flow, hook) {
        return Reason::BuiltIn;
    }
    // For ICMP (an echo, or an error quoting `key`'s connection) no flag is set and the
    // side does not matter: no TCP state moves, and no fast-path permission is given.
    let from_a = key.addr_a == ip.src && key.port_a == flow.sport;
    if ip.fragment != Fragment::None || flow.proto == proto::ICMP {
        // Only an unfragmented TCP or UDP packet found established here lets its
        // endpoint's next packets take the fast path.
        s.mark = 0;
    }
    if flow.proto == proto::TCP && l4::opens_tcp(flow.tcp_flags) {
        if let Some(reason) = conntrack::open_syn(ip, flow, key, s, d) {
            return reason;
        }
    }
    // One call for every kind of packet, so that the verifier walks the connection
    // lookup and its re-judgement once. Only a TCP or UDP packet's own lookup can
    // have been done by the fast path.
    let tracked = if s.untracked && d.pending == pending::NONE {
        Tracked::No
    } else {
        conntrack::tracked(key, flow.tcp_flags, from_a, s, d)
    };
    match d.pending {
        pending::NONE => match tracked {
            Tracked::No if flow.proto == proto::TCP => {
                conntrack::stateless(ip, proto::TCP, flow.dport, s, d)
            }
            Tracked::No => conntrack::open(ip, flow, key, s, d),
            known => conntrack::known_reason(ip, known, s),
        },
        // An ICMP echo reply passes only as a packet of a tracked echo.
        pending::ECHO_REPLY => match tracked {
            Tracked::No => no_rule(ip, s, d),
            known => conntrack::known_reason(ip, known, s),
        },
        pending::ICMP_ERROR => icmp_error(ip, tracked, s, d),
        _ => conntrack::syn_looked_up(ip, key, tracked, s, d),
    }
}

/// A packet no rule can allow: denied, and counted under its zones.
#[inline(always)]
fn no_rule(ip: &Ip, s: &Settings, d: &mut Decision) -> Reason {
    d.set_zone_pair(zone_pair(s, ip.family, &ip.src, &ip.dst));
    Reason::NoRule
}

/// An ICMP error passes as related to the tracked connection it quotes (`known`),
/// when it goes back to that packet's sender and is no longer than the RFCs allow
/// (`l4::quoted` found it so); any other error is judged like ordinary ICMP by the
/// policy. Not inlined: its own path.
#[inline(never)]
fn icmp_error(ip: &Ip, known: Tracked, s: &Settings, d: &mut Decision) -> Reason {
    let reason = match known {
        Tracked::Yes | Tracked::Audited => Reason::Related,
        Tracked::Revoked => Reason::PolicyRevoked,
        Tracked::No => return conntrack::stateless(ip, proto::ICMP, 0, s, d),
    };
    if reason == Reason::Related && ip.fragment == Fragment::First {
        conntrack::remember_fragment(ip, s.now());
    }
    reason
}
