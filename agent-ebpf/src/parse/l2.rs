//! Ethernet, with up to two VLAN tags (802.1Q, 802.1ad).
use super::Frame;

/// Length of the Ethernet header without tags.
/// Length of an untagged Ethernet header.
pub const ETH_HLEN: usize = 14;
/// EtherType of IPv4.
pub const ETH_P_IP: u16 = 0x0800;
/// EtherType of IPv6.
pub const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;

/// What the Ethernet header announces.
pub struct Ethernet {
    /// EtherType after the tags.
    pub ether_type: u16,
    /// Offset of the network header.
    pub off: usize,
}

/// Parses the Ethernet header and up to two VLAN tags; `None` when truncated or
/// when a third tag follows.
#[inline(always)]
pub fn ethernet(f: &Frame) -> Option<Ethernet> {
    let mut ether_type = f.be16_at(12)?;
    let mut off = ETH_HLEN;
    if is_vlan(ether_type) {
        ether_type = f.be16_at(off + 2)?;
        off += 4;
        if is_vlan(ether_type) {
            ether_type = f.be16_at(off + 2)?;
            off += 4;
        }
    }
    if is_vlan(ether_type) {
        return None;
    }
    Some(Ethernet { ether_type, off })
}

#[inline(always)]
fn is_vlan(ether_type: u16) -> bool {
    ether_type == ETH_P_8021Q || ether_type == ETH_P_8021AD
}
