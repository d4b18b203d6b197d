//! Map and program names, map capacities, and the agent's settings ([`Config`]).

/// Names of the maps, shared by the kernel definitions and the loader.
pub mod map_names {
    /// `Array<Config>`, one entry.
    pub const CONFIG: &str = "WARD_CONFIG";
    /// `LpmTrie<ZoneKeyV4, u32>`: address prefix → zone id, for the prefixes not in
    /// [`HOSTS_V4`].
    pub const ZONES_V4: &str = "WARD_ZONES_V4";
    /// `LpmTrie<ZoneKeyV6, u32>`: address prefix → zone id, for the prefixes not in
    /// [`HOSTS_V6`] or [`NETS_V6`].
    pub const ZONES_V6: &str = "WARD_ZONES_V6";
    /// `HashMap<HostKeyV4, u32>`: IPv4 /32 → zone id (looked up before [`ZONES_V4`]).
    pub const HOSTS_V4: &str = "WARD_HOSTS4";
    /// `HashMap<HostKeyV6, u32>`: IPv6 /128 → zone id (looked up first).
    pub const HOSTS_V6: &str = "WARD_HOSTS6";
    /// `HashMap<NetKeyV6, u32>`: IPv6 /64 with no longer prefix (but a /128) inside
    /// it → zone id (looked up after [`HOSTS_V6`], before [`ZONES_V6`]).
    pub const NETS_V6: &str = "WARD_NETS6";
    /// `HashMap<RulePairKey, RulePair>`: (slot, zones, protocol) → the group's run of
    /// ranges in [`RULE_RANGES`].
    pub const RULE_PAIRS: &str = "WARD_RULE_PAIRS";
    /// `Array<RuleRange>`: each slot's port ranges and their rules, by group, sorted.
    pub const RULE_RANGES: &str = "WARD_RULE_RANGES";
    /// `LruHashMap<CtKey4, CtValue>`: tracked IPv4 connections, shared by all hooks
    /// and CPUs.
    pub const CONNTRACK_V4: &str = "WARD_CT4";
    /// `LruHashMap<CtKey, CtValue>`: tracked IPv6 connections, shared by all hooks and
    /// CPUs.
    pub const CONNTRACK_V6: &str = "WARD_CT6";
    /// `LruHashMap<FragKey, u64>`: first fragments that were allowed.
    pub const FRAGMENTS: &str = "WARD_FRAGS";
    /// `PerCpuHashMap<ZonePairKey, Counter>`: packets and bytes per zone pair and verdict.
    pub const ZONE_PAIR_COUNTERS: &str = "WARD_PAIR_CNT";
    /// `PerCpuArray<PairSlot>` indexed by [`pair_cache_index`](crate::pair_cache_index):
    /// each CPU's direct-mapped cache of zone-pair counters, counted with one add; a pair
    /// whose entry another pair holds is counted in [`ZONE_PAIR_COUNTERS`]. The agent
    /// sums both.
    pub const PAIR_CACHE: &str = "WARD_PAIR_CACHE";
    /// `PerCpuArray<Counter>` indexed by [`reason_counter_index`](crate::reason_counter_index).
    pub const REASON_COUNTERS: &str = "WARD_REASON_CNT";
    /// `RingBuf` of [`FlowEvent`](crate::FlowEvent)s.
    pub const EVENTS: &str = "WARD_EVENTS";
    /// `LruHashMap<Addr, EventBudget>`: events sent per source in the current second.
    pub const EVENT_BUDGETS: &str = "WARD_EV_BUDGET";
    /// `PerCpuArray<u64>` indexed by [`EventCounter`](crate::EventCounter).
    pub const EVENT_COUNTERS: &str = "WARD_EV_CNT";
    /// `HashMap<QuarantineKey, Quarantine>`: hosts cut off by the response.
    pub const QUARANTINE: &str = "WARD_QUARANTINE";
    /// `LpmTrie<[u8; 4], u32>`: IPv4 management prefixes of the failsafe.
    pub const FAILSAFE_V4: &str = "WARD_FAILSAFE4";
    /// `LpmTrie<[u8; 16], u32>`: IPv6 management prefixes of the failsafe.
    pub const FAILSAFE_V6: &str = "WARD_FAILSAFE6";
    /// `HashMap<BreakglassKey, BreakglassValue>`: break-glass allows, expiring in the kernel.
    pub const BREAKGLASS: &str = "WARD_BREAKGLASS";
    /// `HashMap<AddrKey, u32>`: this host's own addresses (written by the agent), which
    /// never arrive from outside as a source.
    pub const HOST_ADDRS: &str = "WARD_HOST_ADDRS";
    /// `Array<OwnFilter>`, one entry: the filter in front of [`HOST_ADDRS`].
    pub const OWN_FILTER: &str = "WARD_OWN_FILTER";
    /// `HashMap<u32, u32>`: ifindex → 1 for each interface whose ingress the XDP program
    /// guards; a gateway's egress program judges packets forwarded from any other.
    pub const ATTACHED: &str = "WARD_ATTACHED";
    /// `LruHashMap<Addr, FlowBudget>`: each source's budget of new tracked flows.
    pub const FLOW_BUDGETS: &str = "WARD_FLOW_BUDGET";
    /// `PerCpuArray<EventBudget>`, one entry: events sent by this CPU in the current
    /// second, against [`Config::events_per_cpu`](crate::Config::events_per_cpu).
    pub const EVENT_BUDGET_CPU: &str = "WARD_EV_CPU";
}

/// Names of the programs in the object file.
pub mod program_names {
    /// XDP program judging received frames.
    pub const XDP_INGRESS: &str = "ward_xdp";
    /// TC classifier judging sent frames.
    pub const TC_EGRESS: &str = "ward_tc_egress";
    /// `XDP_PASS` and nothing else: the floor `cargo xtask bench` measures against.
    pub const BENCH_FLOOR: &str = "ward_bench_floor";
    /// `XDP_TX`: the load generator of `cargo xtask bench` (with live frames).
    pub const BENCH_TX: &str = "ward_bench_tx";
}

/// Capacity of [`map_names::HOST_ADDRS`].
pub const HOST_ADDRS_CAPACITY: u32 = 1024;
/// Capacity of [`map_names::ATTACHED`].
pub const ATTACHED_CAPACITY: u32 = 256;
/// Capacity of [`map_names::FLOW_BUDGETS`].
pub const FLOW_BUDGETS_CAPACITY: u32 = 1 << 16;

/// Capacity of the zone tries, and of each zone hash (both slots together): one
/// policy's prefixes of a family, split between the trie and the hashes, never take
/// more than half of any.
pub const ZONES_CAPACITY: u32 = 1 << 19;
/// `BPF_F_NO_PREALLOC`: the zone hashes and the rule pair hash allocate their entries
/// as they are written (their capacity is a bound, not memory set aside).
pub const ZONE_HASH_FLAGS: u32 = 1;
/// Capacity of each connection table (IPv4 and IPv6), unless configured.
pub const CONNTRACK_CAPACITY: u32 = 1 << 20;
/// Capacity of the fragment table.
pub const FRAGMENTS_CAPACITY: u32 = 1 << 14;
/// Capacity of the zone-pair counter map.
pub const ZONE_PAIR_CAPACITY: u32 = 1 << 16;
/// Size in bytes of the event ring buffer.
pub const EVENTS_RING_BYTES: u32 = 1 << 22;
/// Capacity of the per-source event budget table.
pub const EVENT_BUDGETS_CAPACITY: u32 = 1 << 14;
/// Capacity of the quarantine table.
pub const QUARANTINE_CAPACITY: u32 = 4096;
/// Capacity of each failsafe trie (management prefixes).
pub const FAILSAFE_CAPACITY: u32 = 256;
/// Capacity of the break-glass table (grants × ports × both slots).
pub const BREAKGLASS_CAPACITY: u32 = 1024;

/// `Config::flags` bit: gateway role (TC egress leaves forwarded packets to ingress).
pub const FLAG_GATEWAY: u32 = 1;
/// `Config::flags` bit: audit mode for everything (nothing is dropped).
pub const FLAG_AUDIT: u32 = 2;
/// `Config::flags` bit: the break-glass table has entries (else its lookups are skipped).
pub const FLAG_BREAKGLASS: u32 = 4;

/// The places of the zone lookup a slot may have no entry in (`Config::zone_skip`).
pub mod zone_skip {
    /// No IPv4 /32 (the host hash `WARD_HOSTS4`).
    pub const HOSTS_V4: u8 = 1;
    /// No shorter IPv4 prefix (the trie `WARD_ZONES_V4`).
    pub const TRIE_V4: u8 = 2;
    /// No IPv6 /128 (the host hash `WARD_HOSTS6`).
    pub const HOSTS_V6: u8 = 4;
    /// No IPv6 /64 in the /64 hash `WARD_NETS6`.
    pub const NETS_V6: u8 = 8;
    /// No other IPv6 prefix (the trie `WARD_ZONES_V6`).
    pub const TRIE_V6: u8 = 16;
}

/// Which flows produce events (`Config::log_level`).
pub mod log_level {
    /// No events.
    pub const OFF: u32 = 0;
    /// Denied (and audited) packets.
    pub const DENIED: u32 = 1;
    /// Denied packets and newly allowed flows.
    pub const DENIED_AND_NEW_ALLOWED: u32 = 2;
}

/// Agent settings the kernel programs read; index 0 of [`map_names::CONFIG`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// Policy generation in force; `generation & 1` is its slot. 0 means no policy yet.
    pub generation: u64,
    /// `FLAG_*` bits.
    pub flags: u32,
    /// `log_level::*`.
    pub log_level: u32,
    /// Events a single source address may cause per second; the rest are suppressed.
    pub events_per_source: u32,
    /// Entries in the quarantine table (0: the programs skip its lookups).
    pub quarantined: u32,
    /// New tracked flows a source may open per second once its burst is spent
    /// (0: no limit).
    pub flows_per_source: u32,
    /// New tracked flows a source may open at once.
    pub flow_burst: u32,
    /// Events each CPU may send per second, all sources together (the agent divides
    /// its global budget by the number of CPUs; 0: no limit).
    pub events_per_cpu: u32,
    /// Per slot, the places of the zone lookup where that slot has no entry
    /// ([`zone_skip`] bits), which the programs then do not consult; 0 consults every
    /// place. Written by the agent with the slot's entries, zeroed at each load.
    pub zone_skip: [u8; 2],
    /// Explicit padding.
    pub _pad: u16,
    /// Failsafe TCP ports (0: unused), honoured ahead of quarantine and policy for
    /// peers in the failsafe tries; all zero: no failsafe.
    pub failsafe_ports: [u16; FAILSAFE_PORTS],
    /// Digest of the policy each slot holds, written by the agent (the programs never
    /// read it): a restarted agent leaves an unchanged policy in place.
    pub slot_digest: [u64; 2],
}

/// How many failsafe TCP ports [`Config::failsafe_ports`] holds.
pub const FAILSAFE_PORTS: usize = 8;

#[cfg(feature = "user")]
// SAFETY: `#[repr(C)]`, fields of plain integer types and arrays of them, explicit
// padding: every bit pattern is a valid value and no byte is uninitialised.
unsafe impl aya::Pod for Config {}
