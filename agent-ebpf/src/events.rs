//! Flow events: one per notable verdict, rate-limited per source and per CPU, through
//! a ring buffer.
use ward_common::{Addr, EventBudget, EventCounter, FlowEvent};

use crate::{
    context::{Context, Decision},
    maps::{EVENTS, EVENT_BUDGETS, EVENT_BUDGET_CPU, EVENT_COUNTERS},
    parse::{l3::Ip, l4::Flow},
};

/// Length of a source's event budget window.
const WINDOW_NS: u64 = 1_000_000_000;

/// Sends an event unless the source has used up its budget for this second or the ring
/// buffer is full; either way the outcome is counted.
/// Not inlined, so that the event's fields do not crowd the caller's stack.
#[inline(never)]
pub fn emit(ip: &Ip, flow: &Flow, d: &Decision, ctx: &Context) {
    let now = ctx.settings.now();
    // Frames whose network layer was not parsed (`ip.family` 0) report no addresses.
    let parsed = ip.family != 0;
    let none: Addr = [0; 4];
    let (src, dst) = if parsed {
        (&ip.src, &ip.dst)
    } else {
        (&none, &none)
    };
    if !within_cpu_budget(ctx.settings.events_per_cpu, now)
        || !within_budget(src, ctx.settings.events_per_source, now)
    {
        return bump(EventCounter::Suppressed);
    }
    let Some(mut entry) = EVENTS.reserve::<FlowEvent>(0) else {
        return bump(EventCounter::Lost);
    };
    let icmp = flow.proto == ward_common::proto::ICMP;
    entry.write(FlowEvent {
        time_ns: now,
        src: *src,
        dst: *dst,
        ifindex: ctx.hook.ifindex,
        src_zone: d.src_zone,
        dst_zone: d.dst_zone,
        rule_id: d.rule_id,
        reason: d.reason as u32,
        bytes: ctx.bytes,
        sport: if icmp { 0 } else { flow.sport },
        dport: if icmp { 0 } else { flow.dport },
        ip_proto: if parsed { ip.ip_proto } else { 0 },
        family: ip.family,
        direction: ctx.hook.direction,
        verdict: ctx.verdict as u8,
        slot: ward_common::slot_of(ctx.settings.generation),
        _pad: [0; 7],
    });
    entry.submit(0);
    bump(EventCounter::Emitted);
}

/// Takes one event from this CPU's budget for the current second (all sources
/// together), so that a flood from random sources cannot drown the log.
#[inline(always)]
fn within_cpu_budget(per_second: u32, now: u64) -> bool {
    if per_second == 0 {
        return true;
    }
    match EVENT_BUDGET_CPU.get_ptr_mut(0) {
        // SAFETY: this CPU's copy of the one entry, valid for the program run; a
        // program runs with migration disabled, so nothing else writes it meanwhile
        // (at worst an XDP and a TC run on one CPU interleave: an event more or less).
        Some(b) => spend(unsafe { &mut *b }, per_second, now),
        None => false,
    }
}

/// Takes one event from the source's budget for the current second.
#[inline(always)]
fn within_budget(src: &Addr, per_second: u32, now: u64) -> bool {
    match EVENT_BUDGETS.get_ptr_mut(src) {
        // SAFETY: the entry's memory stays valid for the program run (RCU); other CPUs
        // may count the same source at once, plain integers, so a race costs at most
        // an event more or less in this second.
        Some(b) => spend(unsafe { &mut *b }, per_second, now),
        None => {
            let fresh = EventBudget {
                window_start_ns: now,
                sent: 1,
                _pad: 0,
            };
            let _ = EVENT_BUDGETS.insert(src, &fresh, 0);
            per_second > 0
        }
    }
}

/// Spends one event of `b`'s window, starting a new window each second.
#[inline(always)]
fn spend(b: &mut EventBudget, per_second: u32, now: u64) -> bool {
    if now.wrapping_sub(b.window_start_ns) >= WINDOW_NS {
        b.window_start_ns = now;
        b.sent = 0;
    }
    if b.sent >= per_second {
        return false;
    }
    b.sent += 1;
    true
}

#[inline(always)]
fn bump(counter: EventCounter) {
    if let Some(c) = EVENT_COUNTERS.get_ptr_mut(counter as u32) {
        // SAFETY: `c` points to this CPU's copy of an in-bounds entry, valid for the
        // program run; nothing else writes it while this program runs on this CPU.
        unsafe { *c += 1 };
    }
}
