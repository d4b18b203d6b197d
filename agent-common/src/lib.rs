//! Types and constants shared by Ward's kernel programs and its user-space agent.
//!
//! Every type here crosses the kernel/user boundary through a BPF map, so each is
//! `#[repr(C)]` with explicit padding and no `bool`. The user side gets
//! `aya::Pod` impls through the `user` feature.
//!
//! # Policy slots
//! The policy lives twice in the zone and rule maps, in slot 0 and slot 1 (the slot
//! is the first byte of every key). [`Config::generation`] names the policy in
//! force and its parity names its slot: the agent fills the idle slot, then
//! publishes the new generation with one aligned 8-byte write, so a packet sees
//! either the whole old or the whole new policy.
#![cfg_attr(target_arch = "bpf", no_std)]

/// Zone id of `world`: every address that no zone's prefix covers.
pub const WORLD_ZONE: u32 = 0;

/// Internal protocol codes used in rule keys and connection keys.
pub mod proto {
    /// ICMP echo for IPv4 and ICMPv6 echo for IPv6 alike.
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
}

/// Names of the maps, shared by the kernel definitions and the loader.
pub mod map_names {
    /// `Array<Config>`, one entry.
    pub const CONFIG: &str = "WARD_CONFIG";
    /// `LpmTrie<ZoneKeyV4, u32>`: address prefix → zone id.
    pub const ZONES_V4: &str = "WARD_ZONES_V4";
    /// `LpmTrie<ZoneKeyV6, u32>`: address prefix → zone id.
    pub const ZONES_V6: &str = "WARD_ZONES_V6";
    /// `LpmTrie<RuleKey, u32>`: (zones, protocol, port prefix) → rule id.
    pub const RULES: &str = "WARD_RULES";
    /// `LruHashMap<CtKey, CtValue>`: tracked connections, shared by all hooks and CPUs.
    pub const CONNTRACK: &str = "WARD_CT";
    /// `LruHashMap<FragKey, u64>`: first fragments that were allowed.
    pub const FRAGMENTS: &str = "WARD_FRAGS";
    /// `PerCpuHashMap<ZonePairKey, Counter>`: packets and bytes per zone pair and verdict.
    pub const ZONE_PAIR_COUNTERS: &str = "WARD_PAIR_CNT";
    /// `PerCpuArray<Counter>` indexed by [`reason_counter_index`].
    pub const REASON_COUNTERS: &str = "WARD_REASON_CNT";
    /// `RingBuf` of [`FlowEvent`]s.
    pub const EVENTS: &str = "WARD_EVENTS";
    /// `LruHashMap<Addr, EventBudget>`: events sent per source in the current second.
    pub const EVENT_BUDGETS: &str = "WARD_EV_BUDGET";
    /// `PerCpuArray<u64>` indexed by [`EventCounter`].
    pub const EVENT_COUNTERS: &str = "WARD_EV_CNT";
    /// `HashMap<QuarantineKey, Quarantine>`: hosts cut off by the response.
    pub const QUARANTINE: &str = "WARD_QUARANTINE";
    /// `LpmTrie<[u8; 4], u32>`: IPv4 management prefixes of the failsafe.
    pub const FAILSAFE_V4: &str = "WARD_FAILSAFE4";
    /// `LpmTrie<[u8; 16], u32>`: IPv6 management prefixes of the failsafe.
    pub const FAILSAFE_V6: &str = "WARD_FAILSAFE6";
    /// `HashMap<BreakglassKey, BreakglassValue>`: break-glass allows, expiring in the kernel.
    pub const BREAKGLASS: &str = "WARD_BREAKGLASS";
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

/// Capacity of the zone tries (both slots together).
pub const ZONES_CAPACITY: u32 = 1 << 19;
/// Capacity of the rule trie (both slots together).
pub const RULES_CAPACITY: u32 = 1 << 21;
/// Capacity of the connection table.
pub const CONNTRACK_CAPACITY: u32 = 1 << 20;
/// Capacity of the fragment table.
pub const FRAGMENTS_CAPACITY: u32 = 1 << 14;
/// Capacity of the zone-pair counter map.
pub const ZONE_PAIR_CAPACITY: u32 = 1 << 16;
/// Size in bytes of the event ring buffer.
pub const EVENTS_RING_BYTES: u32 = 1 << 22;
/// Capacity of the per-source event budget table.
pub const EVENT_BUDGETS_CAPACITY: u32 = 1 << 14;

/// Bit of a zone trie value that puts the zone in audit mode.
pub const ZONE_AUDIT: u32 = 1 << 31;
/// Bit of a zone trie value: quarantined hosts may still talk with this zone.
pub const ZONE_QUARANTINE_ALLOW: u32 = 1 << 30;
/// The zone id part of a zone trie value.
pub const ZONE_ID_MASK: u32 = !(ZONE_AUDIT | ZONE_QUARANTINE_ALLOW);
/// Capacity of the quarantine table.
pub const QUARANTINE_CAPACITY: u32 = 4096;
/// `FlowEvent::rule_id` and `CtValue::rule_id` when no rule decided.
pub const NO_RULE: u32 = u32::MAX;

/// Bits of a [`RuleKey`] before the port: slot, source zone, destination zone, protocol.
pub const RULE_KEY_FIXED_BITS: u32 = 8 + 32 + 32 + 8;
/// Bits of a [`ZoneKeyV4`] before the address: the slot.
pub const ZONE_KEY_SLOT_BITS: u32 = 8;

/// Seconds an idle connection stays tracked, by protocol.
pub mod timeouts {
    /// TCP.
    pub const TCP_NS: u64 = 7_200 * 1_000_000_000;
    /// UDP.
    pub const UDP_NS: u64 = 120 * 1_000_000_000;
    /// ICMP echo.
    pub const ICMP_NS: u64 = 30 * 1_000_000_000;
    /// A first fragment's permission for the rest of its packet.
    pub const FRAGMENT_NS: u64 = 30 * 1_000_000_000;
}

/// `Config::flags` bit: gateway role (TC egress leaves forwarded packets to ingress).
pub const FLAG_GATEWAY: u32 = 1;
/// `Config::flags` bit: audit mode for everything (nothing is dropped).
pub const FLAG_AUDIT: u32 = 2;
/// `Config::flags` bit: the break-glass table has entries (else its lookups are skipped).
pub const FLAG_BREAKGLASS: u32 = 4;

/// Bit of a rule id that marks a break-glass grant; the low bits are the grant's number.
pub const RULE_BREAKGLASS: u32 = 1 << 31;
/// Whether `rule_id` is a break-glass grant's (not a policy rule's, not [`NO_RULE`]).
#[inline(always)]
pub const fn is_breakglass(rule_id: u32) -> bool {
    rule_id != NO_RULE && rule_id & RULE_BREAKGLASS != 0
}

/// Break-glass grants in force at once, at most.
pub const BREAKGLASS_GRANTS: u32 = 16;
/// Capacity of the break-glass table (grants × ports × both slots).
pub const BREAKGLASS_CAPACITY: u32 = 1024;

/// Key of the break-glass table: one (slot, zones, protocol, destination port). ICMP
/// uses port 0, as in the rule trie.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BreakglassKey {
    /// Initiator's zone id (in the slot's policy).
    pub src_zone: u32,
    /// Responder's zone id.
    pub dst_zone: u32,
    /// Destination port.
    pub port: u16,
    /// `proto::*`.
    pub proto: u8,
    /// Policy slot the zone ids belong to.
    pub slot: u8,
}

/// Length of the zone names, the service and the author in [`BreakglassValue`].
pub const BREAKGLASS_NAME_LEN: usize = 32;
/// Length of [`BreakglassValue::reason`].
pub const BREAKGLASS_REASON_LEN: usize = 96;

/// A break-glass allow. The kernel reads `expires_ns` and `rule_id`; the rest is the
/// grant as people asked for it, kept in the pinned map so that it outlives the agent
/// process (every entry of a grant holds all of it).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakglassValue {
    /// CLOCK_MONOTONIC expiry in ns (`bpf_ktime_get_ns`); never 0.
    pub expires_ns: u64,
    /// [`RULE_BREAKGLASS`] | the grant's number.
    pub rule_id: u32,
    /// Explicit padding.
    pub _pad: u32,
    /// When it was granted, seconds since the Unix epoch.
    pub since_unix: u64,
    /// When it expires, seconds since the Unix epoch.
    pub expires_unix: u64,
    /// Initiator zone name (UTF-8, zero-padded).
    pub from: [u8; BREAKGLASS_NAME_LEN],
    /// Responder zone name.
    pub to: [u8; BREAKGLASS_NAME_LEN],
    /// The service as asked (`https`, `tcp/8443`…).
    pub service: [u8; BREAKGLASS_NAME_LEN],
    /// Who asked.
    pub by: [u8; BREAKGLASS_NAME_LEN],
    /// Why.
    pub reason: [u8; BREAKGLASS_REASON_LEN],
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
    /// Failsafe TCP ports (0: unused), honoured ahead of quarantine and policy for
    /// peers in the failsafe tries; all zero: no failsafe.
    pub failsafe_ports: [u16; FAILSAFE_PORTS],
    /// Digest of the policy each slot holds, written by the agent (the programs never
    /// read it): a restarted agent leaves an unchanged policy in place.
    pub slot_digest: [u64; 2],
}

/// How many failsafe TCP ports [`Config::failsafe_ports`] holds.
pub const FAILSAFE_PORTS: usize = 8;
/// Capacity of each failsafe trie (management prefixes).
pub const FAILSAFE_CAPACITY: u32 = 256;

/// Slot of a generation.
#[inline(always)]
pub const fn slot_of(generation: u64) -> u8 {
    (generation & 1) as u8
}

/// Key data of the IPv4 zone trie: slot, then the address in network byte order.
pub type ZoneKeyV4 = [u8; 5];
/// Key data of the IPv6 zone trie: slot, then the address in network byte order.
pub type ZoneKeyV6 = [u8; 17];

/// Builds IPv4 zone key data; the trie prefix length is `ZONE_KEY_SLOT_BITS + prefix`.
#[inline(always)]
pub const fn zone_key_v4(slot: u8, addr: [u8; 4]) -> ZoneKeyV4 {
    [slot, addr[0], addr[1], addr[2], addr[3]]
}

/// Builds IPv6 zone key data; the trie prefix length is `ZONE_KEY_SLOT_BITS + prefix`.
#[inline(always)]
pub const fn zone_key_v6(slot: u8, addr: [u8; 16]) -> ZoneKeyV6 {
    let mut key = [0u8; 17];
    key[0] = slot;
    let mut i = 0;
    while i < 16 {
        key[i + 1] = addr[i];
        i += 1;
    }
    key
}

/// Key data of the rule trie: every field big-endian so prefixes run over the port bits.
/// The trie prefix length is `RULE_KEY_FIXED_BITS + port_prefix_bits`.
pub type RuleKey = [u8; 12];

/// Builds rule key data for one (slot, source zone, destination zone, protocol, port).
#[inline(always)]
pub const fn rule_key(slot: u8, src_zone: u32, dst_zone: u32, proto: u8, port: u16) -> RuleKey {
    let s = src_zone.to_be_bytes();
    let d = dst_zone.to_be_bytes();
    let p = port.to_be_bytes();
    [
        slot, s[0], s[1], s[2], s[3], d[0], d[1], d[2], d[3], proto, p[0], p[1],
    ]
}

/// Address family code in [`CtKey`] and [`FragKey`].
pub mod family {
    /// IPv4 (address in the first 4 bytes, the rest zero).
    pub const V4: u8 = 4;
    /// IPv6.
    pub const V6: u8 = 6;
}

/// An IP address as four 32-bit words holding the packet's bytes (network byte order in
/// memory); IPv4 uses the first word and leaves the others zero. Words, not bytes, so
/// the kernel copies and compares them a word at a time.
pub type Addr = [u32; 4];

/// Builds an [`Addr`] from an address's bytes as they appear in a packet.
pub const fn addr_from_bytes(b: [u8; 16]) -> Addr {
    let mut out = [0u32; 4];
    let mut i = 0;
    while i < 4 {
        out[i] = u32::from_ne_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]]);
        i += 1;
    }
    out
}

/// The bytes of an [`Addr`], as they appear in a packet.
pub const fn addr_to_bytes(a: Addr) -> [u8; 16] {
    let mut out = [0u8; 16];
    let mut i = 0;
    while i < 16 {
        out[i] = a[i / 4].to_ne_bytes()[i % 4];
        i += 1;
    }
    out
}

/// A connection, direction-free: `(addr_a, port_a)` is the lower endpoint, comparing
/// the address words as native integers, then the ports.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CtKey {
    /// Lower endpoint's address.
    pub addr_a: Addr,
    /// Higher endpoint's address.
    pub addr_b: Addr,
    /// Lower endpoint's port (ICMP echo: the echo identifier).
    pub port_a: u16,
    /// Higher endpoint's port (ICMP echo: the echo identifier).
    pub port_b: u16,
    /// `proto::*`.
    pub proto: u8,
    /// `family::*`.
    pub family: u8,
    /// Explicit padding.
    pub _pad: [u8; 2],
}

/// `CtValue::flags` bit: endpoint `a` opened the connection.
pub const CT_INITIATOR_A: u8 = 1;
/// `CtValue::flags` bit: no rule allows the connection; it passes because it is audited.
pub const CT_AUDITED: u8 = 2;

/// State of a tracked connection.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CtValue {
    /// `bpf_ktime_get_ns` of the last packet (updated at most once a second).
    pub last_seen_ns: u64,
    /// Policy generation that last allowed this connection.
    pub generation: u64,
    /// Rule that allowed it.
    pub rule_id: u32,
    /// Initiator's zone.
    pub src_zone: u32,
    /// Responder's zone.
    pub dst_zone: u32,
    /// `CT_*` bits.
    pub flags: u8,
    /// Explicit padding.
    pub _pad: [u8; 3],
}

/// A fragmented packet: first fragments that were allowed open it for the others.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FragKey {
    /// Source address.
    pub src: Addr,
    /// Destination address.
    pub dst: Addr,
    /// IP identification (IPv4: 16 bits; IPv6: fragment header identification).
    pub id: u32,
    /// IP protocol number of the payload.
    pub ip_proto: u8,
    /// `family::*`.
    pub family: u8,
    /// Explicit padding.
    pub _pad: [u8; 2],
}

/// Verdict of a packet, as counted.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    /// Passed.
    Allow = 0,
    /// Dropped.
    Deny = 1,
    /// Would have been dropped; passed because of audit mode.
    Audit = 2,
}

/// Number of [`Verdict`] values.
pub const VERDICT_COUNT: u32 = 3;

/// Index of the (reason, applied verdict) counter: audit mode passes packets whose
/// reason denies them, and they are counted as audited, not denied.
#[inline(always)]
pub const fn reason_counter_index(reason: Reason, verdict: Verdict) -> u32 {
    reason as u32 * VERDICT_COUNT + verdict as u32
}

impl Verdict {
    /// All verdicts, in code order.
    pub const ALL: [Verdict; VERDICT_COUNT as usize] =
        [Verdict::Allow, Verdict::Deny, Verdict::Audit];

    /// Stable lower-case name, as shown to users.
    pub const fn name(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Deny => "deny",
            Verdict::Audit => "audit",
        }
    }

    /// The verdict with this code, if any.
    pub const fn from_code(code: u32) -> Option<Verdict> {
        match code {
            0 => Some(Verdict::Allow),
            1 => Some(Verdict::Deny),
            2 => Some(Verdict::Audit),
            _ => None,
        }
    }
}

/// Why a packet got its verdict.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// New flow allowed by a rule.
    AllowedByRule = 0,
    /// Packet of a tracked connection.
    Established = 1,
    /// ICMP error about a tracked connection.
    Related = 2,
    /// Non-first fragment of an allowed first fragment.
    FragmentOfAllowed = 3,
    /// Not IPv4 or IPv6 (ARP and the like).
    NotIp = 4,
    /// IPv6 neighbour discovery.
    NeighbourDiscovery = 5,
    /// No rule allows the flow.
    NoRule = 6,
    /// Truncated or malformed header.
    Malformed = 7,
    /// Non-first fragment whose first fragment was not allowed.
    FragmentWithoutFirst = 8,
    /// Tracked connection that the policy in force no longer allows.
    PolicyRevoked = 9,
    /// No policy loaded yet.
    NoPolicy = 10,
    /// One end is quarantined and the other is not in a zone it may still reach.
    Quarantined = 11,
    /// Management access the agent configuration guarantees (failsafe), ahead of
    /// quarantine and policy.
    Failsafe = 12,
}

/// Number of [`Reason`] values.
pub const REASON_COUNT: u32 = 13;

impl Reason {
    /// The reason with this index, if any.
    pub const fn from_code(code: u32) -> Option<Reason> {
        if code < REASON_COUNT {
            Some(Reason::ALL[code as usize])
        } else {
            None
        }
    }

    /// All reasons, in index order.
    pub const ALL: [Reason; REASON_COUNT as usize] = [
        Reason::AllowedByRule,
        Reason::Established,
        Reason::Related,
        Reason::FragmentOfAllowed,
        Reason::NotIp,
        Reason::NeighbourDiscovery,
        Reason::NoRule,
        Reason::Malformed,
        Reason::FragmentWithoutFirst,
        Reason::PolicyRevoked,
        Reason::NoPolicy,
        Reason::Quarantined,
        Reason::Failsafe,
    ];

    /// Verdict that goes with this reason.
    pub const fn verdict(self) -> Verdict {
        match self {
            Reason::AllowedByRule
            | Reason::Established
            | Reason::Related
            | Reason::FragmentOfAllowed
            | Reason::NotIp
            | Reason::NeighbourDiscovery
            | Reason::Failsafe => Verdict::Allow,
            _ => Verdict::Deny,
        }
    }

    /// Stable kebab-case name, as shown to users.
    pub const fn name(self) -> &'static str {
        match self {
            Reason::AllowedByRule => "rule",
            Reason::Established => "established",
            Reason::Related => "related",
            Reason::FragmentOfAllowed => "fragment-of-allowed",
            Reason::NotIp => "not-ip",
            Reason::NeighbourDiscovery => "neighbour-discovery",
            Reason::NoRule => "no-rule",
            Reason::Malformed => "malformed",
            Reason::FragmentWithoutFirst => "fragment-without-first",
            Reason::PolicyRevoked => "policy-revoked",
            Reason::NoPolicy => "no-policy",
            Reason::Quarantined => "quarantined",
            Reason::Failsafe => "failsafe",
        }
    }
}

/// Key of the zone-pair counters.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ZonePairKey {
    /// Source zone id.
    pub src_zone: u32,
    /// Destination zone id.
    pub dst_zone: u32,
    /// `Verdict as u32`.
    pub verdict: u32,
    /// Policy slot whose zone ids these are (the generation in force's slot).
    pub slot: u32,
}

/// A packet and byte count.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counter {
    /// Packets.
    pub packets: u64,
    /// Bytes (frame length).
    pub bytes: u64,
}

/// Key of the quarantine table: one address.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct QuarantineKey {
    /// The address.
    pub addr: Addr,
    /// `family::*`.
    pub family: u8,
    /// Explicit padding.
    pub _pad: [u8; 3],
}

/// Length of [`Quarantine::reason`].
pub const QUARANTINE_REASON_LEN: usize = 96;
/// Length of [`Quarantine::by`].
pub const QUARANTINE_BY_LEN: usize = 32;

/// A quarantined host. The kernel reads `expires_ns`; the rest is for people, kept
/// in the pinned map so that it outlives the agent process.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quarantine {
    /// CLOCK_MONOTONIC expiry in ns (`bpf_ktime_get_ns`); 0 for none.
    pub expires_ns: u64,
    /// When it was set, seconds since the Unix epoch.
    pub since_unix: u64,
    /// When it expires, seconds since the Unix epoch; 0 for none.
    pub expires_unix: u64,
    /// Why (UTF-8, zero-padded).
    pub reason: [u8; QUARANTINE_REASON_LEN],
    /// Who or what set it (UTF-8, zero-padded).
    pub by: [u8; QUARANTINE_BY_LEN],
}

/// Hook that saw a packet (`FlowEvent::direction`).
pub mod direction {
    /// XDP on ingress.
    pub const INGRESS: u8 = 0;
    /// TC on egress.
    pub const EGRESS: u8 = 1;
}

/// One verdict worth telling about, sent through [`map_names::EVENTS`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowEvent {
    /// `bpf_ktime_get_ns` (CLOCK_MONOTONIC) when the packet was judged.
    pub time_ns: u64,
    /// Source address (zero when the packet was too malformed to tell).
    pub src: Addr,
    /// Destination address.
    pub dst: Addr,
    /// Interface index of the hook.
    pub ifindex: u32,
    /// Source zone id (in the policy of `slot`).
    pub src_zone: u32,
    /// Destination zone id.
    pub dst_zone: u32,
    /// Rule that allowed the flow, or [`NO_RULE`].
    pub rule_id: u32,
    /// `Reason as u32`.
    pub reason: u32,
    /// Frame length in bytes.
    pub bytes: u32,
    /// Source port (ICMP: identifier; 0 when none).
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// IP protocol number (6, 17, 1, 58…; 0 when not IP).
    pub ip_proto: u8,
    /// `family::*`, 0 when unknown.
    pub family: u8,
    /// `direction::*`.
    pub direction: u8,
    /// `Verdict as u8`.
    pub verdict: u8,
    /// Policy slot whose zone and rule ids these are.
    pub slot: u8,
    /// Explicit padding.
    pub _pad: [u8; 7],
}

/// Events a source caused in the current one-second window.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventBudget {
    /// Start of the window (`bpf_ktime_get_ns`).
    pub window_start_ns: u64,
    /// Events sent in the window.
    pub sent: u32,
    /// Explicit padding.
    pub _pad: u32,
}

/// Index into [`map_names::EVENT_COUNTERS`].
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventCounter {
    /// Written to the ring buffer.
    Emitted = 0,
    /// Not written: the source exceeded its budget.
    Suppressed = 1,
    /// Not written: the ring buffer was full.
    Lost = 2,
}

/// Number of [`EventCounter`] values.
pub const EVENT_COUNTER_COUNT: u32 = 3;

#[cfg(feature = "user")]
mod pod {
    use super::*;
    unsafe impl aya::Pod for Config {}
    unsafe impl aya::Pod for CtKey {}
    unsafe impl aya::Pod for CtValue {}
    unsafe impl aya::Pod for FragKey {}
    unsafe impl aya::Pod for ZonePairKey {}
    unsafe impl aya::Pod for Counter {}
    unsafe impl aya::Pod for FlowEvent {}
    unsafe impl aya::Pod for EventBudget {}
    unsafe impl aya::Pod for QuarantineKey {}
    unsafe impl aya::Pod for Quarantine {}
    unsafe impl aya::Pod for BreakglassKey {}
    unsafe impl aya::Pod for BreakglassValue {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_have_no_implicit_padding() {
        use core::mem::size_of;
        assert_eq!(size_of::<Config>(), 8 + 4 * 4 + 2 * FAILSAFE_PORTS + 2 * 8);
        assert_eq!(size_of::<FlowEvent>(), 8 + 16 + 16 + 6 * 4 + 2 * 2 + 5 + 7);
        assert_eq!(size_of::<EventBudget>(), 16);
        assert_eq!(size_of::<QuarantineKey>(), 20);
        assert_eq!(
            size_of::<Quarantine>(),
            24 + QUARANTINE_REASON_LEN + QUARANTINE_BY_LEN
        );
        assert_eq!(size_of::<CtKey>(), 16 + 16 + 2 + 2 + 1 + 1 + 2);
        assert_eq!(size_of::<CtValue>(), 8 + 8 + 4 + 4 + 4 + 1 + 3);
        assert_eq!(size_of::<FragKey>(), 16 + 16 + 4 + 1 + 1 + 2);
        assert_eq!(size_of::<ZonePairKey>(), 16);
        assert_eq!(size_of::<Counter>(), 16);
        assert_eq!(size_of::<BreakglassKey>(), 4 + 4 + 2 + 1 + 1);
        assert_eq!(
            size_of::<BreakglassValue>(),
            8 + 4 + 4 + 8 + 8 + 4 * BREAKGLASS_NAME_LEN + BREAKGLASS_REASON_LEN
        );
    }

    #[test]
    fn rule_key_is_big_endian_with_port_last() {
        let key = rule_key(1, 2, 0x0102_0304, proto::TCP, 443);
        assert_eq!(key, [1, 0, 0, 0, 2, 1, 2, 3, 4, 6, 0x01, 0xbb]);
        assert_eq!(RULE_KEY_FIXED_BITS, 80);
    }

    #[test]
    fn addr_bytes_round_trip() {
        let b: [u8; 16] = core::array::from_fn(|i| i as u8 * 7);
        assert_eq!(addr_to_bytes(addr_from_bytes(b)), b);
    }

    #[test]
    fn reasons_are_indexed_in_order() {
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
        assert_eq!(Reason::NoRule.verdict(), Verdict::Deny);
        assert_eq!(Reason::Established.verdict(), Verdict::Allow);
    }
}
