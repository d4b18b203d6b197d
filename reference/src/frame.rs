//! Frame parsing for the reference dataplane, step by step as `docs/dataplane.md` says.
//! Every access is bounds-checked: any byte string parses without panicking.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ward_common::{addr_from_bytes, family, proto, Addr, FragKey};

/// An endpoint of a flow; for ICMP echo the port is the echo identifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub(crate) addr: IpAddr,
    pub(crate) port: u16,
}

/// A flow as seen in one packet: source, destination, `proto::*` code and, for TCP,
/// the segment's flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Flow {
    pub(crate) src: Endpoint,
    pub(crate) dst: Endpoint,
    pub(crate) proto: u8,
    pub(crate) tcp_flags: u8,
}

impl Flow {
    pub(crate) fn new(src: IpAddr, dst: IpAddr, proto: u8, sport: u16, dport: u16) -> Self {
        Flow {
            src: Endpoint {
                addr: src,
                port: sport,
            },
            dst: Endpoint {
                addr: dst,
                port: dport,
            },
            proto,
            tcp_flags: 0,
        }
    }
}

/// What the upper-layer header says about the packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Upper {
    /// TCP, UDP or ICMP echo request: tracked or a new flow.
    Flow(Flow),
    /// ICMP echo reply: passes only when tracked.
    EchoReply(Flow),
    /// ICMP error quoting a packet of this flow (`None`: not a flow that can be tracked).
    Error(Option<Flow>),
    /// ICMPv6 neighbour discovery, with its type.
    NeighbourDiscovery(u8),
    /// ICMPv6 multicast listener discovery.
    Mld,
    /// Any other protocol or ICMP type.
    Other,
}

/// The network-layer facts of an IP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Net {
    pub(crate) src: IpAddr,
    pub(crate) dst: IpAddr,
    /// IPv4 TTL, IPv6 hop limit.
    pub(crate) hop_limit: u8,
    /// Length of the IP packet, header included.
    pub(crate) len: usize,
    /// The protocol the header chain ends with.
    pub(crate) ip_proto: u8,
    /// The two 16-bit words where the L4 ports would be, if the frame holds them.
    pub(crate) ports: Option<(u16, u16)>,
}

/// What follows the IP header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Body {
    /// A fragment other than the first.
    NonFirstFragment(FragKey),
    /// A whole packet or a first fragment (with its fragment key); `upper` is `None`
    /// when the upper-layer header is truncated or malformed.
    Packet {
        first_fragment: Option<FragKey>,
        upper: Option<Upper>,
    },
}

/// The result of parsing one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// Not IPv4 or IPv6.
    NotIp,
    /// Truncated or malformed Ethernet or IP header.
    Malformed,
    /// An IP packet.
    Ip { net: Net, body: Body },
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(
        b.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn addr(b: &[u8], at: usize, fam: u8) -> Option<IpAddr> {
    if fam == family::V4 {
        let o: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
        Some(IpAddr::V4(Ipv4Addr::from(o)))
    } else {
        let o: [u8; 16] = b.get(at..at + 16)?.try_into().ok()?;
        Some(IpAddr::V6(Ipv6Addr::from(o)))
    }
}

/// The 16-byte form of an address used in map keys (IPv4 in the first 4 bytes).
pub(crate) fn addr_bytes(a: IpAddr) -> Addr {
    let bytes = match a {
        IpAddr::V4(a) => {
            let mut b = [0; 16];
            b[..4].copy_from_slice(&a.octets());
            b
        }
        IpAddr::V6(a) => a.octets(),
    };
    addr_from_bytes(bytes)
}

fn frag_key(src: IpAddr, dst: IpAddr, id: u32, ip_proto: u8, fam: u8) -> FragKey {
    FragKey {
        src: addr_bytes(src),
        dst: addr_bytes(dst),
        id,
        ip_proto,
        family: fam,
        _pad: [0; 2],
    }
}

const ETH_VLAN: u16 = 0x8100;
const ETH_QINQ: u16 = 0x88a8;
const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86dd;

/// Parses an Ethernet frame (steps 1 to 5 of `docs/dataplane.md`).
pub(crate) fn parse(frame: &[u8]) -> Parsed {
    parse_frame(frame).unwrap_or(Parsed::Malformed)
}

fn parse_frame(frame: &[u8]) -> Option<Parsed> {
    let mut ethertype = be16(frame, 12)?;
    let mut off = 14;
    let mut tags = 0;
    while ethertype == ETH_VLAN || ethertype == ETH_QINQ {
        if tags == 2 {
            return None;
        }
        ethertype = be16(frame, off + 2)?;
        off += 4;
        tags += 1;
    }
    let ip = frame.get(off..)?;
    match ethertype {
        ETH_IPV4 => ipv4(ip),
        ETH_IPV6 => ipv6(ip),
        _ => Some(Parsed::NotIp),
    }
}

fn ipv4(ip: &[u8]) -> Option<Parsed> {
    let first = *ip.first()?;
    let hlen = usize::from(first & 0x0f) * 4;
    if ip.len() < 20 || first >> 4 != 4 || hlen < 20 || ip.len() < hlen {
        return None;
    }
    let total = usize::from(be16(ip, 2)?);
    if total < hlen || total > ip.len() {
        return None;
    }
    let packet = &ip[..total];
    let (src, dst, ip_proto) = (addr(ip, 12, family::V4)?, addr(ip, 16, family::V4)?, ip[9]);
    let net = Net {
        src,
        dst,
        hop_limit: ip[8],
        len: total,
        ip_proto,
        ports: ports(ip, hlen),
    };
    let frag = be16(ip, 6)?;
    let key = frag_key(src, dst, u32::from(be16(ip, 4)?), ip_proto, family::V4);
    if frag & 0x1fff != 0 {
        let body = Body::NonFirstFragment(key);
        return Some(Parsed::Ip { net, body });
    }
    let first_fragment = (frag & 0x2000 != 0).then_some(key);
    let upper = packet
        .get(hlen..)
        .and_then(|l4| upper(family::V4, src, dst, ip_proto, l4));
    let body = Body::Packet {
        first_fragment,
        upper,
    };
    Some(Parsed::Ip { net, body })
}

/// The words at `at` and `at + 2` of the frame's bytes from the IP header on, as the
/// kernel reads them (within the frame, not only the IP packet).
fn ports(ip: &[u8], at: usize) -> Option<(u16, u16)> {
    Some((be16(ip, at)?, be16(ip, at + 2)?))
}

/// Most extension headers walked; one more is malformed.
const MAX_EXT_HEADERS: usize = 6;

fn ipv6(ip: &[u8]) -> Option<Parsed> {
    if ip.len() < 40 || ip[0] >> 4 != 6 {
        return None;
    }
    let packet = ip.get(..40 + usize::from(be16(ip, 4)?))?;
    let (src, dst) = (addr(ip, 8, family::V6)?, addr(ip, 24, family::V6)?);
    let mut next = ip[6];
    let mut off = 40;
    let mut walked = 0;
    let mut first_fragment = None;
    while matches!(next, 0 | 43 | 60 | 44 | 51) {
        if walked == MAX_EXT_HEADERS {
            return None;
        }
        walked += 1;
        let len = match next {
            44 => 8,
            51 => (usize::from(*packet.get(off + 1)?) + 2) * 4,
            _ => (usize::from(*packet.get(off + 1)?) + 1) * 8,
        };
        let hdr = packet.get(off..off + len)?;
        if next == 44 {
            let key = frag_key(src, dst, be32(hdr, 4)?, hdr[0], family::V6);
            if be16(hdr, 2)? >> 3 != 0 {
                let net = Net {
                    src,
                    dst,
                    hop_limit: ip[7],
                    len: packet.len(),
                    ip_proto: hdr[0],
                    ports: ports(ip, off + len),
                };
                let body = Body::NonFirstFragment(key);
                return Some(Parsed::Ip { net, body });
            }
            if hdr[3] & 1 != 0 {
                first_fragment = Some(key);
            }
        }
        next = hdr[0];
        off += len;
    }
    let net = Net {
        src,
        dst,
        hop_limit: ip[7],
        len: packet.len(),
        ip_proto: next,
        ports: ports(ip, off),
    };
    let upper = packet
        .get(off..)
        .and_then(|l4| upper(family::V6, src, dst, next, l4));
    let body = Body::Packet {
        first_fragment,
        upper,
    };
    Some(Parsed::Ip { net, body })
}

const ICMPV6: u8 = 58;

/// Step 5: the upper-layer header, which must fit in `l4` (the rest of the IP packet).
fn upper(fam: u8, src: IpAddr, dst: IpAddr, ip_proto: u8, l4: &[u8]) -> Option<Upper> {
    let flow = |proto, sport, dport| Flow::new(src, dst, proto, sport, dport);
    let icmp =
        (fam == family::V4 && ip_proto == proto::ICMP) || (fam == family::V6 && ip_proto == ICMPV6);
    match ip_proto {
        proto::TCP => {
            if l4.len() < 20 || l4[12] >> 4 < 5 {
                return None;
            }
            let mut tcp = flow(proto::TCP, be16(l4, 0)?, be16(l4, 2)?);
            tcp.tcp_flags = l4[13];
            Some(Upper::Flow(tcp))
        }
        proto::UDP => {
            if l4.len() < 8 {
                return None;
            }
            Some(Upper::Flow(flow(proto::UDP, be16(l4, 0)?, be16(l4, 2)?)))
        }
        _ if icmp => {
            if l4.len() < 8 {
                return None;
            }
            let ident = be16(l4, 4)?;
            let echo = flow(proto::ICMP, ident, ident);
            Some(match (fam, l4[0]) {
                (family::V4, 8) | (family::V6, 128) => Upper::Flow(echo),
                (family::V4, 0) | (family::V6, 129) => Upper::EchoReply(echo),
                (family::V4, 3 | 11 | 12) | (family::V6, 1..=4) => {
                    Upper::Error(embedded(fam, &l4[8..])?)
                }
                (family::V6, ty @ 133..=137) => Upper::NeighbourDiscovery(ty),
                (family::V6, 130..=132 | 143) => Upper::Mld,
                _ => Upper::Other,
            })
        }
        _ => Some(Upper::Other),
    }
}

/// The flow of the packet embedded in an ICMP error: `None` (outer) when it does not fit,
/// `Some(None)` when it is not a flow that can be tracked.
fn embedded(fam: u8, e: &[u8]) -> Option<Option<Flow>> {
    let version = *e.first()? >> 4;
    let (src, dst, ip_proto, l4) = if fam == family::V4 {
        let hlen = usize::from(*e.first()? & 0x0f) * 4;
        if version != 4 || hlen < 20 {
            return None;
        }
        (
            addr(e, 12, fam)?,
            addr(e, 16, fam)?,
            *e.get(9)?,
            e.get(hlen..hlen + 8)?,
        )
    } else {
        if version != 6 {
            return None;
        }
        (
            addr(e, 8, fam)?,
            addr(e, 24, fam)?,
            *e.get(6)?,
            e.get(40..48)?,
        )
    };
    let flow = |proto, sport, dport| Flow::new(src, dst, proto, sport, dport);
    // A quoted ICMP message of the same family is keyed by its identifier, whatever
    // its type: only a tracked echo flow with that identifier can match it.
    let icmp = matches!(
        (fam, ip_proto),
        (family::V4, proto::ICMP) | (family::V6, ICMPV6)
    );
    Some(match ip_proto {
        proto::TCP | proto::UDP => Some(flow(ip_proto, be16(l4, 0)?, be16(l4, 2)?)),
        _ if icmp => Some(flow(proto::ICMP, be16(l4, 4)?, be16(l4, 4)?)),
        _ => None,
    })
}
