//! The verdict pipeline shared by every hook, in the order `docs/dataplane.md` gives:
//! parse, anti-spoofing, failsafe, policy loaded, quarantine, fragments, link-scoped
//! traffic, connection tracking, rules; then audit, counters and events.
use aya_ebpf::helpers::bpf_ktime_get_ns;
use ward_common::{
    direction, log_level, proto, slot_of, CtKey, Reason, Verdict, FLAG_AUDIT, NO_RULE, WORLD_ZONE,
};

use crate::{
    conntrack::{self, Tracked},
    context::{Context, Decision, Hook, Scratch, Settings},
    counters, events, guards, link,
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
    } = scratch;
    *settings = Settings {
        generation: 0,
        now: 0,
        flags: 0,
        log_level: 0,
        events_per_source: 0,
        quarantined: 0,
        flows_per_source: 0,
        flow_burst: 0,
        events_per_cpu: 0,
        failsafe: false,
    };
    if let Some(c) = CONFIG.get_ptr(0) {
        // An aligned 8-byte load: the agent publishes a new policy with one such store.
        // SAFETY: `c` points to the map's one entry, valid for the program run and
        // 8-byte aligned; the agent writes `generation` with one aligned store.
        settings.generation = unsafe { core::ptr::read_volatile(&(*c).generation) };
        // SAFETY: as above; the other fields are read once each.
        let c = unsafe { &*c };
        settings.flags = c.flags;
        settings.log_level = c.log_level;
        settings.events_per_source = c.events_per_source;
        settings.quarantined = c.quarantined;
        settings.flows_per_source = c.flows_per_source;
        settings.flow_burst = c.flow_burst;
        settings.events_per_cpu = c.events_per_cpu;
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
        hop_limit: 0,
        l3: 0,
        frag_proto: 0,
    };
    *flow = Flow {
        proto: 0,
        tcp_flags: 0,
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
    let reason = decide(frame, hook, scratch);
    let Scratch {
        settings,
        ip,
        flow,
        d,
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

/// Fills `d` for the frame; `ip` and `flow` receive what the parser found.
/// Not inlined, so that its keys get a stack frame of their own.
#[inline(never)]
fn decide(frame: &Frame, hook: &Hook, scratch: &mut Scratch) -> Reason {
    let Scratch {
        settings: s,
        ip,
        flow,
        d,
    } = scratch;
    match l3::network(frame, ip) {
        Network::NotIp => return Reason::NotIp,
        Network::Malformed => return Reason::Malformed,
        Network::Ip => {}
    }
    // SAFETY: a helper without arguments or preconditions.
    s.now = unsafe { bpf_ktime_get_ns() };
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
        return if conntrack::fragment_allowed(ip, s.now) {
            Reason::FragmentOfAllowed
        } else {
            Reason::FragmentWithoutFirst
        };
    }
    let mut key = CtKey::default();
    match l4::transport(frame, ip, flow, &mut key) {
        Transport::Malformed => return Reason::Malformed,
        Transport::NeighbourDiscovery => return link::neighbour(frame, ip, hook),
        Transport::Mld => return link::mld(ip),
        Transport::Opens => {}
        Transport::ReplyOnly => return echo_reply(ip, &key, s, d),
        Transport::Error | Transport::Unrelated => return icmp_error(frame, ip, s, d),
        Transport::Other => return no_rule(ip, s, d),
    };
    if flow.proto == proto::UDP && link::dhcp_client(ip, flow, hook) {
        return Reason::BuiltIn;
    }
    let from_a = key.addr_a == ip.src && key.port_a == flow.sport;
    match conntrack::tracked(&key, flow.tcp_flags, from_a, s, d) {
        Tracked::Yes => established(ip, s),
        Tracked::Audited => Reason::NoRule,
        Tracked::Revoked => Reason::PolicyRevoked,
        Tracked::No if flow.proto == proto::TCP && !l4::opens_tcp(flow.tcp_flags) => {
            conntrack::stateless(ip, proto::TCP, flow.dport, s, d)
        }
        Tracked::No => conntrack::open(ip, flow, &key, s, d),
    }
}

/// An ICMP echo reply passes only as a packet of a tracked echo. Not inlined: its own
/// path, so that no flag of the caller's survives the call into connection tracking
/// (on 6.1 the verifier pruned the untracked branch when one did).
#[inline(never)]
fn echo_reply(ip: &Ip, key: &CtKey, s: &Settings, d: &mut Decision) -> Reason {
    match conntrack::tracked(key, 0, false, s, d) {
        Tracked::Yes => established(ip, s),
        Tracked::Audited => Reason::NoRule,
        Tracked::Revoked => Reason::PolicyRevoked,
        Tracked::No => no_rule(ip, s, d),
    }
}

/// A packet of a tracked connection; an allowed first fragment lets the rest of its
/// packet through.
#[inline(always)]
fn established(ip: &Ip, s: &Settings) -> Reason {
    if ip.fragment == Fragment::First {
        conntrack::remember_fragment(ip, s.now);
    }
    Reason::Established
}

/// A packet no rule can allow: denied, and counted under its zones.
#[inline(always)]
fn no_rule(ip: &Ip, s: &Settings, d: &mut Decision) -> Reason {
    let slot = slot_of(s.generation);
    d.set_zones(
        zone_of(slot, ip.family, &ip.src),
        zone_of(slot, ip.family, &ip.dst),
    );
    Reason::NoRule
}

/// An ICMP error passes as related to the tracked connection it quotes, when it goes
/// back to that packet's sender and is no longer than the RFCs allow; any other error
/// is judged like ordinary ICMP by the policy. Not inlined, so that its key gets a
/// stack frame of its own.
#[inline(never)]
fn icmp_error(frame: &Frame, ip: &Ip, s: &Settings, d: &mut Decision) -> Reason {
    let mut key = CtKey::default();
    match l4::quoted(frame, ip, &mut key) {
        Transport::Malformed => return Reason::Malformed,
        Transport::Error => {}
        _ => return conntrack::stateless(ip, proto::ICMP, 0, s, d),
    }
    let reason = match conntrack::tracked(&key, 0, false, s, d) {
        Tracked::Yes | Tracked::Audited => Reason::Related,
        Tracked::Revoked => Reason::PolicyRevoked,
        Tracked::No => return conntrack::stateless(ip, proto::ICMP, 0, s, d),
    };
    if reason == Reason::Related && ip.fragment == Fragment::First {
        conntrack::remember_fragment(ip, s.now);
    }
    reason
}
