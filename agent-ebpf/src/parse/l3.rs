//! IPv4, and IPv6 with its extension headers (hop-by-hop, routing, fragment,
//! authentication, destination options).
use ward_common::{family, Addr};

use super::{
    l2::{self, ETH_P_IP, ETH_P_IPV6},
    Frame, MAX_L4_OFFSET,
};

/// Extension headers an IPv6 packet may carry before its payload; more are malformed.
const MAX_IPV6_EXT_HEADERS: usize = 6;

/// Fragment position of an IP packet.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Fragment {
    /// Not fragmented.
    None,
    /// Offset 0 with more fragments to come.
    First,
    /// Offset > 0.
    NonFirst,
}

/// An IP packet's network-layer facts.
pub struct Ip {
    /// `family::V4` or `family::V6`.
    pub family: u8,
    /// Source address.
    pub src: Addr,
    /// Destination address.
    pub dst: Addr,
    /// IP protocol number of the payload.
    pub ip_proto: u8,
    /// Offset of the IP header in the frame.
    pub l3: usize,
    /// Offset of the L4 header in the frame.
    pub l4: usize,
    /// Offset one past the IP packet's last byte.
    pub end: usize,
    /// Fragment position.
    pub fragment: Fragment,
    /// Identification of a fragmented packet.
    pub frag_id: u32,
    /// IPv4 time to live, IPv6 hop limit.
    pub hop_limit: u8,
    /// Protocol that identifies a fragmented packet: IPv4's protocol, or the next
    /// header named by IPv6's fragment header.
    pub frag_proto: u8,
}

/// Result of the network-layer parse.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// Not IPv4 or IPv6: passes.
    NotIp,
    /// Truncated or malformed: dropped.
    Malformed,
    /// An IP packet, written to the `Ip` passed in.
    Ip,
}

/// Parses Ethernet (with up to two VLAN tags) and the IP header into `ip`.
/// Not inlined, so that its temporaries get a stack frame of their own.
#[inline(never)]
pub fn network(f: &Frame, ip: &mut Ip) -> Network {
    let Some(eth) = l2::ethernet(f) else {
        return Network::Malformed;
    };
    match eth.ether_type {
        ETH_P_IP => ipv4(f, eth.off, ip),
        ETH_P_IPV6 => ipv6(f, eth.off, ip),
        _ => Network::NotIp,
    }
}

#[inline(always)]
fn ipv4(f: &Frame, off: usize, out: &mut Ip) -> Network {
    let Some(b0) = f.u8_at(off) else {
        return Network::Malformed;
    };
    let Some(tot_len) = f.be16_at(off + 2) else {
        return Network::Malformed;
    };
    let Some(id) = f.be16_at(off + 4) else {
        return Network::Malformed;
    };
    let Some(frag) = f.be16_at(off + 6) else {
        return Network::Malformed;
    };
    let Some([ttl, ip_proto]) = f.load::<[u8; 2]>(off + 8) else {
        return Network::Malformed;
    };
    let Some(src) = f.addr4_at(off + 12) else {
        return Network::Malformed;
    };
    let Some(dst) = f.addr4_at(off + 16) else {
        return Network::Malformed;
    };
    let ihl = ((b0 & 0x0f) as usize) * 4;
    let tot_len = tot_len as usize;
    if b0 >> 4 != 4 || ihl < 20 || tot_len < ihl || off + tot_len > f.len {
        return Network::Malformed;
    }
    let fragment = if frag & 0x1fff != 0 {
        Fragment::NonFirst
    } else if frag & 0x2000 != 0 {
        Fragment::First
    } else {
        Fragment::None
    };
    *out = Ip {
        family: family::V4,
        src,
        dst,
        ip_proto,
        l3: off,
        l4: off + ihl,
        end: off + tot_len,
        fragment,
        frag_id: id as u32,
        hop_limit: ttl,
        frag_proto: ip_proto,
    };
    Network::Ip
}

#[inline(always)]
fn ipv6(f: &Frame, off: usize, out: &mut Ip) -> Network {
    let Some(b0) = f.u8_at(off) else {
        return Network::Malformed;
    };
    let Some(payload) = f.be16_at(off + 4) else {
        return Network::Malformed;
    };
    let Some([mut nh, hop_limit]) = f.load::<[u8; 2]>(off + 6) else {
        return Network::Malformed;
    };
    let Some(src) = f.addr6_at(off + 8) else {
        return Network::Malformed;
    };
    let Some(dst) = f.addr6_at(off + 24) else {
        return Network::Malformed;
    };
    let end = off + 40 + payload as usize;
    if b0 >> 4 != 6 || end > f.len {
        return Network::Malformed;
    }
    let mut l4 = off + 40;
    let mut fragment = Fragment::None;
    let mut frag_id = 0u32;
    let mut frag_proto = 0u8;
    for i in 0..=MAX_IPV6_EXT_HEADERS {
        let len = match nh {
            0 | 43 | 60 | 51 => {
                let Some(hlen) = f.u8_at(l4 + 1) else {
                    return Network::Malformed;
                };
                if nh == 51 {
                    (hlen as usize + 2) * 4
                } else {
                    (hlen as usize + 1) * 8
                }
            }
            44 => 8,
            _ => break,
        };
        if i == MAX_IPV6_EXT_HEADERS || l4 + len > end {
            return Network::Malformed;
        }
        let Some(next) = f.u8_at(l4) else {
            return Network::Malformed;
        };
        if nh == 44 {
            let Some(offset) = f.be16_at(l4 + 2) else {
                return Network::Malformed;
            };
            let Some(id) = f.be32_at(l4 + 4) else {
                return Network::Malformed;
            };
            nh = next;
            l4 += len;
            if offset >> 3 != 0 {
                fragment = Fragment::NonFirst;
                frag_id = id;
                frag_proto = next;
                break;
            }
            if offset & 1 != 0 {
                fragment = Fragment::First;
                frag_id = id;
                frag_proto = next;
            }
        } else {
            nh = next;
            l4 += len;
        }
        if l4 > MAX_L4_OFFSET {
            return Network::Malformed;
        }
    }
    *out = Ip {
        family: family::V6,
        src,
        dst,
        ip_proto: nh,
        l3: off,
        l4,
        end,
        fragment,
        frag_id,
        hop_limit,
        frag_proto,
    };
    Network::Ip
}
