//! The verdict pipeline shared by every hook, in the order `docs/dataplane.md` gives:
//! parse, failsafe, policy loaded, quarantine, fragments, connection tracking, rules;
//! then audit, counters and events.
use aya_ebpf::helpers::bpf_ktime_get_ns;
use ward_common::{log_level, slot_of, CtKey, Reason, Verdict, FLAG_AUDIT, NO_RULE, WORLD_ZONE};

use crate::{
    conntrack::{self, Tracked},
    context::{Context, Decision, Hook, Scratch, Settings},
    counters, events, guards,
    lookup::zone_of,
    maps::{CONFIG, SCRATCH},
    parse::{
        l3::{self, Fragment, Ip, Network},
        l4::{self, Flow, Transport},
        Frame,
    },
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
fn decide(
    frame: &Frame,
    s: &mut Settings,
    ip: &mut Ip,
    flow: &mut Flow,
    d: &mut Decision,
) -> Reason {
    match l3::network(frame, ip) {
        Network::NotIp => return Reason::NotIp,
        Network::Malformed => return Reason::Malformed,
        Network::Ip => {}
    }
    if s.failsafe && guards::failsafe(frame, ip) {
        return Reason::Failsafe;
    }
    if s.generation == 0 {
        return Reason::NoPolicy;
    }
    // SAFETY: a helper without arguments or preconditions.
    s.now = unsafe { bpf_ktime_get_ns() };
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
    let may_open = match l4::transport(frame, ip, flow, &mut key) {
        Transport::Malformed => return Reason::Malformed,
        Transport::NeighbourDiscovery => return Reason::NeighbourDiscovery,
        Transport::Opens => true,
        Transport::ReplyOnly => false,
        Transport::Error => {
            match l4::quoted(frame, ip, &mut key) {
                Transport::Malformed => return Reason::Malformed,
                Transport::Error => {}
                _ => return Reason::NoRule,
            }
            let reason = match conntrack::tracked(&key, s, d) {
                Tracked::Yes | Tracked::Audited => Reason::Related,
                Tracked::Revoked => Reason::PolicyRevoked,
                Tracked::No => Reason::NoRule,
            };
            if reason == Reason::Related && ip.fragment == Fragment::First {
                conntrack::remember_fragment(ip, s.now);
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
    match conntrack::tracked(&key, s, d) {
        Tracked::Yes => {
            if ip.fragment == Fragment::First {
                conntrack::remember_fragment(ip, s.now);
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
        Tracked::No => conntrack::open(ip, flow, &key, s, d),
    }
}
