//! Connection tracking: connection and fragment keys, connection state, idle timeouts.
use crate::keys::Addr;

/// How long an idle connection stays tracked, by protocol and TCP state.
pub mod timeouts {
    /// TCP, established (and TCP entries without a state, adopted from older agents).
    pub const TCP_NS: u64 = 7_200 * 1_000_000_000;
    /// TCP, half-open: SYN sent, or SYN and SYN-ACK seen but not the final ACK.
    pub const TCP_HALF_OPEN_NS: u64 = 60 * 1_000_000_000;
    /// TCP, a FIN seen in either direction.
    pub const TCP_CLOSING_NS: u64 = 120 * 1_000_000_000;
    /// TCP, an RST seen.
    pub const TCP_CLOSED_NS: u64 = 10 * 1_000_000_000;
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

/// An IPv4 connection, as [`map_names::CONNTRACK_V4`] keys it: [`CtKey`] without the
/// family and the unused address words (13 bytes and padding, against 40).
///
/// [`map_names::CONNTRACK_V4`]: crate::map_names::CONNTRACK_V4
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CtKey4 {
    /// Lower endpoint's address (the first word of its [`Addr`]).
    pub addr_a: u32,
    /// Higher endpoint's address.
    pub addr_b: u32,
    /// Lower endpoint's port (ICMP echo: the echo identifier).
    pub port_a: u16,
    /// Higher endpoint's port.
    pub port_b: u16,
    /// `proto::*`.
    pub proto: u8,
    /// Explicit padding (two aligned fields: a 3-byte array's zeroing becomes an
    /// out-of-line `memset` call in the kernel programs).
    pub _pad: u8,
    /// Explicit padding.
    pub _pad2: u16,
}

impl CtKey4 {
    /// The IPv4 table's key of `key` (whose family is IPv4).
    #[inline(always)]
    pub const fn of(key: &CtKey) -> Self {
        CtKey4 {
            addr_a: key.addr_a[0],
            addr_b: key.addr_b[0],
            port_a: key.port_a,
            port_b: key.port_b,
            proto: key.proto,
            _pad: 0,
            _pad2: 0,
        }
    }

    /// The family-neutral key of this IPv4 connection.
    pub const fn key(&self) -> CtKey {
        CtKey {
            addr_a: [self.addr_a, 0, 0, 0],
            addr_b: [self.addr_b, 0, 0, 0],
            port_a: self.port_a,
            port_b: self.port_b,
            proto: self.proto,
            family: crate::family::V4,
            _pad: [0; 2],
        }
    }
}

/// `CtValue::flags` bit: endpoint `a` opened the connection.
pub const CT_INITIATOR_A: u8 = 1;
/// `CtValue::flags` bit: no rule allows the connection; it passes because it is audited.
pub const CT_AUDITED: u8 = 2;

/// TCP connection states kept in [`CtValue::tcp_state`], in the spirit of
/// nf_conntrack: only a SYN opens an entry, and each state has its own idle timeout.
pub mod tcp_state {
    /// No state: not TCP, or an entry pinned by an older agent (treated as established).
    pub const NONE: u8 = 0;
    /// The initiator's SYN seen.
    pub const SYN_SENT: u8 = 1;
    /// The responder's SYN-ACK seen.
    pub const SYN_RECV: u8 = 2;
    /// The initiator's ACK of the SYN-ACK seen.
    pub const ESTABLISHED: u8 = 3;
    /// A FIN seen in either direction.
    pub const CLOSING: u8 = 4;
    /// An RST seen.
    pub const CLOSED: u8 = 5;
}

/// Rule id of a connection the failsafe opened (management access to a failsafe port):
/// never re-judged by the policy.
pub const FAILSAFE_RULE: u32 = u32::MAX - 1;

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
    /// [`tcp_state`] of a TCP connection.
    pub tcp_state: u8,
    /// Explicit padding.
    pub _pad: [u8; 2],
    /// Per endpoint (`[a, b]`), the hook where a packet it sent was last judged in full
    /// and found established, as [`fast_hook`] encodes it (0: none yet). The kernel's
    /// fast path passes that endpoint's next packets from the same hook by this entry
    /// alone for [`FAST_RECHECK_JIFFIES`] after [`CtValue::fast_jiffies`].
    pub fast_hook: [u32; 2],
    /// Per endpoint, `jiffies` when `fast_hook` was written (64 bits: a permission
    /// never looks fresh again by wrapping around).
    pub fast_jiffies: [u64; 2],
}

/// How long after a full judgement an endpoint's packets may pass by the fast path,
/// in jiffies: a tenth of a second at `HZ=1000`, a second at `HZ=100`. Within it,
/// changes to what the full pipeline reads besides the policy generation, the
/// quarantine table's size and the entry itself (this host's addresses, the routes
/// of the reverse-path check, the failsafe settings) may not yet apply to packets
/// of an established connection (`docs/dataplane.md`, "Fast path").
pub const FAST_RECHECK_JIFFIES: u64 = 100;

/// [`CtValue::fast_hook`] of a packet judged at `ifindex` in `direction`: never 0.
#[inline(always)]
pub const fn fast_hook(ifindex: u32, direction: u8) -> u32 {
    (ifindex << 2) | ((direction as u32 & 1) << 1) | 1
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

/// A source's budget of new tracked flows (a token bucket): it may open
/// `Config::flow_burst` flows at once and `Config::flows_per_source` a second after that.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowBudget {
    /// When `tokens` was last refilled (`bpf_ktime_get_ns`).
    pub refilled_ns: u64,
    /// New flows the source may still open.
    pub tokens: u32,
    /// Explicit padding.
    pub _pad: u32,
}

// SAFETY (each impl): `#[repr(C)]`, fields of plain integer types and arrays of them,
// explicit padding: every bit pattern is a valid value and no byte is uninitialised.
#[cfg(feature = "user")]
unsafe impl aya::Pod for CtKey {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for CtKey4 {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for CtValue {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for FragKey {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for FlowBudget {}
