//! [`FrameSpec`]: a frame described by its fields (addresses, VLANs, options, extension
//! headers, fragment, L4 header, flags, hop limit), built with the functions of
//! [`super`].
use std::net::IpAddr;

use super::{eth_tagged, icmp_with, ipv4_with, ipv6_with, tcp_flags, udp_with, ACK, SYN};

/// An L4 header to put in a frame.
#[derive(Clone, Copy, Debug)]
pub enum L4 {
    /// TCP with these ports (SYN).
    Tcp(u16, u16),
    /// UDP with these ports.
    Udp(u16, u16),
    /// ICMP or ICMPv6 message: type, code, identifier.
    Icmp(u8, u8, u16),
}

/// A frame under construction.
#[derive(Clone, Debug)]
pub struct FrameSpec {
    /// VLAN tags (0, 1 or 2).
    pub vlans: Vec<u16>,
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// IPv4 option bytes (a multiple of 4).
    pub ipv4_options: Vec<u8>,
    /// IPv6 extension headers: (next-header code of this header, its bytes without the first byte).
    pub ipv6_ext: Vec<(u8, Vec<u8>)>,
    /// IPv4 fragment: (offset in 8-byte units, more fragments, id).
    pub ipv4_frag: Option<(u16, bool, u16)>,
    /// Upper-layer header.
    pub l4: L4,
    /// Bytes after the L4 header (e.g. a quoted packet in an ICMP error).
    pub payload: Vec<u8>,
    /// TCP flags (`SYN` unless set otherwise).
    pub tcp_flags: u8,
    /// IPv4 TTL / IPv6 hop limit.
    pub hop_limit: u8,
}

impl FrameSpec {
    /// A plain frame from `src` to `dst`.
    pub fn new(src: &str, dst: &str, l4: L4) -> Self {
        Self {
            vlans: vec![],
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            ipv4_options: vec![],
            ipv6_ext: vec![],
            ipv4_frag: None,
            l4,
            payload: vec![],
            tcp_flags: SYN,
            hop_limit: 64,
        }
    }

    /// The same frame with these TCP flags.
    pub fn flags(mut self, tcp_flags: u8) -> Self {
        self.tcp_flags = tcp_flags;
        self
    }

    /// The same frame with this TTL / hop limit.
    pub fn hops(mut self, hop_limit: u8) -> Self {
        self.hop_limit = hop_limit;
        self
    }

    /// The IP packet (no Ethernet header).
    pub fn ip_packet(&self) -> Vec<u8> {
        let l4 = match self.l4 {
            L4::Tcp(s, d) => [tcp_flags(s, d, self.tcp_flags), self.payload.clone()].concat(),
            L4::Udp(s, d) => udp_with(s, d, &self.payload),
            L4::Icmp(t, c, id) => icmp_with(t, c, id, 0, &self.payload),
        };
        let proto = match self.l4 {
            L4::Tcp(..) => 6,
            L4::Udp(..) => 17,
            L4::Icmp(..) if self.src.is_ipv6() => 58,
            L4::Icmp(..) => 1,
        };
        match (self.src, self.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let (frag, id) = match self.ipv4_frag {
                    Some((off, more, id)) => (off | if more { 0x2000 } else { 0 }, id),
                    None => (0, 0),
                };
                let fields = super::Ipv4Fields {
                    id,
                    frag,
                    ttl: self.hop_limit,
                    options: &self.ipv4_options,
                };
                ipv4_with(s, d, proto, fields, &l4)
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                let mut codes: Vec<u8> = self.ipv6_ext.iter().map(|(c, _)| *c).collect();
                codes.push(proto);
                let mut exts = Vec::new();
                for (i, (_, body)) in self.ipv6_ext.iter().enumerate() {
                    exts.push(codes[i + 1]);
                    exts.extend_from_slice(body);
                }
                ipv6_with(s, d, codes[0], self.hop_limit, &exts, &l4)
            }
            _ => panic!("mixed address families"),
        }
    }

    /// The whole Ethernet frame.
    pub fn build(&self) -> Vec<u8> {
        let tags: Vec<(u16, u16)> = self.vlans.iter().map(|&vid| (0x8100, vid)).collect();
        let ether_type: u16 = if self.src.is_ipv6() { 0x86dd } else { 0x0800 };
        eth_tagged(ether_type, &tags, &self.ip_packet())
    }

    /// The same flow in the other direction (a SYN is answered with SYN-ACK, anything
    /// else with ACK).
    pub fn reply(&self) -> Self {
        let mut r = self.clone();
        r.tcp_flags = if self.tcp_flags == SYN {
            SYN | ACK
        } else {
            ACK
        };
        std::mem::swap(&mut r.src, &mut r.dst);
        r.l4 = match self.l4 {
            L4::Tcp(s, d) => L4::Tcp(d, s),
            L4::Udp(s, d) => L4::Udp(d, s),
            L4::Icmp(t, c, id) => L4::Icmp(echo_reply_type(t), c, id),
        };
        r
    }
}

fn echo_reply_type(t: u8) -> u8 {
    match t {
        8 => 0,
        128 => 129,
        other => other,
    }
}
