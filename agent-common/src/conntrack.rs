//! Connection tracking: connection and fragment keys, connection state, idle timeouts.
use crate::keys::Addr;

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

// SAFETY (each impl): `#[repr(C)]`, fields of plain integer types and arrays of them,
// explicit padding: every bit pattern is a valid value and no byte is uninitialised.
#[cfg(feature = "user")]
unsafe impl aya::Pod for CtKey {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for CtValue {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for FragKey {}
