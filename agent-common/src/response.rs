//! The response's kernel-side entries: quarantined hosts and break-glass grants, both
//! expiring in the kernel and kept in pinned maps so that they outlive the agent.
use crate::keys::{Addr, NO_RULE};

/// Key of the quarantine table: one address.
pub type QuarantineKey = AddrKey;

/// One address of either family, as a hash key (quarantine, the host's own addresses).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct AddrKey {
    /// The address.
    pub addr: Addr,
    /// `family::*`.
    pub family: u8,
    /// Explicit padding (two aligned fields: a 3-byte array's zeroing becomes an
    /// out-of-line `memset` call in the kernel programs).
    pub _pad: u8,
    /// Explicit padding.
    pub _pad2: u16,
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

/// Bit of a rule id that marks a break-glass grant; the low bits are the grant's number.
pub const RULE_BREAKGLASS: u32 = 1 << 31;
/// Whether `rule_id` is a break-glass grant's (not a policy rule's, not [`NO_RULE`]).
#[inline(always)]
pub const fn is_breakglass(rule_id: u32) -> bool {
    rule_id != NO_RULE && rule_id != crate::FAILSAFE_RULE && rule_id & RULE_BREAKGLASS != 0
}

/// Break-glass grants in force at once, at most.
pub const BREAKGLASS_GRANTS: u32 = 16;

/// Key of the break-glass table: one (slot, zones, protocol, destination port). ICMP
/// uses port 0, as in the rule tables.
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

// SAFETY (each impl): `#[repr(C)]`, fields of plain integer types and arrays of them,
// explicit padding: every bit pattern is a valid value and no byte is uninitialised.
#[cfg(feature = "user")]
unsafe impl aya::Pod for AddrKey {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for Quarantine {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for BreakglassKey {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for BreakglassValue {}
