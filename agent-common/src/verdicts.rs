//! Verdicts, the reasons behind them, and the counters kept per reason and zone pair.

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
    /// The source address cannot be genuine: a martian (loopback, multicast, …), one
    /// of this host's own addresses arriving from outside, or (gateway) an address the
    /// arrival interface does not route to (strict reverse-path check).
    Spoofed = 13,
    /// A new flow over its source's budget of new tracked flows.
    FlowLimit = 14,
    /// Link-scoped traffic (neighbour discovery, MLD) that did not come from the link
    /// (hop limit), is not addressed to it, or would be forwarded.
    NotOnLink = 15,
    /// Built-in allowance a host needs to keep its address: DHCPv4/DHCPv6 client
    /// exchanges and MLD on the link.
    BuiltIn = 16,
}

/// Number of [`Reason`] values.
pub const REASON_COUNT: u32 = 17;

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
        Reason::Spoofed,
        Reason::FlowLimit,
        Reason::NotOnLink,
        Reason::BuiltIn,
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
            | Reason::Failsafe
            | Reason::BuiltIn => Verdict::Allow,
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
            Reason::Spoofed => "spoofed",
            Reason::FlowLimit => "flow-limit",
            Reason::NotOnLink => "not-on-link",
            Reason::BuiltIn => "built-in",
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

/// One entry of a CPU's zone-pair counter cache ([`map_names::PAIR_CACHE`]): the pair
/// it counts (none while `counter.packets` is 0) and its count.
///
/// [`map_names::PAIR_CACHE`]: crate::map_names::PAIR_CACHE
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PairSlot {
    /// The zone pair, verdict and slot counted here.
    pub key: ZonePairKey,
    /// Its packets and bytes on this CPU.
    pub counter: Counter,
}

/// Entries of the zone-pair counter cache per policy slot (and CPU).
pub const PAIR_CACHE_PER_SLOT: u32 = 2048;

/// Index of `key` in the zone-pair counter cache: policy slot `s` owns the indices
/// `s * PAIR_CACHE_PER_SLOT ..`, so that the agent can empty a slot's entries while
/// the other slot's are counting.
#[inline(always)]
pub const fn pair_cache_index(key: &ZonePairKey) -> u32 {
    let h = key
        .src_zone
        .wrapping_mul(0x9e37_79b1)
        .wrapping_add(key.dst_zone.wrapping_mul(0x85eb_ca77))
        .wrapping_add(key.verdict.wrapping_mul(0xc2b2_ae3d));
    (key.slot & 1) * PAIR_CACHE_PER_SLOT + (h >> 21) % PAIR_CACHE_PER_SLOT
}

// SAFETY (each impl): `#[repr(C)]`, fields of plain integer types, no implicit
// padding: every bit pattern is a valid value and no byte is uninitialised.
#[cfg(feature = "user")]
unsafe impl aya::Pod for ZonePairKey {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for PairSlot {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for Counter {}
