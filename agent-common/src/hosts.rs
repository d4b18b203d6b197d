//! Keys of the zone hashes: the exact hosts of the zones (IPv4 /32s, IPv6 /128s) and
//! the IPv6 /64s with no longer prefix inside them, found by one hash lookup each
//! before the zone tries are walked (which then hold only the other prefixes).
//!
//! A host is always the longest prefix covering its address, so a hit in a host hash
//! is the zone trie's answer. A /64 is in its hash only when no prefix of its slot
//! longer than /64 and shorter than /128 lies inside it (the agent checks), so once
//! the /128 hash missed, a hit there is the longest match too. Every key holds its slot
//! (see the crate's "Policy slots") and is built field by field in the programs.
use crate::Addr;

/// Prefix length of the entries of [`map_names::NETS_V6`](crate::map_names::NETS_V6).
pub const NET_V6_PREFIX: u8 = 64;

/// Key of the IPv4 host hash: one /32 of one slot.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostKeyV4 {
    /// The address, its bytes in packet order (the first word of an [`Addr`]).
    pub addr: u32,
    /// The policy slot.
    pub slot: u8,
    /// Explicit padding (two aligned fields: a 3-byte array's zeroing becomes an
    /// out-of-line `memset` call in the kernel programs).
    pub _pad: u8,
    /// Explicit padding.
    pub _pad2: u16,
}

/// Key of the IPv6 host hash: one /128 of one slot.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostKeyV6 {
    /// The address, as in packets.
    pub addr: Addr,
    /// The policy slot.
    pub slot: u8,
    /// Explicit padding.
    pub _pad: u8,
    /// Explicit padding.
    pub _pad2: u16,
}

/// Key of the IPv6 /64 hash: one /64 of one slot.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NetKeyV6 {
    /// The first 64 bits of the network, as in packets (the first two words of an
    /// [`Addr`]).
    pub net: [u32; 2],
    /// The policy slot.
    pub slot: u8,
    /// Explicit padding.
    pub _pad: u8,
    /// Explicit padding.
    pub _pad2: u16,
}

impl HostKeyV4 {
    /// The key of `addr` (its bytes in packet order) in `slot`.
    #[inline(always)]
    pub const fn new(slot: u8, addr: u32) -> Self {
        HostKeyV4 {
            addr,
            slot,
            _pad: 0,
            _pad2: 0,
        }
    }
}

impl HostKeyV6 {
    /// The key of `addr` in `slot`.
    #[inline(always)]
    pub const fn new(slot: u8, addr: Addr) -> Self {
        HostKeyV6 {
            addr,
            slot,
            _pad: 0,
            _pad2: 0,
        }
    }
}

impl NetKeyV6 {
    /// The key of the /64 of `addr` in `slot`.
    #[inline(always)]
    pub const fn new(slot: u8, addr: &Addr) -> Self {
        NetKeyV6 {
            net: [addr[0], addr[1]],
            slot,
            _pad: 0,
            _pad2: 0,
        }
    }
}

// SAFETY (each impl): `#[repr(C)]`, fields of plain integer types and arrays of them,
// explicit padding: every bit pattern is a valid value and no byte is uninitialised.
#[cfg(feature = "user")]
unsafe impl aya::Pod for HostKeyV4 {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for HostKeyV6 {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for NetKeyV6 {}
