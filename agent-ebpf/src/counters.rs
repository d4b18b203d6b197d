//! Counters: packets and bytes per (reason, verdict) and per zone pair, each one add
//! to a per-CPU array entry (a zone pair's cache entry taken by another pair: a
//! per-CPU hash map instead).
use ward_common::{pair_cache_index, reason_counter_index, Counter, Reason, Verdict, ZonePairKey};

use crate::{
    context::Decision,
    maps::{PAIR_CACHE, REASON_COUNTERS, ZONE_PAIR_COUNTERS},
};

/// Counts one packet of `bytes` under its reason and verdict, and under its zone pair
/// in `slot` when the zones are known.
#[inline(always)]
pub fn count(d: &Decision, verdict: Verdict, slot: u8, bytes: u64) {
    count_reason(d.reason, verdict, bytes);
    if d.has_zones {
        count_pair(d.src_zone, d.dst_zone, verdict, slot, bytes);
    }
}

/// Counts one packet of `bytes` under `reason` and `verdict`.
#[inline(always)]
pub fn count_reason(reason: Reason, verdict: Verdict, bytes: u64) {
    if let Some(c) = REASON_COUNTERS.get_ptr_mut(reason_counter_index(reason, verdict)) {
        // SAFETY: `c` points to this CPU's copy of an in-bounds entry, valid for the
        // program run; nothing else writes it while this program runs on this CPU.
        unsafe {
            (*c).packets += 1;
            (*c).bytes += bytes;
        }
    }
}

/// Counts one packet of `bytes` under the zone pair (`src_zone`, `dst_zone`) of the
/// policy in `slot`: in this CPU's cache entry for the pair when the pair holds it
/// (or it is free), else in the zone-pair hash map.
#[inline(always)]
pub fn count_pair(src_zone: u32, dst_zone: u32, verdict: Verdict, slot: u8, bytes: u64) {
    let key = ZonePairKey {
        src_zone,
        dst_zone,
        verdict: verdict as u32,
        slot: slot as u32,
    };
    if let Some(e) = PAIR_CACHE.get_ptr_mut(pair_cache_index(&key)) {
        // SAFETY: `e` points to this CPU's copy of an in-bounds entry, valid for the
        // program run; nothing else writes it while this program runs on this CPU (the
        // agent empties only the entries of the slot not in force).
        let e = unsafe { &mut *e };
        if e.counter.packets == 0 {
            e.key = key;
        }
        // Field by field: a derived comparison may become an out-of-line `bcmp`.
        let k = &e.key;
        if k.src_zone == src_zone
            && k.dst_zone == dst_zone
            && k.verdict == key.verdict
            && k.slot == key.slot
        {
            e.counter.packets += 1;
            e.counter.bytes += bytes;
            return;
        }
    }
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
