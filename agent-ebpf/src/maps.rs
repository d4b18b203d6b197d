//! Every map of the kernel programs. Names and capacities of the pinned ones come from
//! `ward_common`, so that the loader adopts the maps an earlier agent pinned.
use aya_ebpf::{
    macros::map,
    maps::{Array, HashMap, LpmTrie, LruHashMap, PerCpuArray, PerCpuHashMap, RingBuf},
};
use ward_common::{
    Addr, AddrKey, BreakglassKey, BreakglassValue, Config, Counter, CtKey, CtKey4, CtValue,
    EventBudget, FlowBudget, FragKey, HostKeyV4, HostKeyV6, NetKeyV6, OwnFilter, PairSlot,
    Quarantine, QuarantineKey, RulePair, RulePairKey, RuleRange, ZoneKeyV4, ZoneKeyV6, ZonePairKey,
    ATTACHED_CAPACITY, BREAKGLASS_CAPACITY, CONNTRACK_CAPACITY, EVENTS_RING_BYTES,
    EVENT_BUDGETS_CAPACITY, EVENT_COUNTER_COUNT, FAILSAFE_CAPACITY, FLOW_BUDGETS_CAPACITY,
    FRAGMENTS_CAPACITY, HOST_ADDRS_CAPACITY, PAIR_CACHE_PER_SLOT, QUARANTINE_CAPACITY,
    REASON_COUNT, RULES_CAPACITY, RULE_PAIRS_CAPACITY, VERDICT_COUNT, ZONES_CAPACITY,
    ZONE_HASH_FLAGS, ZONE_PAIR_CAPACITY,
};

use crate::context::Scratch;

#[map(name = "WARD_CONFIG")]
pub static CONFIG: Array<Config> = Array::pinned(1, 0);

#[map(name = "WARD_ZONES_V4")]
pub static ZONES_V4: LpmTrie<ZoneKeyV4, u32> = LpmTrie::pinned(ZONES_CAPACITY, 0);

#[map(name = "WARD_ZONES_V6")]
pub static ZONES_V6: LpmTrie<ZoneKeyV6, u32> = LpmTrie::pinned(ZONES_CAPACITY, 0);

#[map(name = "WARD_HOSTS4")]
pub static HOSTS_V4: HashMap<HostKeyV4, u32> = HashMap::pinned(ZONES_CAPACITY, ZONE_HASH_FLAGS);

#[map(name = "WARD_HOSTS6")]
pub static HOSTS_V6: HashMap<HostKeyV6, u32> = HashMap::pinned(ZONES_CAPACITY, ZONE_HASH_FLAGS);

#[map(name = "WARD_NETS6")]
pub static NETS_V6: HashMap<NetKeyV6, u32> = HashMap::pinned(ZONES_CAPACITY, ZONE_HASH_FLAGS);

#[map(name = "WARD_RULE_PAIRS")]
pub static RULE_PAIRS: HashMap<RulePairKey, RulePair> =
    HashMap::pinned(RULE_PAIRS_CAPACITY, ZONE_HASH_FLAGS);

#[map(name = "WARD_RULE_RANGES")]
pub static RULE_RANGES: Array<RuleRange> = Array::pinned(RULES_CAPACITY, 0);

#[map(name = "WARD_CT4")]
pub static CONNTRACK_V4: LruHashMap<CtKey4, CtValue> = LruHashMap::pinned(CONNTRACK_CAPACITY, 0);

#[map(name = "WARD_CT6")]
pub static CONNTRACK_V6: LruHashMap<CtKey, CtValue> = LruHashMap::pinned(CONNTRACK_CAPACITY, 0);

#[map(name = "WARD_FRAGS")]
pub static FRAGMENTS: LruHashMap<FragKey, u64> = LruHashMap::pinned(FRAGMENTS_CAPACITY, 0);

#[map(name = "WARD_PAIR_CNT")]
pub static ZONE_PAIR_COUNTERS: PerCpuHashMap<ZonePairKey, Counter> =
    PerCpuHashMap::pinned(ZONE_PAIR_CAPACITY, 0);

#[map(name = "WARD_PAIR_CACHE")]
pub static PAIR_CACHE: PerCpuArray<PairSlot> = PerCpuArray::pinned(2 * PAIR_CACHE_PER_SLOT, 0);

#[map(name = "WARD_REASON_CNT")]
pub static REASON_COUNTERS: PerCpuArray<Counter> =
    PerCpuArray::pinned(REASON_COUNT * VERDICT_COUNT, 0);

#[map(name = "WARD_EVENTS")]
pub static EVENTS: RingBuf = RingBuf::pinned(EVENTS_RING_BYTES, 0);

#[map(name = "WARD_EV_BUDGET")]
pub static EVENT_BUDGETS: LruHashMap<Addr, EventBudget> =
    LruHashMap::pinned(EVENT_BUDGETS_CAPACITY, 0);

#[map(name = "WARD_EV_CNT")]
pub static EVENT_COUNTERS: PerCpuArray<u64> = PerCpuArray::pinned(EVENT_COUNTER_COUNT, 0);

#[map(name = "WARD_QUARANTINE")]
pub static QUARANTINE: HashMap<QuarantineKey, Quarantine> = HashMap::pinned(QUARANTINE_CAPACITY, 0);

#[map(name = "WARD_FAILSAFE4")]
pub static FAILSAFE_V4: LpmTrie<[u8; 4], u32> = LpmTrie::pinned(FAILSAFE_CAPACITY, 0);

#[map(name = "WARD_FAILSAFE6")]
pub static FAILSAFE_V6: LpmTrie<[u8; 16], u32> = LpmTrie::pinned(FAILSAFE_CAPACITY, 0);

#[map(name = "WARD_BREAKGLASS")]
pub static BREAKGLASS: HashMap<BreakglassKey, BreakglassValue> =
    HashMap::pinned(BREAKGLASS_CAPACITY, 0);

#[map(name = "WARD_HOST_ADDRS")]
pub static HOST_ADDRS: HashMap<AddrKey, u32> = HashMap::pinned(HOST_ADDRS_CAPACITY, 0);

#[map(name = "WARD_OWN_FILTER")]
pub static OWN_FILTER: Array<OwnFilter> = Array::pinned(1, 0);

#[map(name = "WARD_ATTACHED")]
pub static ATTACHED: HashMap<u32, u32> = HashMap::pinned(ATTACHED_CAPACITY, 0);

#[map(name = "WARD_FLOW_BUDGET")]
pub static FLOW_BUDGETS: LruHashMap<Addr, FlowBudget> =
    LruHashMap::pinned(FLOW_BUDGETS_CAPACITY, 0);

#[map(name = "WARD_EV_CPU")]
pub static EVENT_BUDGET_CPU: PerCpuArray<EventBudget> = PerCpuArray::pinned(1, 0);

/// One [`Scratch`] per hook direction and CPU: XDP and TC never share one. Not pinned:
/// it holds one packet's state, nothing that outlives the packet.
#[map]
pub static SCRATCH: PerCpuArray<Scratch> = PerCpuArray::with_max_entries(2, 0);
