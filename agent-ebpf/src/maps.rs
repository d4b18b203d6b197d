//! Map definitions; names and capacities come from `ward_common`.
use aya_ebpf::{
    macros::map,
    maps::{Array, LpmTrie, LruHashMap, PerCpuArray, PerCpuHashMap},
};
use ward_common::{
    Config, Counter, CtKey, CtValue, FragKey, RuleKey, ZoneKeyV4, ZoneKeyV6, ZonePairKey,
    CONNTRACK_CAPACITY, FRAGMENTS_CAPACITY, REASON_COUNT, RULES_CAPACITY, ZONES_CAPACITY,
    ZONE_PAIR_CAPACITY,
};

#[map(name = "WARD_CONFIG")]
pub static CONFIG: Array<Config> = Array::pinned(1, 0);

#[map(name = "WARD_ZONES_V4")]
pub static ZONES_V4: LpmTrie<ZoneKeyV4, u32> = LpmTrie::pinned(ZONES_CAPACITY, 0);

#[map(name = "WARD_ZONES_V6")]
pub static ZONES_V6: LpmTrie<ZoneKeyV6, u32> = LpmTrie::pinned(ZONES_CAPACITY, 0);

#[map(name = "WARD_RULES")]
pub static RULES: LpmTrie<RuleKey, u32> = LpmTrie::pinned(RULES_CAPACITY, 0);

#[map(name = "WARD_CT")]
pub static CONNTRACK: LruHashMap<CtKey, CtValue> = LruHashMap::pinned(CONNTRACK_CAPACITY, 0);

#[map(name = "WARD_FRAGS")]
pub static FRAGMENTS: LruHashMap<FragKey, u64> = LruHashMap::pinned(FRAGMENTS_CAPACITY, 0);

#[map(name = "WARD_PAIR_CNT")]
pub static ZONE_PAIR_COUNTERS: PerCpuHashMap<ZonePairKey, Counter> =
    PerCpuHashMap::pinned(ZONE_PAIR_CAPACITY, 0);

#[map(name = "WARD_REASON_CNT")]
pub static REASON_COUNTERS: PerCpuArray<Counter> = PerCpuArray::pinned(REASON_COUNT, 0);
