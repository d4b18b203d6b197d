//! The verdict pipeline shared by every hook, in the order `docs/dataplane.md` gives:
//! the fast path for established connections first; then parse, anti-spoofing,
//! failsafe, policy loaded, quarantine, fragments, link-scoped traffic, connection
//! tracking, rules; then audit, counters and events.
use ward_common::{
    direction, fast_hook, log_level, proto, slot_of, CtKey, Reason, Verdict, FLAG_AUDIT, NO_RULE,
    WORLD_ZONE,
};

use crate::{
    conntrack::{self, Tracked},
    context::{Clock, Context, Decision, Hook, Scratch, Settings},
    counters, events,
    fast::{self, Fast},
    guards, link,
    lookup::zone_of,
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
    match l4::transport(frame, ip, flow, key) {
        Transport::Malformed => return Reason::Malformed,
        Transport::NeighbourDiscovery => return link::neighbour(frame, ip, hook),
        Transport::Mld => return link::mld(ip),
        Transport::Opens => {}
        Transport::ReplyOnly => return echo_reply(ip, key, s, d),
        Transport::Error | Transport::Unrelated => return icmp_error(frame, ip, key, s, d),
        Transport::Other => return no_rule(ip, s, d),
    };
    if flow.proto == proto::UDP && link::dhcp_client(ip, flow, hook) {
        return Reason::BuiltIn;
    }
    let from_a = key.addr_a == ip.src && key.port_a == flow.sport;
    if ip.fragment != Fragment::None || flow.proto == proto::ICMP {
        // Only an unfragmented TCP or UDP packet found established here lets its
        // endpoint's next packets take the fast path.
        s.mark = 0;
    }
    if flow.proto == proto::TCP && l4::opens_tcp(flow.tcp_flags) {
        return conntrack::open_syn(ip, flow, key, s, d);
    }
    let tracked = if s.untracked {
        Tracked::No
    } else {
        conntrack::tracked(key, flow.tcp_flags, from_a, s, d)
    };
    match tracked {
        Tracked::No if flow.proto == proto::TCP => {
            conntrack::stateless(ip, proto::TCP, flow.dport, s, d)
        }
        Tracked::No => conntrack::open(ip, flow, key, s, d),
        known => conntrack::known_reason(ip, known, s),
    }
}

/// An ICMP echo reply passes only as a packet of a tracked echo. Not inlined: its own
/// path, so that no flag of the caller's survives the call into connection tracking
/// (on 6.1 the verifier pruned the untracked branch when one did).
#[inline(never)]
fn echo_reply(ip: &Ip, key: &CtKey, s: &Settings, d: &mut Decision) -> Reason {
    match conntrack::tracked(key, 0, false, s, d) {
        Tracked::No => no_rule(ip, s, d),
        known => conntrack::known_reason(ip, known, s),
    }
}

/// A packet no rule can allow: denied, and counted under its zones.
#[inline(always)]
fn no_rule(ip: &Ip, s: &Settings, d: &mut Decision) -> Reason {
    let slot = slot_of(s.generation);
    d.set_zones(
        zone_of(slot, s.zone_skip, ip.family, &ip.src),
        zone_of(slot, s.zone_skip, ip.family, &ip.dst),
    );
    Reason::NoRule
}

/// An ICMP error passes as related to the tracked connection it quotes, when it goes
/// back to that packet's sender and is no longer than the RFCs allow; any other error
/// is judged like ordinary ICMP by the policy. Not inlined: its own path. `key`
/// receives the quoted connection.
#[inline(never)]
fn icmp_error(frame: &Frame, ip: &Ip, key: &mut CtKey, s: &Settings, d: &mut Decision) -> Reason {
    match l4::quoted(frame, ip, key) {
        Transport::Malformed => return Reason::Malformed,
        Transport::Error => {}
        _ => return conntrack::stateless(ip, proto::ICMP, 0, s, d),
    }
    let reason = match conntrack::tracked(key, 0, false, s, d) {
        Tracked::Yes | Tracked::Audited => Reason::Related,
        Tracked::Revoked => Reason::PolicyRevoked,
        Tracked::No => return conntrack::stateless(ip, proto::ICMP, 0, s, d),
    };
    if reason == Reason::Related && ip.fragment == Fragment::First {
        conntrack::remember_fragment(ip, s.now());
    }
    reason
}
