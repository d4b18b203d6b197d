//! The rule tables: for every (slot, source zone, destination zone, protocol) that a
//! rule covers, one entry of the pair hash names the run of that group's port ranges
//! in the range array; the ranges are disjoint and sorted, each owned by the first
//! rule (in file order) covering it, so a binary search over the run finds the rule
//! of a port, or none. One hash lookup and at most [`RANGE_SEARCH_STEPS`] array reads
//! answer, whatever the size of the policy: a group holds at most 65,536 ranges (one
//! per port), and most hold a handful.

/// Key of [`map_names::RULE_PAIRS`](crate::map_names::RULE_PAIRS): one (slot, zone
/// pair, protocol). Built field by field in the programs.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RulePairKey {
    /// The policy slot.
    pub slot: u8,
    /// `proto::*` code.
    pub proto: u8,
    /// Explicit padding.
    pub _pad: u16,
    /// Initiator's zone id.
    pub src_zone: u32,
    /// Responder's zone id.
    pub dst_zone: u32,
}

impl RulePairKey {
    /// The key of (`src_zone`, `dst_zone`, `proto`) in `slot`.
    #[inline(always)]
    pub const fn new(slot: u8, src_zone: u32, dst_zone: u32, proto: u8) -> Self {
        RulePairKey {
            slot,
            proto,
            _pad: 0,
            src_zone,
            dst_zone,
        }
    }
}

/// Value of [`map_names::RULE_PAIRS`](crate::map_names::RULE_PAIRS): where the group's
/// ranges are in its slot's part of the range array.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RulePair {
    /// Index of the group's first range, counted from the start of the slot's part
    /// (`slot * SLOT_RULE_RANGES`).
    pub first: u32,
    /// Number of ranges (at least 1, at most 65,536).
    pub count: u32,
}

/// An element of [`map_names::RULE_RANGES`](crate::map_names::RULE_RANGES): the ports
/// `first..=last` of a group belong to rule `rule_id`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RuleRange {
    /// First port (0 for ICMP).
    pub first: u16,
    /// Last port (0 for ICMP).
    pub last: u16,
    /// Id of the rule owning the range.
    pub rule_id: u32,
}

/// Ranges one slot may hold: the range array holds two slots, each its half.
pub const SLOT_RULE_RANGES: u32 = 1 << 20;
/// Capacity of the range array (both slots).
pub const RULES_CAPACITY: u32 = 2 * SLOT_RULE_RANGES;
/// Groups (zone pair and protocol with a rule) one slot may hold.
pub const SLOT_RULE_PAIRS: u32 = 1 << 18;
/// Capacity of the pair hash (both slots). Its bucket array is allocated whole (16
/// bytes a bucket), so it is sized for the groups a policy can have, not its ranges:
/// 8 MiB, where the range array's capacity would take 32.
pub const RULE_PAIRS_CAPACITY: u32 = 2 * SLOT_RULE_PAIRS;
/// Steps of the binary search over a group's ranges: `ceil(log2(65,536))`, the most
/// ranges a group can hold (one per port), plus one.
pub const RANGE_SEARCH_STEPS: u32 = 17;
const _: () = assert!(1u32 << (RANGE_SEARCH_STEPS - 1) >= 65_536);

// SAFETY (each impl): `#[repr(C)]`, fields of plain integer types, explicit padding:
// every bit pattern is a valid value and no byte is uninitialised.
#[cfg(feature = "user")]
unsafe impl aya::Pod for RulePairKey {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for RulePair {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for RuleRange {}
