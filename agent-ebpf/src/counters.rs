//! Counters: packets and bytes per (reason, verdict) and per zone pair.
use ward_common::{reason_counter_index, Counter, Verdict, ZonePairKey};

use crate::{
    context::Decision,
    maps::{REASON_COUNTERS, ZONE_PAIR_COUNTERS},
};

/// Counts one packet of `bytes` under its reason and verdict, and under its zone pair
/// in `slot` when the zones are known.
#[inline(always)]
pub fn count(d: &Decision, verdict: Verdict, slot: u8, bytes: u64) {
    if let Some(c) = REASON_COUNTERS.get_ptr_mut(reason_counter_index(d.reason, verdict)) {
        // SAFETY: `c` points to this CPU's copy of an in-bounds entry, valid for the
        // program run; nothing else writes it while this program runs on this CPU.
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
        // SAFETY: `c` points to this CPU's copy of the entry (RCU keeps it valid);
        // nothing else writes it while this program runs on this CPU.
        Some(c) => unsafe {
            (*c).packets += 1;
            (*c).bytes += bytes;
        },
        None => {
            let _ = ZONE_PAIR_COUNTERS.insert(&key, &Counter { packets: 1, bytes }, 0);
        }
    }
}
