//! Addresses, protocol and family codes, and the keys of the zone tries
//! (slot first, see the crate's "Policy slots").

/// Zone id of `world`: every address that no zone's prefix covers.
pub const WORLD_ZONE: u32 = 0;

/// Internal protocol codes used in rule and connection keys.
pub mod proto {
    /// ICMP echo for IPv4 and ICMPv6 echo for IPv6 alike.
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
}

/// Bit of a zone trie value that puts the zone in audit mode.
pub const ZONE_AUDIT: u32 = 1 << 31;
/// Bit of a zone trie value: quarantined hosts may still talk with this zone.
pub const ZONE_QUARANTINE_ALLOW: u32 = 1 << 30;
/// The zone id part of a zone trie value.
pub const ZONE_ID_MASK: u32 = !(ZONE_AUDIT | ZONE_QUARANTINE_ALLOW);
/// `FlowEvent::rule_id` and `CtValue::rule_id` when no rule decided.
pub const NO_RULE: u32 = u32::MAX;

/// Bits of a [`ZoneKeyV4`] before the address: the slot.
pub const ZONE_KEY_SLOT_BITS: u32 = 8;

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

/// Address family code in [`CtKey`](crate::CtKey) and [`FragKey`](crate::FragKey).
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
