//! Flow events sent through the ring buffer, their per-source budget and counters.
use crate::keys::Addr;

/// Hook that saw a packet (`FlowEvent::direction`).
pub mod direction {
    /// XDP on ingress.
    pub const INGRESS: u8 = 0;
    /// TC on egress.
    pub const EGRESS: u8 = 1;
}

/// One verdict worth telling about, sent through [`map_names::EVENTS`](crate::map_names::EVENTS).
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
    /// Rule that allowed the flow, or [`NO_RULE`](crate::NO_RULE).
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

/// Index into [`map_names::EVENT_COUNTERS`](crate::map_names::EVENT_COUNTERS).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventCounter {
    /// Written to the ring buffer.
    Emitted = 0,
    /// Not written: the source, or this CPU (all sources together), exceeded its budget.
    Suppressed = 1,
    /// Not written: the ring buffer was full.
    Lost = 2,
}

/// Number of [`EventCounter`] values.
pub const EVENT_COUNTER_COUNT: u32 = 3;

// SAFETY (each impl): `#[repr(C)]`, fields of plain integer types and arrays of them,
// explicit padding: every bit pattern is a valid value and no byte is uninitialised.
#[cfg(feature = "user")]
unsafe impl aya::Pod for FlowEvent {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for EventBudget {}
