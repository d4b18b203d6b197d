//! Per-source budget of new tracked flows: a token bucket per source address, so that
//! one host churning new flows cannot evict the other hosts' connections.
use ward_common::{Addr, FlowBudget};

use crate::{context::Settings, maps::FLOW_BUDGETS};

/// Takes one new flow from `src`'s budget; `false` when it has none left.
/// Not inlined, so that its entry gets a stack frame of its own.
#[inline(never)]
pub fn take_flow(src: &Addr, s: &Settings) -> bool {
    let rate = s.flows_per_source as u64;
    if rate == 0 {
        return true;
    }
    let burst = burst(s);
    let Some(b) = FLOW_BUDGETS.get_ptr_mut(src) else {
        let fresh = FlowBudget {
            refilled_ns: s.now(),
            tokens: burst - 1,
            _pad: 0,
        };
        let _ = FLOW_BUDGETS.insert(src, &fresh, 0);
        return true;
    };
    // SAFETY: the entry's memory stays valid for the program run (RCU); other CPUs may
    // spend the same source's budget at once, plain integers, so a race costs at most
    // a flow more or less, never an invalid value.
    let b = unsafe { &mut *b };
    // At least 1 ns a token: a divisor the compiler sees is never zero (a division
    // that could panic leaves the verifier a subprogram without an exit).
    let per_token_ns = (1_000_000_000 / rate).max(1);
    let earned = s.now().wrapping_sub(b.refilled_ns) / per_token_ns;
    if earned > 0 {
        let tokens = b.tokens as u64 + earned;
        b.tokens = if tokens > burst as u64 {
            burst
        } else {
            tokens as u32
        };
        b.refilled_ns = s.now();
    }
    if b.tokens == 0 {
        return false;
    }
    b.tokens -= 1;
    true
}

/// Returns to `src`'s budget the flow [`take_flow`] took for a flow that turned out to
/// be tracked already (a retransmitted SYN opens nothing).
#[inline(never)]
pub fn give_back(src: &Addr, s: &Settings) {
    if s.flows_per_source == 0 {
        return;
    }
    let burst = burst(s);
    if let Some(b) = FLOW_BUDGETS.get_ptr_mut(src) {
        // SAFETY: as in `take_flow`.
        let b = unsafe { &mut *b };
        if b.tokens < burst {
            b.tokens += 1;
        }
    }
}

/// The most new flows a source's budget holds: `flow_burst`, or the rate a second when
/// no burst is set.
#[inline(always)]
fn burst(s: &Settings) -> u32 {
    if s.flow_burst == 0 {
        s.flows_per_source
    } else {
        s.flow_burst
    }
}
